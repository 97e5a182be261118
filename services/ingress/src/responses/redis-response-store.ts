import type { Redis } from 'ioredis';
import { z } from 'zod';
import { SealKeys, sealBytes, type StoreSecrets } from '../access/sealed-text';
import { openOwned, ownerIndexName, previousOwnerIndexNames, purgeIndexes, resultsOf } from '../redis-records';
import { responseSealKey, type ResponseStore, type StoredResponse } from './response-store';

const jsonObject = z.record(z.string(), z.unknown());

/** A response's record as it opens from Redis: read back through this schema, never trusted as it is. */
export const storedResponseSchema = z.object({
  id: z.string(),
  owner: z.string(),
  createdAt: z.number(),
  response: jsonObject,
  input: z.array(jsonObject),
  ancestors: z.array(z.string()),
  conversationBytes: z.number().int().nonnegative(),
});

/**
 * Stores a response unless its id is taken, expiring at its expiry, and keeps each of its
 * ancestors at least as long (GT: an expiry is only ever lengthened; an ancestor already gone stays
 * gone); adds its id to its owner's index, which lives as long as the latest of its responses (a
 * new index has no expiry, which GT would take as infinite: hence the comparison).
 * KEYS: the owner's index, the response's key, then its ancestors'. ARGV: the id, the sealed
 * record, the expiry (Unix ms).
 */
const PUT = `
if not redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PXAT', ARGV[3]) then return 0 end
for i = 3, #KEYS do redis.call('PEXPIREAT', KEYS[i], ARGV[3], 'GT') end
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('PEXPIRETIME', KEYS[1]) < tonumber(ARGV[3]) then redis.call('PEXPIREAT', KEYS[1], ARGV[3]) end
return 1
`;

/**
 * The stored responses of a gateway with Redis (the access store's, `access.redis`), shared by every
 * ingress replica: `<prefix>response:<id>` holds the whole record as JSON sealed (as bytes) under a
 * key derived from `access.keyHashSecret` with the id as context, so Redis alone reveals no prompt
 * or answer and a value moved under another id does not open. Each key expires `retentionDays`
 * after the last turn of its conversation: a new turn lengthens its ancestors' expiry to its own.
 *
 * `responses:owner:<hmac of the owner>` is a set of the ids each owner stored (its index, for
 * `purgeOwner`), expiring with the latest of them; the ids of responses that expired meanwhile stay
 * in it until a purge takes them out. Responses stored before the index existed are not in it: they
 * are not purged, and go at their expiry.
 */
export class RedisResponseStore implements ResponseStore {
  private readonly sealKeys: SealKeys;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    /** `access.keyHashSecret`, and the previous ones while it is rotated: what was stored under those still opens and is purged. */
    secrets: StoreSecrets | string,
  ) {
    this.sealKeys = new SealKeys(responseSealKey, secrets);
  }

  async put(record: StoredResponse, expiresAtMs: number): Promise<void> {
    const sealed = sealBytes(this.sealKeys.current, Buffer.from(JSON.stringify(record), 'utf8'), record.id);
    const keys = [this.ownerKey(record.owner), ...[record.id, ...record.ancestors].map((id) => this.key(id))];
    const stored = await this.redis.eval(PUT, keys.length, ...keys, record.id, sealed, String(Math.round(expiresAtMs)));
    if (stored !== 1) throw new Error(`response ${record.id} exists already`);
  }

  async get(owner: string, id: string): Promise<StoredResponse | undefined> {
    return this.open(owner, id, await this.redis.getBuffer(this.key(id)));
  }

  async getMany(owner: string, ids: readonly string[]): Promise<Array<StoredResponse | undefined>> {
    if (ids.length === 0) return [];
    const values = await this.redis.mgetBuffer(...ids.map((id) => this.key(id)));
    return ids.map((id, i) => this.open(owner, id, values[i] ?? null));
  }

  async delete(owner: string, id: string): Promise<boolean> {
    if (!(await this.get(owner, id))) return false;
    const [deleted] = resultsOf(await this.redis.multi().del(this.key(id)).srem(this.ownerKey(owner), id).exec(), `response ${id}`);
    // Deleted by another request meanwhile: that one reports it.
    return deleted === 1;
  }

  async purgeOwner(owner: string): Promise<number> {
    const previous = previousOwnerIndexNames(this.sealKeys.secrets, 'responses', owner).map((name) => `${this.prefix}responses:owner:${name}`);
    // A background response's streamed events go with it: they hold its whole answer.
    return purgeIndexes(this.redis, [this.ownerKey(owner), ...previous], { sorted: false, record: (id) => this.key(id), others: (id) => [responseEventsKey(this.prefix, id)], what: `the responses of ${owner}` });
  }

  async close(): Promise<void> {
    // The connection is the access store's: its owner closes it.
  }

  private key(id: string): string {
    return `${this.prefix}response:${id}`;
  }

  private ownerKey(owner: string): string {
    return `${this.prefix}responses:owner:${ownerIndexName(this.sealKeys.secrets.current, 'responses', owner)}`;
  }

  /** The owner's record sealed in `sealed` under `id`, or undefined (none, another owner's, or one that does not open or parse). */
  private open(owner: string, id: string, sealed: Buffer | null): StoredResponse | undefined {
    return openOwned(this.sealKeys, sealed, id, owner, storedResponseSchema);
  }
}

/** Where a background response's stream of events is kept (`RedisResponseEventLog`; a purge of its owner deletes it with the response). */
export function responseEventsKey(prefix: string, id: string): string {
  return `${prefix}background:${id}:events`;
}
