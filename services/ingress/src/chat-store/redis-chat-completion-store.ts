import type { Redis } from 'ioredis';
import { z } from 'zod';
import { SealKeys, sealBytes, type StoreSecrets } from '../access/sealed-text';
import { mergeOwnerIndexes, openOwned, ownerIndexName, previousOwnerIndexNames, purgeIndexes, resultsOf } from '../redis-records';
import { chatCompletionSealKey, type ChatCompletionStore, type IndexEntry, type IndexPage, type StoredChatCompletion } from './chat-completion-store';

const jsonObject = z.record(z.string(), z.unknown());

/** A completion's record as it opens from Redis: read back through this schema, never trusted as it is. */
export const storedChatCompletionSchema = z.object({
  id: z.string(),
  owner: z.string(),
  createdAtMs: z.number(),
  requestedModel: z.string(),
  metadata: z.record(z.string(), z.string()),
  completion: jsonObject,
  messages: z.array(jsonObject),
});

/**
 * Stores a completion unless its id is taken, expiring at its expiry, and adds it to its owner's
 * index (scored by its creation), which lives as long as the latest of its completions (a new index
 * has no expiry: hence the comparison). The ids created before ARGV[5] (those kept as long as this
 * one have expired) leave the index: one stored into regularly never expires, and would otherwise
 * grow by every completion ever kept. KEYS: the index, the completion's key. ARGV: the id, the
 * sealed record, the expiry (Unix ms), the creation (Unix ms), the oldest creation still kept.
 */
const PUT = `
if not redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PXAT', ARGV[3]) then return 0 end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[5])
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
if redis.call('PEXPIRETIME', KEYS[1]) < tonumber(ARGV[3]) then redis.call('PEXPIREAT', KEYS[1], ARGV[3]) end
return 1
`;

/**
 * Up to ARGV[3] entries (id, creation) of an owner's index after the id ARGV[1] ('' for the start),
 * oldest first when ARGV[2] is 'asc'; false when that id is not in the index and no creation
 * ARGV[4] was given for it. With one, an id that has left the index since it was read still marks
 * where the page starts: from the first entry of its creation on, with as many more as share that
 * creation (the caller drops those up to the id itself). Ranks are read at the moment: completions
 * deleted between two pages move nothing the next page has not seen.
 */
const IDS = `
local asc = ARGV[2] == 'asc'
local start = 0
local ties = 0
if ARGV[1] ~= '' then
  local rank
  if asc then rank = redis.call('ZRANK', KEYS[1], ARGV[1]) else rank = redis.call('ZREVRANK', KEYS[1], ARGV[1]) end
  if rank then
    start = rank + 1
  elseif ARGV[4] == '' then
    return false
  else
    if asc then start = redis.call('ZCOUNT', KEYS[1], '-inf', '(' .. ARGV[4]) else start = redis.call('ZCOUNT', KEYS[1], '(' .. ARGV[4], '+inf') end
    ties = redis.call('ZCOUNT', KEYS[1], ARGV[4], ARGV[4])
  end
end
local stop = start + tonumber(ARGV[3]) + ties - 1
if asc then return redis.call('ZRANGE', KEYS[1], start, stop, 'WITHSCORES') end
return redis.call('ZREVRANGE', KEYS[1], start, stop, 'WITHSCORES')
`;

/**
 * The stored chat completions of a gateway with Redis (the access store's, `access.redis`), shared by
 * every ingress replica: `<prefix>chatcmpl:<id>` holds the whole record as JSON sealed (as bytes)
 * under a key derived from `access.keyHashSecret` with the id as context, expiring
 * `chatCompletions.retentionDays` after its creation.
 *
 * `chatcmpl:owner:<hmac of the owner>` is a sorted set of the ids each owner stored, scored by their
 * creation (Unix ms): listing pages through it by rank, and a purge takes it apart. It expires with
 * the latest of them; the ids that expired leave it as a completion is stored (those older than the
 * retention) or as a list finds them gone or no longer opening.
 */
export class RedisChatCompletionStore implements ChatCompletionStore {
  private readonly sealKeys: SealKeys;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    /** `access.keyHashSecret`, and the previous ones while it is rotated: what was stored under those still opens and is listed. */
    secrets: StoreSecrets | string,
  ) {
    this.sealKeys = new SealKeys(chatCompletionSealKey, secrets);
  }

  async put(record: StoredChatCompletion, expiresAtMs: number): Promise<void> {
    const createdAtMs = Math.round(record.createdAtMs);
    const keptMs = Math.round(expiresAtMs) - createdAtMs;
    const args = [record.id, this.seal(record), String(createdAtMs + keptMs), String(createdAtMs), String(createdAtMs - keptMs)];
    const stored = await this.redis.eval(PUT, 2, this.ownerKey(record.owner), this.key(record.id), ...args);
    if (stored !== 1) throw new Error(`chat completion ${record.id} exists already`);
  }

  async get(owner: string, id: string): Promise<StoredChatCompletion | undefined> {
    return this.open(owner, id, await this.redis.getBuffer(this.key(id)));
  }

  async getMany(owner: string, ids: readonly string[]): Promise<Array<StoredChatCompletion | undefined>> {
    if (ids.length === 0) return [];
    const values = await this.redis.mgetBuffer(...ids.map((id) => this.key(id)));
    const records = ids.map((id, i) => this.open(owner, id, values[i] ?? null));
    // Expired, deleted meanwhile, or sealed under a secret no longer known: its id leaves the
    // index, so later pages do not read it again (a page of such ids would otherwise be read by
    // every list, and a list could not page past them).
    const gone = ids.filter((_, i) => records[i] === undefined);
    if (gone.length > 0) await this.redis.zrem(this.ownerKey(owner), ...gone);
    return records;
  }

  async ids(owner: string, page: IndexPage): Promise<IndexEntry[] | undefined> {
    const { after, order, count } = page;
    // The first page of a list lists what was stored before a rotation of the secret too.
    if (after === undefined) await mergeOwnerIndexes(this.redis, this.ownerKey(owner), this.previousOwnerKeys(owner), true);
    const [afterId, afterMs] = typeof after === 'object' ? [after.id, String(after.createdAtMs)] : [after ?? '', ''];
    const reply = (await this.redis.eval(IDS, 1, this.ownerKey(owner), afterId, order, String(count), afterMs)) as string[] | null;
    if (reply === null) return undefined;
    const entries: IndexEntry[] = [];
    for (let i = 0; i + 1 < reply.length; i += 2) entries.push({ id: reply[i] as string, createdAtMs: Number(reply[i + 1]) });
    if (typeof after !== 'object') return entries;
    // Past an entry that has left the index: those of its creation up to it were read already.
    const past = (entry: IndexEntry): boolean =>
      order === 'asc'
        ? entry.createdAtMs > after.createdAtMs || (entry.createdAtMs === after.createdAtMs && entry.id > after.id)
        : entry.createdAtMs < after.createdAtMs || (entry.createdAtMs === after.createdAtMs && entry.id < after.id);
    return entries.filter(past).slice(0, count);
  }

  async setMetadata(owner: string, id: string, metadata: Record<string, string>): Promise<StoredChatCompletion | undefined> {
    const record = await this.get(owner, id);
    if (!record) return undefined;
    const changed: StoredChatCompletion = { ...record, metadata: { ...metadata } };
    // Only over a completion still there, and with the expiry it has.
    const set = await this.redis.set(this.key(id), this.seal(changed), 'KEEPTTL', 'XX');
    return set === 'OK' ? changed : undefined;
  }

  async delete(owner: string, id: string): Promise<boolean> {
    if (!(await this.get(owner, id))) return false;
    const [deleted] = resultsOf(await this.redis.multi().del(this.key(id)).zrem(this.ownerKey(owner), id).exec(), `chat completion ${id}`);
    // Deleted by another request meanwhile: that one reports it.
    return deleted === 1;
  }

  async purgeOwner(owner: string): Promise<number> {
    return purgeIndexes(this.redis, [this.ownerKey(owner), ...this.previousOwnerKeys(owner)], { sorted: true, record: (id) => this.key(id), what: `the chat completions of ${owner}` });
  }

  async close(): Promise<void> {
    // The connection is the access store's: its owner closes it.
  }

  private seal(record: StoredChatCompletion): Buffer {
    return sealBytes(this.sealKeys.current, Buffer.from(JSON.stringify(record), 'utf8'), record.id);
  }

  private key(id: string): string {
    return `${this.prefix}chatcmpl:${id}`;
  }

  private ownerKey(owner: string): string {
    return `${this.prefix}chatcmpl:owner:${ownerIndexName(this.sealKeys.secrets.current, 'chat-completions', owner)}`;
  }

  private previousOwnerKeys(owner: string): string[] {
    return previousOwnerIndexNames(this.sealKeys.secrets, 'chat-completions', owner).map((name) => `${this.prefix}chatcmpl:owner:${name}`);
  }

  /** The owner's record sealed in `sealed` under `id`, or undefined (none, another owner's, or one that does not open or parse). */
  private open(owner: string, id: string, sealed: Buffer | null): StoredChatCompletion | undefined {
    return openOwned(this.sealKeys, sealed, id, owner, storedChatCompletionSchema);
  }
}
