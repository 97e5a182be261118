import type { Migration } from '../migration';

/**
 * Quantities billed by other units than tokens (OpenAI's Audio API): the audio transcribed or
 * translated, in milliseconds (`audio_ms`, priced per minute), and the characters of text spoken
 * (`characters`, priced per million). Rows written before have none.
 */
export const usageEventAudio: Migration = {
  version: 9,
  name: 'usage_event_audio',
  statements: [
    `ALTER TABLE {db:Identifier}.usage_events ADD COLUMN IF NOT EXISTS audio_ms UInt64 DEFAULT 0 AFTER cache_saved_cost, ADD COLUMN IF NOT EXISTS characters UInt64 DEFAULT 0 AFTER audio_ms`,
  ],
};
