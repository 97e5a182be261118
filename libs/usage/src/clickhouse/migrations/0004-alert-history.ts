import type { Migration } from '../migration';

/**
 * Alert transitions written by the alerting service (fired, resolved; held back by a cooldown or
 * notified), read by the admin API newest first. Kept for 400 days.
 */
export const alertHistory: Migration = {
  version: 4,
  name: 'alert_history',
  statements: [
    `CREATE TABLE IF NOT EXISTS {db:Identifier}.alert_history
(
    at DateTime64(3, 'UTC'),
    alert_id String,
    rule_id LowCardinality(String),
    rule_kind LowCardinality(String),
    severity LowCardinality(String),
    status LowCardinality(String),
    labels Map(String, String),
    value Float64,
    threshold Float64,
    summary String,
    started_at DateTime64(3, 'UTC'),
    notified Bool,
    channels Array(String)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (at, alert_id)
TTL toDateTime(at) + INTERVAL 400 DAY`,
  ],
};
