import type { Migration } from '../migration';

/**
 * Daily rollups (UTC days) per org, project, team, app, cost centre, key, model and provider,
 * for budgets and chargeback reports. Summed by SummingMergeTree in the background; queries
 * still `sum(...) GROUP BY` since merges are eventual. Fed from the raw inserts, which the
 * consumer de-duplicates first, so each event is counted once.
 */
export const usageDaily: Migration = {
  version: 3,
  name: 'usage_daily',
  statements: [
    `CREATE TABLE IF NOT EXISTS {db:Identifier}.usage_daily
(
    day Date,
    org_id LowCardinality(String),
    project_id LowCardinality(String),
    team_id LowCardinality(String),
    app_id LowCardinality(String),
    cost_center LowCardinality(String),
    key_id String,
    served_model LowCardinality(String),
    provider LowCardinality(String),
    currency LowCardinality(String),
    requests UInt64,
    errors UInt64,
    cancelled UInt64,
    prompt_tokens UInt64,
    completion_tokens UInt64,
    cached_read_tokens UInt64,
    cache_write_tokens UInt64,
    reasoning_tokens UInt64,
    cost Decimal(38, 18),
    latency_ms_sum UInt64
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (org_id, day, project_id, team_id, app_id, cost_center, key_id, served_model, provider, currency)`,
    `CREATE MATERIALIZED VIEW IF NOT EXISTS {db:Identifier}.usage_daily_mv TO {db:Identifier}.usage_daily
AS SELECT
    toDate(received_at) AS day,
    org_id, project_id, team_id, app_id, cost_center, key_id, served_model, provider, currency,
    count() AS requests,
    countIf(status = 'error') AS errors,
    countIf(cancelled) AS cancelled,
    sum(prompt_tokens) AS prompt_tokens,
    sum(completion_tokens) AS completion_tokens,
    sum(cached_read_tokens) AS cached_read_tokens,
    sum(cache_write_tokens) AS cache_write_tokens,
    sum(reasoning_tokens) AS reasoning_tokens,
    sum(cost) AS cost,
    sum(latency_ms) AS latency_ms_sum
FROM {db:Identifier}.usage_events
GROUP BY day, org_id, project_id, team_id, app_id, cost_center, key_id, served_model, provider, currency`,
  ],
};
