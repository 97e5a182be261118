import type { Migration } from '../migration';

/**
 * The daily rollup keeps response-cache hits (`cache_hits`) and the spend they avoided
 * (`cache_saved_cost`, in the row's currency), so reports over whole days break them out. Rows
 * written before read 0 for both (no hit was counted there); the view's query is replaced in
 * place (`MODIFY QUERY`: no insert goes uncounted, as it would between a DROP and a CREATE) and
 * is the view of migration 3 with the two sums added. Hits stored before this migration are added
 * to their day's rollup by the rollup reconciliation (closed days within its look-back).
 */
export const usageDailyCacheHits: Migration = {
  version: 8,
  name: 'usage_daily_cache_hits',
  statements: [
    `ALTER TABLE {db:Identifier}.usage_daily ADD COLUMN IF NOT EXISTS cache_hits Int64 DEFAULT 0 AFTER latency_ms_sum, ADD COLUMN IF NOT EXISTS cache_saved_cost Decimal(38, 18) DEFAULT 0 AFTER cache_hits`,
    `ALTER TABLE {db:Identifier}.usage_daily_mv MODIFY QUERY SELECT
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
    sum(latency_ms) AS latency_ms_sum,
    countIf(cache_hit) AS cache_hits,
    sum(cache_saved_cost) AS cache_saved_cost
FROM {db:Identifier}.usage_events
GROUP BY day, org_id, project_id, team_id, app_id, cost_center, key_id, served_model, provider, currency`,
  ],
};
