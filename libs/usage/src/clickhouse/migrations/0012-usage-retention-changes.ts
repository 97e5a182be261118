import type { Migration } from '../migration';

/**
 * Each change of the raw events' retention (`usage.clickhouse.retentionDays`), when it was made
 * and from what: after a raise, the raw table holds every event only from the change minus the
 * earlier retention, whatever the new one says. The rollup reconciliation reads it so as never to
 * compare a day whose raw events expired under the earlier retention (it would take them off
 * `usage_daily`, kept for good).
 */
export const usageRetentionChanges: Migration = {
  version: 12,
  name: 'usage_retention_changes',
  statements: [
    `CREATE TABLE IF NOT EXISTS {db:Identifier}.usage_retention_changes
(
    changed_at DateTime64(3, 'UTC'),
    previous_days UInt32,
    days UInt32
)
ENGINE = MergeTree
ORDER BY changed_at`,
  ],
};
