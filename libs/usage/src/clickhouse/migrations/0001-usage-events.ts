import type { Migration } from '../migration';

/**
 * Raw usage events, one row per request. ReplacingMergeTree on (org, day, event id) collapses a
 * duplicate that got past the consumer's de-duplication; partitions are months; the sort key
 * serves tenant-scoped queries (an org and a time range).
 */
export const usageEvents: Migration = {
  version: 1,
  name: 'usage_events',
  statements: [
    `CREATE TABLE IF NOT EXISTS {db:Identifier}.usage_events
(
    event_id String,
    received_at DateTime64(3, 'UTC'),
    first_token_at Nullable(DateTime64(3, 'UTC')),
    completed_at DateTime64(3, 'UTC'),
    org_id LowCardinality(String),
    project_id LowCardinality(String),
    team_id LowCardinality(String),
    app_id LowCardinality(String),
    cost_center LowCardinality(String),
    key_id String,
    end_user String,
    tags Map(String, String),
    operation LowCardinality(String),
    requested_model LowCardinality(String),
    served_model LowCardinality(String),
    provider LowCardinality(String),
    deployment LowCardinality(String),
    upstream_model LowCardinality(String),
    task_type LowCardinality(String),
    experiment LowCardinality(String),
    experiment_arm LowCardinality(String),
    attempts Nested(provider String, deployment String, status LowCardinality(String), error_kind String, latency_ms UInt32),
    prompt_tokens UInt64,
    completion_tokens UInt64,
    cached_read_tokens UInt64,
    cache_write_tokens UInt64,
    reasoning_tokens UInt64,
    tokens_estimated Bool,
    cost Decimal(38, 18),
    currency LowCardinality(String),
    price_version LowCardinality(String),
    latency_ms UInt32,
    ttft_ms UInt32,
    stream Bool,
    cancelled Bool,
    status LowCardinality(String),
    error_kind LowCardinality(String),
    http_status UInt16,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(received_at)
ORDER BY (org_id, toDate(received_at), event_id)`,
  ],
};
