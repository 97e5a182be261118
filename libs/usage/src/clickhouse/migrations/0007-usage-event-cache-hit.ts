import type { Migration } from '../migration';

/**
 * Requests answered from the gateway's response cache (docs/caching.md): `cache_hit`, and what the
 * cached answer cost when it was first served (`cache_saved_cost`, in the row's currency), so a
 * report can show what the cache saved. Such a row's own `cost` is 0 and its tokens are the cached
 * answer's. Rows written before are no hits.
 */
export const usageEventCacheHit: Migration = {
  version: 7,
  name: 'usage_event_cache_hit',
  statements: [
    `ALTER TABLE {db:Identifier}.usage_events ADD COLUMN IF NOT EXISTS cache_hit Bool DEFAULT false AFTER request_id, ADD COLUMN IF NOT EXISTS cache_saved_cost Decimal(38, 18) DEFAULT 0 AFTER cache_hit`,
  ],
};
