import type { Migration } from '../migration';

/**
 * Usage rows on disk before their insert returns: billing commits the Kafka offsets (and the
 * embedded gateway deletes its outbox segments) right after, so a power cut or a kernel crash in
 * the page cache's writeback window would otherwise lose stored usage nothing else still holds.
 * About one insert a second (`usage.consumer.maxWaitMs`), each a few fsyncs.
 */
export const usageDurableInserts: Migration = {
  version: 11,
  name: 'usage_durable_inserts',
  statements: ['usage_events', 'usage_event_ids', 'usage_daily'].map(
    (table) => `ALTER TABLE {db:Identifier}.${table} MODIFY SETTING fsync_after_insert = 1, fsync_part_directory = 1`,
  ),
};
