import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { openBytes, sealBytes } from '../access/sealed-text';
import { RedisResponseStore, responseEventsKey } from './redis-response-store';
import { PURGE_BATCH } from '../redis-records';
import { responseSealKey, type ResponseStore } from './response-store';
import { describeResponseStore, storedResponse, TOMORROW_MS } from './response-store.cases.testing';
import { until } from '../redis.testing';

/** The redis-server the integration project's global setup started. */
function testRedisUrl(): string {
  const url = process.env['OPENROUTER_TEST_REDIS_URL'];
  if (!url) throw new Error("OPENROUTER_TEST_REDIS_URL is not set: run this suite through jest's integration project");
  return url;
}

const SECRET = 'redis-response-store-spec-secret';

/** A prefix of its own for each store: cases never see each other's keys. */
const freshPrefix = (): string => `responses-spec:${randomBytes(6).toString('hex')}:`;

describe('RedisResponseStore on a real Redis', () => {
  let redis: Redis;
  const prefixes: string[] = [];
  /** A store under a prefix of its own, whose keys are removed after the suite. */
  const newStore = (prefix = freshPrefix()): RedisResponseStore => {
    prefixes.push(prefix);
    return new RedisResponseStore(redis, prefix, SECRET);
  };

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

  describe('the cases of every store', () => {
    describeResponseStore({ store: (): ResponseStore => newStore() });
  });

  it('keeps the whole record sealed as bytes: Redis holds no text of the prompt, the answer or the owner, and it opens under its own id and secret only', async () => {
    const prefix = freshPrefix();
    const store = newStore(prefix);
    const marker = 'the-secret-plan-7f3a';
    const response = storedResponse('acme/search', `Tell me about ${marker}`);
    await store.put(response, TOMORROW_MS);
    const raw = (await redis.getBuffer(`${prefix}response:${response.id}`)) ?? Buffer.alloc(0);
    const json = JSON.stringify(response);
    // Sealed as bytes: the JSON's size and 28 bytes (IV and tag), none of its text.
    expect(raw.length).toBe(Buffer.byteLength(json) + 28);
    for (const text of [marker, Buffer.from(marker).toString('base64').slice(0, 12), 'acme/search', '"owner"', 'output_text']) {
      expect(raw.toString('latin1')).not.toContain(text);
    }
    expect(JSON.parse(openBytes(responseSealKey(SECRET), raw, response.id).toString('utf8'))).toEqual(response);
    expect(() => openBytes(responseSealKey('another secret'), raw, response.id)).toThrow();
    // The only keys it wrote: the response, and its owner's index, named without the owner.
    const keys = (await redis.keys(`${prefix}*`)).sort();
    expect(keys).toEqual([`${prefix}response:${response.id}`, expect.stringMatching(new RegExp(`^${prefix}responses:owner:[A-Za-z0-9_-]{43}$`))]);
    expect(keys.join(' ')).not.toContain('acme');
  });

  it('does not open a value moved under another id, and leaves the original as it was', async () => {
    const prefix = freshPrefix();
    const store = newStore(prefix);
    const response = storedResponse('acme/search', 'moved');
    await store.put(response, TOMORROW_MS);
    const raw = await redis.getBuffer(`${prefix}response:${response.id}`);
    if (!raw) throw new Error('the response was not stored');
    await redis.set(`${prefix}response:resp_elsewhere`, raw);
    expect(await store.get('acme/search', 'resp_elsewhere')).toBeUndefined();
    expect(await store.getMany('acme/search', ['resp_elsewhere', response.id])).toEqual([undefined, response]);
    expect(await store.delete('acme/search', 'resp_elsewhere')).toBe(false);
    expect(await store.get('acme/search', response.id)).toEqual(response);
  });

  it('finds nothing in a damaged value: not sealed, too short, sealed under another secret, sealed but not JSON, or JSON not of a response', async () => {
    const prefix = freshPrefix();
    const store = newStore(prefix);
    const key = `${prefix}response:resp_damaged`;
    const sealKey = responseSealKey(SECRET);
    const good = storedResponse('acme/search', 'damaged', { id: 'resp_damaged' });
    const values: Array<string | Buffer> = [
      'garbage',
      Buffer.alloc(5),
      sealBytes(responseSealKey('another secret'), Buffer.from(JSON.stringify(good)), good.id),
      sealBytes(sealKey, Buffer.from('{not json'), good.id),
      sealBytes(sealKey, Buffer.from(JSON.stringify({ id: good.id, owner: 'acme/search' })), good.id),
      sealBytes(sealKey, Buffer.from(JSON.stringify({ ...good, input: 'not a list' })), good.id),
      // Well formed, but naming another id than the one it is sealed under.
      sealBytes(sealKey, Buffer.from(JSON.stringify({ ...good, id: 'resp_other' })), good.id),
    ];
    for (const value of values) {
      await redis.set(key, value);
      expect(await store.get('acme/search', good.id)).toBeUndefined();
      expect(await store.getMany('acme/search', [good.id])).toEqual([undefined]);
      expect(await store.delete('acme/search', good.id)).toBe(false);
    }
    // The same key, sealed as the store seals it, opens: the cases above fail for what they hold.
    await redis.set(key, sealBytes(sealKey, Buffer.from(JSON.stringify(good)), good.id));
    expect(await store.get('acme/search', good.id)).toEqual(good);
  });

  it("expires a response at its expiry, and lengthens (never shortens) each ancestor's to that of the latest turn", async () => {
    const prefix = freshPrefix();
    const store = newStore(prefix);
    const key = (id: string): string => `${prefix}response:${id}`;
    const now = Date.now();
    const first = storedResponse('acme/search', 'first');
    const second = storedResponse('acme/search', 'second', { ancestors: [first.id] });
    const branch = storedResponse('acme/search', 'branch', { ancestors: [first.id, second.id] });
    await store.put(first, now + 60_000);
    expect(await redis.pexpiretime(key(first.id))).toBe(now + 60_000);
    const ttlBefore = await redis.pttl(key(first.id));
    await store.put(second, now + 3_600_000);
    expect(await redis.pttl(key(first.id))).toBeGreaterThan(ttlBefore + 3_000_000);
    expect(await redis.pexpiretime(key(first.id))).toBe(now + 3_600_000);
    expect(await redis.pexpiretime(key(second.id))).toBe(now + 3_600_000);
    // A turn that expires sooner (a branch off the conversation) leaves the longer expiries be.
    await store.put(branch, now + 120_000);
    expect(await redis.pexpiretime(key(branch.id))).toBe(now + 120_000);
    expect(await redis.pexpiretime(key(first.id))).toBe(now + 3_600_000);
    expect(await redis.pexpiretime(key(second.id))).toBe(now + 3_600_000);
  });

  it('lets Redis drop a response at its expiry, and a later turn does not bring it back', async () => {
    const prefix = freshPrefix();
    const store = newStore(prefix);
    const brief = storedResponse('acme/search', 'brief');
    await store.put(brief, Date.now() + 300);
    expect(await store.get('acme/search', brief.id)).toEqual(brief);
    await until(async () => (await redis.exists(`${prefix}response:${brief.id}`)) === 0, 'the expired key to go');
    expect(await store.get('acme/search', brief.id)).toBeUndefined();
    await store.put(storedResponse('acme/search', 'late', { ancestors: [brief.id] }), TOMORROW_MS);
    expect(await redis.exists(`${prefix}response:${brief.id}`)).toBe(0);
  });

  it("is shared: another replica's store on another connection reads and deletes the same responses", async () => {
    const prefix = freshPrefix();
    const other = new Redis(testRedisUrl());
    try {
      const a = newStore(prefix);
      const b = new RedisResponseStore(other, prefix, SECRET);
      const response = storedResponse('acme/search', 'shared');
      await a.put(response, TOMORROW_MS);
      expect(await b.get('acme/search', response.id)).toEqual(response);
      await expect(b.put(response, TOMORROW_MS)).rejects.toThrow(/exists/);
      expect(await b.delete('acme/search', response.id)).toBe(true);
      expect(await a.get('acme/search', response.id)).toBeUndefined();
      expect(await redis.keys(`${prefix}*`)).toEqual([]);
    } finally {
      await other.quit();
    }
  });

  it("indexes each owner's responses in a set that lives as long as the latest of them", async () => {
    const prefix = freshPrefix();
    const store = newStore(prefix);
    const now = Date.now();
    const first = storedResponse('acme/search', 'first');
    const second = storedResponse('acme/search', 'second');
    await store.put(first, now + 3_600_000);
    const [index] = (await redis.keys(`${prefix}responses:owner:*`)) as [string];
    expect(await redis.smembers(index)).toEqual([first.id]);
    expect(await redis.pexpiretime(index)).toBe(now + 3_600_000);
    // A response that expires sooner leaves the index's expiry be; a later one lengthens it.
    await store.put(second, now + 60_000);
    expect(await redis.pexpiretime(index)).toBe(now + 3_600_000);
    await store.put(storedResponse('acme/search', 'third', { ancestors: [first.id] }), now + 7_200_000);
    expect(await redis.pexpiretime(index)).toBe(now + 7_200_000);
    expect(await redis.scard(index)).toBe(3);
    // A delete takes the id out of the index.
    await store.delete('acme/search', second.id);
    expect((await redis.smembers(index)).sort()).not.toContain(second.id);
  });

  it("purges more responses than one batch, ids of expired ones included, and nothing of another owner's", async () => {
    const prefix = freshPrefix();
    const store = newStore(prefix);
    const count = PURGE_BATCH * 2 + 17;
    const mine = Array.from({ length: count }, (_, i) => storedResponse('acme/search', `turn ${i}`));
    const others = Array.from({ length: 5 }, (_, i) => storedResponse('acme/ads', `other ${i}`));
    for (const response of [...mine, ...others]) await store.put(response, TOMORROW_MS);
    // Background responses' streamed events (a Redis stream each), which hold their answers.
    for (const response of [mine[0], others[0]]) await redis.xadd(responseEventsKey(prefix, response?.id ?? ''), '0-1', 'event', '{}');
    // One that expired: its id lingers in the index, and the purge takes it out without counting it.
    const brief = storedResponse('acme/search', 'brief');
    await store.put(brief, Date.now() + 200);
    await until(async () => (await redis.exists(`${prefix}response:${brief.id}`)) === 0, 'the expired key to go');
    expect(await store.purgeOwner('acme/search')).toBe(count);
    expect(await redis.keys(`${prefix}response:*`)).toHaveLength(others.length);
    expect(await redis.exists(responseEventsKey(prefix, mine[0]?.id ?? ''))).toBe(0);
    expect(await redis.exists(responseEventsKey(prefix, others[0]?.id ?? ''))).toBe(1);
    expect(await store.getMany('acme/ads', others.map((r) => r.id))).toEqual(others);
    expect(await store.get('acme/search', mine[0]?.id ?? '')).toBeUndefined();
    // The owner's index is gone with its last id; the other owner's stays.
    expect(await redis.keys(`${prefix}responses:owner:*`)).toHaveLength(1);
    expect(await store.purgeOwner('acme/ads')).toBe(others.length);
    expect(await redis.keys(`${prefix}*`)).toEqual([]);
  });

  it('fails a write or a read while Redis cannot be reached, rather than report nothing found', async () => {
    const closed = new Redis(testRedisUrl(), { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0 });
    const store = new RedisResponseStore(closed, freshPrefix(), SECRET);
    const response = storedResponse('acme/search', 'unreachable');
    await expect(store.put(response, TOMORROW_MS)).rejects.toThrow();
    await expect(store.get('acme/search', response.id)).rejects.toThrow();
    await expect(store.getMany('acme/search', [response.id])).rejects.toThrow();
    await expect(store.delete('acme/search', response.id)).rejects.toThrow();
    await expect(store.purgeOwner('acme/search')).rejects.toThrow();
    closed.disconnect();
  });
});
