import type { Migration } from '../migration';

/**
 * Every stored event id, sorted by id, so the consumer can tell in one primary-key lookup which
 * events of a batch are stored already. Filled by a materialized view in the same insert as the
 * raw row.
 */
export const usageEventIds: Migration = {
  version: 2,
  name: 'usage_event_ids',
  statements: [
    `CREATE TABLE IF NOT EXISTS {db:Identifier}.usage_event_ids
(
    event_id String,
    received_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY event_id`,
    `CREATE MATERIALIZED VIEW IF NOT EXISTS {db:Identifier}.usage_event_ids_mv TO {db:Identifier}.usage_event_ids
AS SELECT event_id, received_at FROM {db:Identifier}.usage_events`,
  ],
};
