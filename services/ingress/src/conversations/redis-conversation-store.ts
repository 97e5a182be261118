import type { Redis } from 'ioredis';
import { z } from 'zod';
import { sealBytes, SealKeys, type StoreSecrets } from '../access/sealed-text';
import { ownerIndexName, previousOwnerIndexNames, purgeIndexes, resultsOf } from '../redis-records';
import type { ResponseJson } from '../responses/response-store';
import {
  conversationSealKey,
  duplicateId,
  itemBytes,
  type AppendOutcome,
  type ConversationLimits,
  type ConversationRecord,
  type ConversationState,
  type ConversationStore,
  type ItemPage,
} from './conversation-store';

/** How many conversations `purgeOwner` takes at a time (each up to five keys, its items unlinked in the background). */
const PURGE_BATCH = 200;

/** A conversation's record as it opens from Redis: read back through this schema, never trusted as it is. */
const recordSchema = z.object({
  id: z.string(),
  owner: z.string(),
  createdAt: z.number(),
  metadata: z.record(z.string(), z.string()),
});

/** An item as it opens from Redis. */
const itemSchema = z.record(z.string(), z.unknown());

/** A count of the size hash as Redis gives it back: a plain non-negative integer. */
const countSchema = z
  .string()
  .regex(/^\d{1,15}$/)
  .transform(Number);

/**
 * `index(id, t)` adds the conversation `id` to its owner's index (KEYS[6]) and keeps the index at
 * least until `t` (Unix ms, a number). `extend(at, id)` gives every key of a conversation (KEYS[1..5])
 * one expiry: the later of the record's and `at` (Unix ms), so an expiry is only lengthened, and
 * indexes it until then. Not PEXPIREAT GT on each: a key this write created (the first item's
 * list, a new index) has no expiry yet, which GT takes as infinite and would leave so.
 */
const EXTEND = `
local function index(id, t)
  redis.call('SADD', KEYS[6], id)
  if redis.call('PEXPIRETIME', KEYS[6]) < t then redis.call('PEXPIREAT', KEYS[6], string.format('%.0f', t)) end
end
local function extend(at, id)
  local t = tonumber(at)
  local held = redis.call('PEXPIRETIME', KEYS[1])
  if held > t then t = held end
  local s = string.format('%.0f', t)
  for i = 1, 5 do redis.call('PEXPIREAT', KEYS[i], s) end
  index(id, t)
end
`;

/**
 * Stores a new conversation unless its id is taken (0), with its first items, and indexes it.
 * KEYS: the record, ids, items, sizes, size, the owner's index. ARGV: the sealed record, the expiry
 * (Unix ms), the items' bytes in all, the conversation's id, then for each item its id, sealed value
 * and bytes. Anything left under the other keys (a record gone before them) is cleared first.
 */
const CREATE = `${EXTEND}
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PXAT', ARGV[2]) then return 0 end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5])
local n = 0
for i = 5, #ARGV, 3 do
  redis.call('RPUSH', KEYS[2], ARGV[i])
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
  redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 2])
  n = n + 1
end
redis.call('HSET', KEYS[5], 'items', n, 'bytes', ARGV[3])
for i = 1, 5 do redis.call('PEXPIREAT', KEYS[i], ARGV[2]) end
index(ARGV[4], tonumber(ARGV[2]))
return 1
`;

/**
 * Adds items at the end, all or none: none when one's id is held already or comes twice
 * (`{'duplicate', id}`). KEYS: the record, ids, items, sizes, size, the owner's index. ARGV:
 * maxItems, maxBytes, the expiry (Unix ms), the conversation's id, then for each item its id,
 * sealed value and bytes.
 */
const APPEND = `${EXTEND}
if redis.call('EXISTS', KEYS[1]) == 0 then return 'not_found' end
local n, bytes, seen = 0, 0, {}
for i = 5, #ARGV, 3 do
  if seen[ARGV[i]] or redis.call('HEXISTS', KEYS[4], ARGV[i]) == 1 then return {'duplicate', ARGV[i]} end
  seen[ARGV[i]] = true
  n = n + 1
  bytes = bytes + tonumber(ARGV[i + 2])
end
local held = redis.call('HMGET', KEYS[5], 'items', 'bytes')
local heldItems, heldBytes = tonumber(held[1]) or 0, tonumber(held[2]) or 0
if heldItems + n > tonumber(ARGV[1]) or heldBytes + bytes > tonumber(ARGV[2]) then return 'too_long' end
for i = 5, #ARGV, 3 do
  redis.call('RPUSH', KEYS[2], ARGV[i])
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
  redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 2])
end
redis.call('HINCRBY', KEYS[5], 'items', n)
redis.call('HINCRBY', KEYS[5], 'bytes', string.format('%.0f', bytes))
extend(ARGV[3], ARGV[4])
return 'added'
`;

/** Removes one item (1), or finds none (0). KEYS: the record, ids, items, sizes, size, the owner's index. ARGV: the item's id, the expiry (Unix ms), the conversation's id. */
const DELETE_ITEM = `${EXTEND}
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('LREM', KEYS[2], 1, ARGV[1]) == 0 then return 0 end
redis.call('HDEL', KEYS[3], ARGV[1])
local bytes = tonumber(redis.call('HGET', KEYS[4], ARGV[1])) or 0
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('HINCRBY', KEYS[5], 'items', -1)
if bytes ~= 0 then redis.call('HINCRBY', KEYS[5], 'bytes', string.format('%.0f', -bytes)) end
extend(ARGV[2], ARGV[3])
return 1
`;

/** Replaces the record while there is one (1; 0 when it is gone). KEYS: the record, ids, items, sizes, size, the owner's index. ARGV: the sealed record, the expiry (Unix ms), the conversation's id. */
const SET_RECORD = `${EXTEND}
if not redis.call('SET', KEYS[1], ARGV[1], 'XX', 'KEEPTTL') then return 0 end
extend(ARGV[2], ARGV[3])
return 1
`;

/**
 * The conversations of a gateway with Redis (the access store's, `access.redis`), shared by every
 * ingress replica. Under the prefix, for each conversation:
 * - `conversation:<id>` its record as JSON, sealed (as bytes) under `conversationSealKey` of
 *   `access.keyHashSecret` with the id as context;
 * - `conversation:<id>:ids` its items' ids, oldest first (a list);
 * - `conversation:<id>:items` item id → the item as JSON, sealed with `<id>:<itemId>` as context
 *   (a hash): Redis alone reveals no prompt or answer, and an item moved under another id or
 *   conversation does not open;
 * - `conversation:<id>:sizes` item id → its `itemBytes` (a hash), so removing one takes off
 *   exactly what it added;
 * - `conversation:<id>:size` `items` and `bytes` it holds in all, as plain numbers (a hash),
 *   checked against the limits by the script that appends, so concurrent appends from several
 *   replicas never pass them together.
 * All of them share one expiry, the latest any write was given (an expiry is only lengthened).
 * `conversations:owner:<hmac of the owner>` is a set of each owner's conversation ids (its index,
 * for `purgeOwner`), kept as long as the latest of them; ids of conversations that expired stay in
 * it until a purge takes them out. A conversation written before the index existed joins it at its
 * next write; one never written again is not purged, and goes at its expiry.
 *
 * The owner is in the sealed record: every read opens it first, and one of another owner is not
 * found. An append with an item id the conversation holds (or one id twice) is refused by its
 * script, so an id is listed, counted and held once. Metadata is replaced as read,
 * changed and written back: of two concurrent `setMetadata` the last to write wins.
 */
export class RedisConversationStore implements ConversationStore {
  private readonly sealKeys: SealKeys;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    /** `access.keyHashSecret`, and the previous ones while it is rotated: what was sealed under those still opens. */
    secrets: StoreSecrets | string,
  ) {
    this.sealKeys = new SealKeys(conversationSealKey, secrets);
  }

  async create(record: ConversationRecord, items: ResponseJson[], expiresAtMs: number): Promise<void> {
    const sealed = this.sealItems(record.id, items);
    const twice = duplicateId(sealed, () => false);
    if (twice !== undefined) throw new Error(`conversation ${record.id}: two items have the id ${twice}`);
    const bytes = sealed.reduce((sum, item) => sum + item.bytes, 0);
    const created = await this.redis.eval(CREATE, 6, ...this.keys(record.id), this.ownerKey(record.owner), this.sealRecord(record), at(expiresAtMs), String(bytes), record.id, ...flat(sealed));
    if (Number(created) !== 1) throw new Error(`conversation ${record.id} exists already`);
  }

  async get(owner: string, id: string): Promise<ConversationState | undefined> {
    // One transaction: the record and what it holds as they stood together.
    const [sealed, size] = resultsOf(await this.redis.multi().getBuffer(this.recordKey(id)).hmget(this.sizeKey(id), 'items', 'bytes').exec(), `conversation ${id}`);
    const record = this.openRecord(owner, id, sealed);
    if (!record || !Array.isArray(size)) return undefined;
    const items = countSchema.safeParse(size[0]);
    const bytes = countSchema.safeParse(size[1]);
    return items.success && bytes.success ? { record, items: items.data, bytes: bytes.data } : undefined;
  }

  async setMetadata(owner: string, id: string, metadata: Record<string, string>, expiresAtMs: number): Promise<ConversationRecord | undefined> {
    const record = this.openRecord(owner, id, await this.redis.getBuffer(this.recordKey(id)));
    if (!record) return undefined;
    const changed: ConversationRecord = { ...record, metadata: { ...metadata } };
    const written = await this.redis.eval(SET_RECORD, 6, ...this.keys(id), this.ownerKey(owner), this.sealRecord(changed), at(expiresAtMs), id);
    // Deleted by another request meanwhile: not brought back.
    return Number(written) === 1 ? changed : undefined;
  }

  async delete(owner: string, id: string): Promise<boolean> {
    if (!(await this.owned(owner, id))) return false;
    const [record] = resultsOf(
      await this.redis
        .multi()
        .del(this.recordKey(id))
        .del(...this.keys(id).slice(1))
        .srem(this.ownerKey(owner), id)
        .exec(),
      `conversation ${id}`,
    );
    // Deleted by another request meanwhile: that one reports it.
    return record === 1;
  }

  async append(owner: string, id: string, items: ResponseJson[], limits: ConversationLimits, expiresAtMs: number): Promise<AppendOutcome> {
    if (!(await this.owned(owner, id))) return 'not_found';
    const sealed = this.sealItems(id, items);
    const outcome = await this.redis.eval(APPEND, 6, ...this.keys(id), this.ownerKey(owner), String(limits.maxItems), String(limits.maxBytes), at(expiresAtMs), id, ...flat(sealed));
    if (outcome === 'added' || outcome === 'not_found' || outcome === 'too_long') return outcome;
    if (Array.isArray(outcome) && outcome[0] === 'duplicate' && typeof outcome[1] === 'string') return { duplicate: outcome[1] };
    throw new Error(`conversation ${id}: unexpected reply to an append: ${String(outcome)}`);
  }

  async items(owner: string, id: string): Promise<ResponseJson[] | undefined> {
    // One transaction, so no item removed meanwhile is listed without its value; the items open only once the owner is known.
    const [sealed, ids, values] = resultsOf(
      await this.redis.multi().getBuffer(this.recordKey(id)).lrange(this.idsKey(id), 0, -1).hgetallBuffer(this.itemsKey(id)).exec(),
      `conversation ${id}`,
    );
    if (!this.openRecord(owner, id, sealed)) return undefined;
    const byId = (values ?? {}) as Record<string, Buffer>;
    return present(stringsOf(ids).map((itemId) => this.openItem(id, itemId, byId[itemId])));
  }

  async page(owner: string, id: string, query: { limit: number; order: 'asc' | 'desc'; after?: string | undefined }): Promise<ItemPage | 'after_not_found' | undefined> {
    const [sealed, listed] = resultsOf(await this.redis.multi().getBuffer(this.recordKey(id)).lrange(this.idsKey(id), 0, -1).exec(), `conversation ${id}`);
    if (!this.openRecord(owner, id, sealed)) return undefined;
    const ids = stringsOf(listed);
    if (query.order === 'desc') ids.reverse();
    let start = 0;
    if (query.after !== undefined) {
      const found = ids.indexOf(query.after);
      if (found < 0) return 'after_not_found';
      start = found + 1;
    }
    const limit = Math.max(0, query.limit);
    const pageIds = ids.slice(start, start + limit);
    const values = pageIds.length === 0 ? [] : await this.redis.hmgetBuffer(this.itemsKey(id), ...pageIds);
    // An item removed since the ids were read, or one that does not open, is left out.
    return { data: present(pageIds.map((itemId, i) => this.openItem(id, itemId, values[i]))), hasMore: start + limit < ids.length };
  }

  async item(owner: string, id: string, itemId: string): Promise<ResponseJson | undefined> {
    const [sealed, value] = resultsOf(await this.redis.multi().getBuffer(this.recordKey(id)).hgetBuffer(this.itemsKey(id), itemId).exec(), `conversation ${id}`);
    if (!this.openRecord(owner, id, sealed)) return undefined;
    return this.openItem(id, itemId, value);
  }

  async deleteItem(owner: string, id: string, itemId: string, expiresAtMs: number): Promise<boolean> {
    if (!(await this.owned(owner, id))) return false;
    return Number(await this.redis.eval(DELETE_ITEM, 6, ...this.keys(id), this.ownerKey(owner), itemId, at(expiresAtMs), id)) === 1;
  }

  /** Purged a few hundred at a time (a conversation is several keys). */
  async purgeOwner(owner: string): Promise<number> {
    const previous = previousOwnerIndexNames(this.sealKeys.secrets, 'conversations', owner).map((name) => `${this.prefix}conversations:owner:${name}`);
    return purgeIndexes(this.redis, [this.ownerKey(owner), ...previous], { sorted: false, record: (id) => this.recordKey(id), others: (id) => this.keys(id).slice(1), batch: PURGE_BATCH, what: `the conversations of ${owner}` });
  }

  async close(): Promise<void> {
    // The connection is the access store's: its owner closes it.
  }

  private recordKey(id: string): string {
    return `${this.prefix}conversation:${id}`;
  }

  private idsKey(id: string): string {
    return `${this.prefix}conversation:${id}:ids`;
  }

  private itemsKey(id: string): string {
    return `${this.prefix}conversation:${id}:items`;
  }

  /** Every key of a conversation, as the scripts take them: the record, ids, items, sizes, size. */
  private keys(id: string): [string, string, string, string, string] {
    return [this.recordKey(id), this.idsKey(id), this.itemsKey(id), `${this.prefix}conversation:${id}:sizes`, this.sizeKey(id)];
  }

  private ownerKey(owner: string): string {
    return `${this.prefix}conversations:owner:${ownerIndexName(this.sealKeys.secrets.current, 'conversations', owner)}`;
  }

  private sizeKey(id: string): string {
    return `${this.prefix}conversation:${id}:size`;
  }

  private sealRecord(record: ConversationRecord): Buffer {
    return sealBytes(this.sealKeys.current, Buffer.from(JSON.stringify(record), 'utf8'), record.id);
  }

  /** Each item with its id, sealed under its conversation and id, and its `itemBytes`; throws when one has no id (a caller's mistake). */
  private sealItems(id: string, items: ResponseJson[]): SealedItem[] {
    return items.map((item) => {
      const itemId = item['id'];
      if (typeof itemId !== 'string' || itemId === '') throw new Error(`conversation ${id}: an item has no id`);
      const json = JSON.stringify(item);
      return { id: itemId, sealed: sealBytes(this.sealKeys.current, Buffer.from(json, 'utf8'), `${id}:${itemId}`), bytes: itemBytes(item) };
    });
  }

  /** The owner's record of `id`, read on its own (before a write). */
  private async owned(owner: string, id: string): Promise<ConversationRecord | undefined> {
    return this.openRecord(owner, id, await this.redis.getBuffer(this.recordKey(id)));
  }

  /** The owner's record sealed in `sealed` under `id`, or undefined (none, another owner's, or one that does not open or parse). */
  private openRecord(owner: string, id: string, sealed: unknown): ConversationRecord | undefined {
    const value = this.open(sealed, id);
    const parsed = recordSchema.safeParse(value);
    if (!parsed.success || parsed.data.id !== id || parsed.data.owner !== owner) return undefined;
    return parsed.data;
  }

  /** The item `itemId` of conversation `id` sealed in `sealed`, or undefined (none, or one that does not open or parse). */
  private openItem(id: string, itemId: string, sealed: unknown): ResponseJson | undefined {
    const parsed = itemSchema.safeParse(this.open(sealed, `${id}:${itemId}`));
    return parsed.success && parsed.data['id'] === itemId ? parsed.data : undefined;
  }

  /** The JSON sealed in `sealed` under `context`, or undefined when it is not there or does not open. */
  private open(sealed: unknown, context: string): unknown {
    if (!(sealed instanceof Buffer)) return undefined;
    try {
      return JSON.parse(this.sealKeys.openBytes(sealed, context).toString('utf8'));
    } catch {
      return undefined;
    }
  }
}

interface SealedItem {
  id: string;
  sealed: Buffer;
  bytes: number;
}

/** The scripts' ARGV for items: id, sealed value, bytes, for each in order. */
function flat(items: SealedItem[]): Array<string | Buffer> {
  return items.flatMap((item) => [item.id, item.sealed, String(item.bytes)]);
}

/** An expiry as the scripts take it: whole Unix ms. */
function at(expiresAtMs: number): string {
  return String(Math.round(expiresAtMs));
}

/** The items that opened, in order. */
function present(items: Array<ResponseJson | undefined>): ResponseJson[] {
  return items.filter((item): item is ResponseJson => item !== undefined);
}

/** A list as Redis gave it back (strings), or none. */
function stringsOf(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

