import { createHmac } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { z } from 'zod';
import type { SealKeys, StoreSecrets } from './access/sealed-text';

/**
 * What the Redis stores of the gateway's own records share (stored responses, conversations,
 * stored chat completions, background responses): the replies of a transaction, read so that a
 * failed write is never taken for nothing done, and the per-owner indexes a project's records are
 * purged by.
 */

/** How many ids a store's `purgeOwner` takes from its owner index at a time: each batch is one bounded step in Redis. */
export const PURGE_BATCH = 500;

/** The replies of a transaction, throwing the first command's error (a failed write is never taken for nothing done). */
export function resultsOf(replies: Array<[error: Error | null, result: unknown]> | null, what: string): unknown[] {
  if (replies === null) throw new Error(`${what}: the transaction was aborted`);
  return replies.map(([error, result]) => {
    if (error) throw error;
    return result;
  });
}

/**
 * The name an owner's index goes by in a shared store (`what`: `responses`, `conversations`,
 * `chat-completions`): an HMAC of the owner under a key derived from `access.keyHashSecret`, so the
 * store's key names reveal no project.
 */
export function ownerIndexName(keyHashSecret: string, what: string, owner: string): string {
  const key = createHmac('sha256', keyHashSecret).update(`${what}\0owners`).digest();
  return createHmac('sha256', key).update(owner).digest('base64url');
}

/**
 * The names an owner's index went by under the previous secrets (`access.previousKeyHashSecrets`):
 * the ids stored before a rotation are still there, until they are moved into the current index
 * (`mergeOwnerIndexes`) or purged.
 */
export function previousOwnerIndexNames(secrets: StoreSecrets, what: string, owner: string): string[] {
  return [...new Set(secrets.previous ?? [])].filter((secret) => secret !== secrets.current).map((secret) => ownerIndexName(secret, what, owner));
}

/**
 * Moves every id of the indexes KEYS[2..] (an owner's under previous secrets) into KEYS[1] (its
 * current one), which then lives as long as the longer lived, and deletes them. ARGV[1]: 'z' for
 * sorted sets (an id keeps the lower score), 's' for sets.
 */
const MERGE_INDEXES = `
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    -- A union's destination is written anew, without an expiry: the later of the two is set again.
    local before = redis.call('PEXPIRETIME', KEYS[1])
    local expiry = redis.call('PEXPIRETIME', KEYS[i])
    if ARGV[1] == 'z' then
      redis.call('ZUNIONSTORE', KEYS[1], 2, KEYS[1], KEYS[i], 'AGGREGATE', 'MIN')
    else
      redis.call('SUNIONSTORE', KEYS[1], KEYS[1], KEYS[i])
    end
    local keep
    if before == -2 then keep = expiry elseif before == -1 or expiry == -1 then keep = -1 else keep = math.max(before, expiry) end
    if keep > 0 then redis.call('PEXPIREAT', KEYS[1], keep) end
    redis.call('DEL', KEYS[i])
  end
end
return 1
`;

/**
 * Moves an owner's ids kept under previous secrets' index names (`previous`) into its current
 * index (`current`), in one step: what was stored before a rotation is listed with what was stored
 * since. Nothing to do (no previous secret) costs nothing; an index already moved, one EXISTS each.
 */
export async function mergeOwnerIndexes(redis: Redis, current: string, previous: readonly string[], sorted: boolean): Promise<void> {
  if (previous.length === 0) return;
  await redis.eval(MERGE_INDEXES, 1 + previous.length, current, ...previous, sorted ? 'z' : 's');
}

/** An owner's index of record ids, and the keys each record is kept under. */
export interface OwnerIndex {
  /** The index's key: a set, or a sorted set (`sorted`). */
  key: string;
  sorted: boolean;
  /** The key of a record, counted as deleted when it was there. */
  record(id: string): string;
  /** Other keys a record is kept under (its items, its state), deleted with it. */
  others?: (id: string) => string[];
  /** Ids taken at a time (`PURGE_BATCH` by default). */
  batch?: number;
  /** What the records are, for the error of a transaction that failed. */
  what: string;
}

/**
 * Deletes every record an owner's index lists: takes a batch of ids at a time and, in one
 * transaction, unlinks their keys (freed in the background: a large record does not hold Redis up)
 * and takes them out of the index, until it is empty. An id leaves the index only with its record,
 * so a purge that fails midway leaves the rest for a retry. How many records were there (ids of
 * records that had expired are taken out without being counted).
 */
export async function purgeIndexed(redis: Redis, index: OwnerIndex): Promise<number> {
  const batch = index.batch ?? PURGE_BATCH;
  let deleted = 0;
  for (;;) {
    const ids = index.sorted ? await redis.zrange(index.key, '0', String(batch - 1)) : await redis.srandmember(index.key, batch);
    if (ids.length === 0) return deleted;
    const transaction = redis.multi().unlink(...ids.map((id) => index.record(id)));
    const others = index.others ? ids.flatMap(index.others) : [];
    if (others.length > 0) transaction.unlink(...others);
    if (index.sorted) transaction.zrem(index.key, ...ids);
    else transaction.srem(index.key, ...ids);
    const [unlinked] = resultsOf(await transaction.exec(), index.what);
    deleted += Number(unlinked);
  }
}

/** `purgeIndexed` over each of an owner's indexes (`keys`: its current one, and those under previous secrets); how many records were there. */
export async function purgeIndexes(redis: Redis, keys: readonly string[], index: Omit<OwnerIndex, 'key'>): Promise<number> {
  let deleted = 0;
  for (const key of keys) deleted += await purgeIndexed(redis, { ...index, key });
  return deleted;
}

/**
 * The owner's record sealed in `sealed` under `id` (the seal's context), read back through `schema`,
 * never trusted as it is: undefined when there is none, it does not open or parse, or it names
 * another id or owner.
 */
export function openOwned<R extends { id: string; owner: string }>(keys: SealKeys, sealed: Buffer | null, id: string, owner: string, schema: z.ZodType<R>): R | undefined {
  if (sealed === null) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(keys.openBytes(sealed, id).toString('utf8'));
  } catch {
    return undefined;
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success || parsed.data.id !== id || parsed.data.owner !== owner) return undefined;
  return parsed.data;
}
