import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { openBytes, sealBytes } from '../access/sealed-text';
import { conversationSealKey, itemBytes } from './conversation-store';
import { bytesOf, conversationRecord, describeConversationStore, message, ROOMY, TOMORROW_MS, turnItems, until } from './conversation-store.cases.testing';
import { RedisConversationStore } from './redis-conversation-store';

/** The redis-server the integration project's global setup started. */
function testRedisUrl(): string {
  const url = process.env['OPENROUTER_TEST_REDIS_URL'];
  if (!url) throw new Error("OPENROUTER_TEST_REDIS_URL is not set: run this suite through jest's integration project");
  return url;
}

const SECRET = 'redis-conversation-store-spec-secret';
const owner = 'acme/search';

/** A prefix of its own for each store: cases never see each other's keys. */
const freshPrefix = (): string => `conversations-spec:${randomBytes(6).toString('hex')}:`;

const idOf = (item: Record<string, unknown> | undefined): string => String(item?.['id']);

describe('RedisConversationStore on a real Redis', () => {
  let redis: Redis;
  const prefixes: string[] = [];
  /** A store under a prefix of its own, whose keys are removed after the suite. */
  const newStore = (prefix = freshPrefix()): RedisConversationStore => {
    prefixes.push(prefix);
    return new RedisConversationStore(redis, prefix, SECRET);
  };
  /** The keys of conversation `id` under `prefix`, as the store lays them out. */
  const keysOf = (prefix: string, id: string): { record: string; ids: string; items: string; sizes: string; size: string } => ({
    record: `${prefix}conversation:${id}`,
    ids: `${prefix}conversation:${id}:ids`,
    items: `${prefix}conversation:${id}:items`,
    sizes: `${prefix}conversation:${id}:sizes`,
    size: `${prefix}conversation:${id}:size`,
  });

  beforeAll(() => {
    redis = new Redis(testRedisUrl());
  });
  afterAll(async () => {
    for (const prefix of prefixes) {
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length > 0) await redis.del(...keys);
    }
    await redis?.quit();
  });

  describeConversationStore('the cases of every store', {
    store: () => newStore(),
    now: () => Date.now(),
    // Redis expires a key once its clock (this machine's) is past the expiry.
    reach: (atMs) => until(() => Date.now() > atMs, `the clock to reach ${atMs}`),
  });

  it('seals the record and every item as bytes: Redis holds no text of the prompts, answers or owner, and each opens under its own context and secret only', async () => {
    const prefix = freshPrefix();
    const store = newStore(prefix);
    const marker = 'the-secret-plan-7f3a';
    const items = turnItems(`Tell me about ${marker}`);
    const record = conversationRecord(owner, { metadata: { plan: marker } });
    await store.create(record, items, TOMORROW_MS);
    const keys = keysOf(prefix, record.id);
    // Its keys and its owner's index, named without the owner.
    const written = (await redis.keys(`${prefix}*`)).filter((key) => !key.startsWith(`${prefix}conversations:owner:`));
    expect(written.sort()).toEqual(Object.values(keys).sort());
    expect(await redis.keys(`${prefix}conversations:owner:*`)).toEqual([expect.stringMatching(/:owner:[A-Za-z0-9_-]{43}$/)]);

    const sealKey = conversationSealKey(SECRET);
    const raw = (await redis.getBuffer(keys.record)) ?? Buffer.alloc(0);
    expect(raw.length).toBe(Buffer.byteLength(JSON.stringify(record)) + 28);
    expect(JSON.parse(openBytes(sealKey, raw, record.id).toString('utf8'))).toEqual(record);
    expect(() => openBytes(conversationSealKey('another secret'), raw, record.id)).toThrow();
    const sealedItems = await redis.hgetallBuffer(keys.items);
    expect(Object.keys(sealedItems).sort()).toEqual(items.map(idOf).sort());
    for (const item of items) {
      const sealed = sealedItems[idOf(item)] ?? Buffer.alloc(0);
      expect(sealed.length).toBe(itemBytes(item) + 28);
      expect(JSON.parse(openBytes(sealKey, sealed, `${record.id}:${idOf(item)}`).toString('utf8'))).toEqual(item);
      expect(() => openBytes(sealKey, sealed, record.id)).toThrow();
    }
    const everything = Buffer.concat([raw, ...Object.values(sealedItems)]).toString('latin1');
    for (const text of [marker, Buffer.from(marker).toString('base64').slice(0, 12), owner, '"owner"', 'input_text', 'lookup']) {
      expect(everything).not.toContain(text);
    }
    // What is plain: the ids, and the sizes.
    expect(await redis.lrange(keys.ids, 0, -1)).toEqual(items.map(idOf));
    expect(await redis.hgetall(keys.size)).toEqual({ items: String(items.length), bytes: String(bytesOf(items)) });
    expect(await redis.hgetall(keys.sizes)).toEqual(Object.fromEntries(items.map((item) => [idOf(item), String(itemBytes(item))])));
  });

  it('does not open an item moved under another id or into another conversation, nor a record moved under another id', async () => {
    const prefix = freshPrefix();
    const store = newStore(prefix);
    const [first, second] = [message('first'), message('second')];
    const a = conversationRecord(owner);
    const b = conversationRecord(owner);
    await store.create(a, [first, second], TOMORROW_MS);
    await store.create(b, [], TOMORROW_MS);
    const [ka, kb] = [keysOf(prefix, a.id), keysOf(prefix, b.id)];
    const sealedFirst = (await redis.hgetBuffer(ka.items, idOf(first))) ?? Buffer.alloc(0);
    // The first item's value under the second's id, in the same conversation.
    await redis.hset(ka.items, idOf(second), sealedFirst);
    expect(await store.item(owner, a.id, idOf(second))).toBeUndefined();
    expect(await store.items(owner, a.id)).toEqual([first]);
    expect(await store.page(owner, a.id, { limit: 10, order: 'asc' })).toEqual({ data: [first], hasMore: false });
    // The same item id in another conversation.
    await redis.rpush(kb.ids, idOf(first));
    await redis.hset(kb.items, idOf(first), sealedFirst);
    expect(await store.item(owner, b.id, idOf(first))).toBeUndefined();
    expect(await store.items(owner, b.id)).toEqual([]);
    // A record under another conversation's id.
    const moved = conversationRecord(owner);
    await redis.set(keysOf(prefix, moved.id).record, (await redis.getBuffer(ka.record)) ?? Buffer.alloc(0));
    await redis.hset(keysOf(prefix, moved.id).size, 'items', 0, 'bytes', 0);
    expect(await store.get(owner, moved.id)).toBeUndefined();
    expect(await store.append(owner, moved.id, [message('in')], ROOMY, TOMORROW_MS)).toBe('not_found');
    expect(await store.delete(owner, moved.id)).toBe(false);
    // The originals as they were.
    expect(await store.item(owner, a.id, idOf(first))).toEqual(first);
    expect(await store.get(owner, a.id)).toMatchObject({ items: 2 });
  });

  it('finds nothing in a damaged record: not sealed, too short, another secret, not JSON, not a record, naming another id', async () => {
    const prefix = freshPrefix();
    const store = newStore(prefix);
    const sealKey = conversationSealKey(SECRET);
    const record = conversationRecord(owner);
    const items = [message('kept')];
    await store.create(record, items, TOMORROW_MS);
    const key = keysOf(prefix, record.id).record;
    const good = (await redis.getBuffer(key)) ?? Buffer.alloc(0);
    const values: Array<string | Buffer> = [
      'garbage',
      Buffer.alloc(5),
      sealBytes(conversationSealKey('another secret'), Buffer.from(JSON.stringify(record)), record.id),
      sealBytes(sealKey, Buffer.from('{not json'), record.id),
      sealBytes(sealKey, Buffer.from(JSON.stringify({ id: record.id, owner })), record.id),
      sealBytes(sealKey, Buffer.from(JSON.stringify({ ...record, metadata: { n: 1 } })), record.id),
      sealBytes(sealKey, Buffer.from(JSON.stringify({ ...record, id: 'conv_other' })), record.id),
    ];
    for (const value of values) {
      await redis.set(key, value, 'KEEPTTL');
      expect(await store.get(owner, record.id)).toBeUndefined();
      expect(await store.items(owner, record.id)).toBeUndefined();
      expect(await store.page(owner, record.id, { limit: 10, order: 'asc' })).toBeUndefined();
      expect(await store.item(owner, record.id, idOf(items[0]))).toBeUndefined();
      expect(await store.append(owner, record.id, [message('in')], ROOMY, TOMORROW_MS)).toBe('not_found');
      expect(await store.deleteItem(owner, record.id, idOf(items[0]), TOMORROW_MS)).toBe(false);
      expect(await store.setMetadata(owner, record.id, {}, TOMORROW_MS)).toBeUndefined();
      expect(await store.delete(owner, record.id)).toBe(false);
    }
    // The record as the store sealed it opens again, and nothing was written meanwhile.
    await redis.set(key, good, 'KEEPTTL');
    expect(await store.get(owner, record.id)).toEqual({ record, items: 1, bytes: bytesOf(items) });
    expect(await store.items(owner, record.id)).toEqual(items);
  });

  it('leaves out a damaged item, and finds nothing of a conversation whose sizes are damaged', async () => {
    const prefix = freshPrefix();
    const store = newStore(prefix);
    const sealKey = conversationSealKey(SECRET);
    const items = [message('one'), message('two'), message('three')];
    const [one, two, three] = items;
    const record = conversationRecord(owner);
    await store.create(record, items, TOMORROW_MS);
    const keys = keysOf(prefix, record.id);
    const context = `${record.id}:${idOf(two)}`;
    const damaged: Array<string | Buffer> = [
      'garbage',
      sealBytes(sealKey, Buffer.from('[1,2]'), context),
      sealBytes(sealKey, Buffer.from(JSON.stringify({ ...two, id: 'msg_other' })), context),
      sealBytes(conversationSealKey('another secret'), Buffer.from(JSON.stringify(two)), context),
    ];
    for (const value of damaged) {
      await redis.hset(keys.items, idOf(two), value);
      expect(await store.items(owner, record.id)).toEqual([one, three]);
      expect(await store.item(owner, record.id, idOf(two))).toBeUndefined();
      expect(await store.page(owner, record.id, { limit: 2, order: 'asc' })).toEqual({ data: [one], hasMore: true });
      // Still listed: paging after it goes on.
      expect(await store.page(owner, record.id, { limit: 2, order: 'asc', after: idOf(two) })).toEqual({ data: [three], hasMore: false });
    }
    // An id listed whose value is gone is left out too.
    await redis.hdel(keys.items, idOf(two));
    expect(await store.items(owner, record.id)).toEqual([one, three]);
    for (const size of [{ items: 'many' }, { items: '-1', bytes: '10' }, { items: '3', bytes: '1.5' }]) {
      await redis.del(keys.size);
      await redis.hset(keys.size, size);
      expect(await store.get(owner, record.id)).toBeUndefined();
    }
  });

  it("gives every key of a conversation the expiry it is given, lengthened by every later write and never shortened", async () => {
    const prefix = freshPrefix();
    const store = newStore(prefix);
    const now = Date.now();
    const record = conversationRecord(owner);
    const keys = Object.values(keysOf(prefix, record.id));
    const expiries = async (): Promise<number[]> => Promise.all(keys.map((key) => redis.pexpiretime(key)));
    // Created without items: the item keys come with the first append, and take the conversation's expiry.
    await store.create(record, [], now + 60_000);
    expect(await redis.pexpiretime(keys[0] ?? '')).toBe(now + 60_000);
    const first = message('first');
    expect(await store.append(owner, record.id, [first, message('second')], ROOMY, now + 120_000)).toBe('added');
    expect(await expiries()).toEqual(keys.map(() => now + 120_000));
    expect(await store.setMetadata(owner, record.id, { a: 'b' }, now + 180_000)).toBeDefined();
    expect(await expiries()).toEqual(keys.map(() => now + 180_000));
    expect(await store.deleteItem(owner, record.id, idOf(first), now + 240_000)).toBe(true);
    expect(await expiries()).toEqual(keys.map(() => now + 240_000));
    // Sooner expiries leave it be.
    expect(await store.append(owner, record.id, [message('third')], ROOMY, now + 1_000)).toBe('added');
    expect(await store.setMetadata(owner, record.id, { c: 'd' }, now + 1_000)).toBeDefined();
    expect(await expiries()).toEqual(keys.map(() => now + 240_000));
    // A write that changed nothing lengthens nothing.
    expect(await store.deleteItem(owner, record.id, 'msg_unknown', now + 300_000)).toBe(false);
    expect(await store.append(owner, record.id, [message('too many')], { maxItems: 2, maxBytes: 1 << 20 }, now + 300_000)).toBe('too_long');
    expect(await expiries()).toEqual(keys.map(() => now + 240_000));
  });

  it('lets Redis drop every key of a conversation at its expiry, and a later create under the id starts afresh', async () => {
    const prefix = freshPrefix();
    const store = newStore(prefix);
    const record = conversationRecord(owner);
    await store.create(record, turnItems('brief'), Date.now() + 300);
    await until(async () => (await redis.exists(...Object.values(keysOf(prefix, record.id)))) === 0, 'every key to expire');
    expect(await store.get(owner, record.id)).toBeUndefined();
    await store.create(record, [], TOMORROW_MS);
    expect(await store.get(owner, record.id)).toEqual({ record, items: 0, bytes: 0 });
  });

  it('deletes every key of a conversation', async () => {
    const prefix = freshPrefix();
    const store = newStore(prefix);
    const record = conversationRecord(owner);
    const kept = conversationRecord(owner);
    await store.create(record, turnItems('gone'), TOMORROW_MS);
    await store.create(kept, [], TOMORROW_MS);
    expect(await store.delete(owner, record.id)).toBe(true);
    expect(await redis.keys(`${prefix}*`)).toEqual(expect.arrayContaining([keysOf(prefix, kept.id).record]));
    expect((await redis.keys(`${prefix}*`)).filter((key) => key.includes(record.id))).toEqual([]);
  });

  it('never lets concurrent appends from several connections pass maxItems or maxBytes together', async () => {
    const prefix = freshPrefix();
    const others = [new Redis(testRedisUrl()), new Redis(testRedisUrl())];
    try {
      const stores = [newStore(prefix), ...others.map((connection) => new RedisConversationStore(connection, prefix, SECRET))];
      const record = conversationRecord(owner);
      await stores[0]?.create(record, [], TOMORROW_MS);
      const byItems = await Promise.all(
        Array.from({ length: 20 }, (_, i) => stores[i % stores.length]?.append(owner, record.id, [message(`racer ${i}`)], { maxItems: 5, maxBytes: 1 << 20 }, TOMORROW_MS)),
      );
      expect(byItems.filter((o) => o === 'added')).toHaveLength(5);
      expect(byItems.filter((o) => o === 'too_long')).toHaveLength(15);
      const held = (await stores[1]?.items(owner, record.id)) ?? [];
      expect(held).toHaveLength(5);
      expect(await stores[2]?.get(owner, record.id)).toEqual({ record, items: 5, bytes: bytesOf(held) });

      // By bytes: room for three more items of the same size, whatever their count allows.
      const size = itemBytes(message('racer xx'));
      const limits = { maxItems: 1_000, maxBytes: bytesOf(held) + 3 * size };
      const byBytes = await Promise.all(Array.from({ length: 12 }, (_, i) => stores[i % stores.length]?.append(owner, record.id, [message(`racer ${String(i).padStart(2, '0')}`)], limits, TOMORROW_MS)));
      expect(byBytes.filter((o) => o === 'added')).toHaveLength(3);
      expect(await stores[0]?.get(owner, record.id)).toEqual({ record, items: 8, bytes: limits.maxBytes });
      expect(await redis.llen(keysOf(prefix, record.id).ids)).toBe(8);
    } finally {
      await Promise.all(others.map((connection) => connection.quit()));
    }
  });

  it("indexes each owner's conversations as long as the latest of them, every write lengthening it", async () => {
    const prefix = freshPrefix();
    const store = newStore(prefix);
    const now = Date.now();
    const record = conversationRecord(owner);
    await store.create(record, [], now + 60_000);
    const [index] = (await redis.keys(`${prefix}conversations:owner:*`)) as [string];
    expect(await redis.smembers(index)).toEqual([record.id]);
    expect(await redis.pexpiretime(index)).toBe(now + 60_000);
    await store.append(owner, record.id, [message('later')], ROOMY, now + 3_600_000);
    expect(await redis.pexpiretime(index)).toBe(now + 3_600_000);
    // One that expires sooner leaves it be.
    const brief = conversationRecord(owner);
    await store.create(brief, [], now + 30_000);
    expect(await redis.pexpiretime(index)).toBe(now + 3_600_000);
    expect(await redis.scard(index)).toBe(2);
    // A conversation written before the index existed joins it at its next write.
    await redis.srem(index, record.id);
    await store.setMetadata(owner, record.id, { again: 'yes' }, now + 3_600_000);
    expect(await redis.sismember(index, record.id)).toBe(1);
    await store.delete(owner, brief.id);
    expect(await redis.smembers(index)).toEqual([record.id]);
  });

  it("purges more conversations than one batch with every key of theirs, and nothing of another owner's", async () => {
    const prefix = freshPrefix();
    const store = newStore(prefix);
    const count = 200 * 2 + 9;
    const records = Array.from({ length: count }, () => conversationRecord(owner));
    for (const [i, record] of records.entries()) await store.create(record, i % 50 === 0 ? turnItems(`turn ${i}`) : [], TOMORROW_MS);
    const other = conversationRecord('acme/ads');
    const otherItems = turnItems('other');
    await store.create(other, otherItems, TOMORROW_MS);
    // One that expired: its id lingers in the index, and is taken out without being counted.
    const brief = conversationRecord(owner);
    await store.create(brief, [message('brief')], Date.now() + 200);
    await until(async () => (await redis.exists(keysOf(prefix, brief.id).record)) === 0, 'the expired conversation to go');
    expect(await store.purgeOwner(owner)).toBe(count);
    const left = await redis.keys(`${prefix}*`);
    expect(left.filter((key) => !key.startsWith(`${prefix}conversations:owner:`)).sort()).toEqual(Object.values(keysOf(prefix, other.id)).sort());
    expect(left.filter((key) => key.startsWith(`${prefix}conversations:owner:`))).toHaveLength(1);
    expect(await store.items('acme/ads', other.id)).toEqual(otherItems);
    expect(await store.purgeOwner(owner)).toBe(0);
  });

  it('refuses an item without an id before writing anything', async () => {
    const prefix = freshPrefix();
    const store = newStore(prefix);
    const record = conversationRecord(owner);
    await expect(store.create(record, [message('fine'), { type: 'message' }], TOMORROW_MS)).rejects.toThrow(/no id/);
    expect(await redis.keys(`${prefix}*`)).toEqual([]);
    await store.create(record, [], TOMORROW_MS);
    await expect(store.append(owner, record.id, [{ type: 'message', id: 7 }], ROOMY, TOMORROW_MS)).rejects.toThrow(/no id/);
    expect(await store.get(owner, record.id)).toEqual({ record, items: 0, bytes: 0 });
  });

  it('fails every read and write while Redis cannot be reached, rather than report nothing found', async () => {
    const closed = new Redis(testRedisUrl(), { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0 });
    const store = new RedisConversationStore(closed, freshPrefix(), SECRET);
    const record = conversationRecord(owner);
    await expect(store.create(record, [message('unreachable')], TOMORROW_MS)).rejects.toThrow();
    await expect(store.get(owner, record.id)).rejects.toThrow();
    await expect(store.items(owner, record.id)).rejects.toThrow();
    await expect(store.page(owner, record.id, { limit: 10, order: 'asc' })).rejects.toThrow();
    await expect(store.item(owner, record.id, 'msg_x')).rejects.toThrow();
    await expect(store.append(owner, record.id, [message('x')], ROOMY, TOMORROW_MS)).rejects.toThrow();
    await expect(store.deleteItem(owner, record.id, 'msg_x', TOMORROW_MS)).rejects.toThrow();
    await expect(store.setMetadata(owner, record.id, {}, TOMORROW_MS)).rejects.toThrow();
    await expect(store.delete(owner, record.id)).rejects.toThrow();
    await expect(store.purgeOwner(owner)).rejects.toThrow();
    closed.disconnect();
  });
});
