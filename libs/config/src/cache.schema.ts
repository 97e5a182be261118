import { z } from 'zod';
import { flag, numeric, strictObject } from './primitives';

const positiveInt = numeric(z.number().int().positive());

/**
 * The ingress's exact-match response cache (docs/caching.md): off unless enabled, and then per
 * request (`x-openrouter-cache`, on a WebSocket also its upgrade's or its frame's) unless `mode` is `always`. Entries live in the access store's
 * Redis when there is one (shared by every replica), else in a bounded in-process LRU.
 */
export const cacheSchema = strictObject({
  enabled: flag.default(false),
  /** `opt_in`: only requests sending `x-openrouter-cache: use|refresh`; `always`: every request unless it sends `off`. */
  mode: z.enum(['opt_in', 'always']).default('opt_in'),
  /** Who shares entries: the project (a key without one: the key), the whole organisation, or the key alone. Never across organisations. */
  scope: z.enum(['project', 'org', 'key']).default('project'),
  defaultTtlSeconds: positiveInt.default(3_600),
  maxTtlSeconds: positiveInt.default(86_400),
  /** A larger answer (sealed) is not stored. */
  maxEntryBytes: positiveInt.default(1024 * 1024),
  /** Entries the in-process store (no Redis) keeps at most, least recently used dropped first. */
  maxEntries: positiveInt.default(1_000),
  /**
   * How long a request whose identical twin (same entry) is already being answered by a provider
   * (by this ingress process, or by another replica when `coalesceAcrossReplicas`) waits for that
   * answer to be stored, instead of calling the provider itself; 0: no request waits for another.
   * Also the time to live of a replica's claim of a flight in Redis, which its leader extends every
   * third of it while its provider call runs (a leader that crashed holds it at most this long).
   */
  coalesceWaitMs: numeric(z.number().int().nonnegative().max(600_000)).default(30_000),
  /** With entries in Redis: identical requests at different replicas are coalesced too (a flight claimed in Redis); false: each replica its own. */
  coalesceAcrossReplicas: flag.default(true),
}).superRefine((cache, ctx) => {
  if (cache.defaultTtlSeconds > cache.maxTtlSeconds) {
    ctx.addIssue({ code: 'custom', path: ['defaultTtlSeconds'], message: `must be at most maxTtlSeconds (${cache.maxTtlSeconds})` });
  }
});
export type CacheConfig = z.infer<typeof cacheSchema>;
