import type { Migration } from '../migration';

/**
 * Quantities billed by other units or prices than a request's tokens: the audio transcribed or
 * translated, in milliseconds (`audio_ms`, priced per minute), the characters of text spoken
 * (`characters`, priced per million), and the input image tokens among the prompt tokens (an image
 * edit's, `image_prompt_tokens`, priced at `imageInput`). Rows written before have none.
 */
export const usageEventAudio: Migration = {
  version: 9,
  name: 'usage_event_audio',
  statements: [
    `ALTER TABLE {db:Identifier}.usage_events ADD COLUMN IF NOT EXISTS audio_ms UInt64 DEFAULT 0 AFTER cache_saved_cost, ADD COLUMN IF NOT EXISTS characters UInt64 DEFAULT 0 AFTER audio_ms, ADD COLUMN IF NOT EXISTS image_prompt_tokens UInt64 DEFAULT 0 AFTER characters`,
  ],
};
