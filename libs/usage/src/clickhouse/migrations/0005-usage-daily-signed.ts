import type { Migration } from '../migration';

const COUNTS = ['requests', 'errors', 'cancelled', 'prompt_tokens', 'completion_tokens', 'cached_read_tokens', 'cache_write_tokens', 'reasoning_tokens', 'latency_ms_sum'];

/**
 * The daily rollup's counts become signed, so that the rollup reconciliation can take off what a
 * day counted twice: a correction row carries the difference to the raw events, and
 * SummingMergeTree adds it to the rows it corrects. Reads are `sum(…)` as before.
 */
export const usageDailySigned: Migration = {
  version: 5,
  name: 'usage_daily_signed_counts',
  statements: [`ALTER TABLE {db:Identifier}.usage_daily ${COUNTS.map((c) => `MODIFY COLUMN ${c} Int64`).join(', ')}`],
};
