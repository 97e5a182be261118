import { createHmac } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { z } from 'zod';
import { openBytes } from './access/sealed-text';

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

/**
 * The owner's record sealed in `sealed` under `id` (the seal's context), read back through `schema`,
 * never trusted as it is: undefined when there is none, it does not open or parse, or it names
 * another id or owner.
 */
export function openOwned<R extends { id: string; owner: string }>(sealKey: Buffer, sealed: Buffer | null, id: string, owner: string, schema: z.ZodType<R>): R | undefined {
  if (sealed === null) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(openBytes(sealKey, sealed, id).toString('utf8'));
  } catch {
    return undefined;
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success || parsed.data.id !== id || parsed.data.owner !== owner) return undefined;
  return parsed.data;
}
