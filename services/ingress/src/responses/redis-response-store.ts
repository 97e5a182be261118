import type { Redis } from 'ioredis';
import { z } from 'zod';
import { openBytes, sealBytes } from '../access/sealed-text';
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
 * gone). KEYS: the response's key, then its ancestors'. ARGV: the sealed record, the expiry (Unix ms).
 */
const PUT = `
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PXAT', ARGV[2]) then return 0 end
for i = 2, #KEYS do redis.call('PEXPIREAT', KEYS[i], ARGV[2], 'GT') end
return 1
`;

/**
 * The stored responses of a gateway with Redis (the access store's, `access.redis`), shared by every
 * ingress replica: `<prefix>response:<id>` holds the whole record as JSON sealed (as bytes) under a
 * key derived from `access.keyHashSecret` with the id as context, so Redis alone reveals no prompt
 * or answer and a value moved under another id does not open. Each key expires `retentionDays`
 * after the last turn of its conversation: a new turn lengthens its ancestors' expiry to its own.
 */
export class RedisResponseStore implements ResponseStore {
  private readonly sealKey: Buffer;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    keyHashSecret: string,
  ) {
    this.sealKey = responseSealKey(keyHashSecret);
  }

  async put(record: StoredResponse, expiresAtMs: number): Promise<void> {
    const sealed = sealBytes(this.sealKey, Buffer.from(JSON.stringify(record), 'utf8'), record.id);
    const keys = [record.id, ...record.ancestors].map((id) => this.key(id));
    const stored = await this.redis.eval(PUT, keys.length, ...keys, sealed, String(Math.round(expiresAtMs)));
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
    // Deleted by another request meanwhile: that one reports it.
    return (await this.redis.del(this.key(id))) === 1;
  }

  async close(): Promise<void> {
    // The connection is the access store's: its owner closes it.
  }

  private key(id: string): string {
    return `${this.prefix}response:${id}`;
  }

  /** The owner's record sealed in `sealed` under `id`, or undefined (none, another owner's, or one that does not open or parse). */
  private open(owner: string, id: string, sealed: Buffer | null): StoredResponse | undefined {
    if (sealed === null) return undefined;
    let value: unknown;
    try {
      value = JSON.parse(openBytes(this.sealKey, sealed, id).toString('utf8'));
    } catch {
      return undefined;
    }
    const parsed = storedResponseSchema.safeParse(value);
    if (!parsed.success || parsed.data.id !== id || parsed.data.owner !== owner) return undefined;
    return parsed.data;
  }
}
