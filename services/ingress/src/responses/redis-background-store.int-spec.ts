import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { openBytes, sealBytes } from '../access/sealed-text';
import type { BackgroundStore } from './background-store';
import { backgroundJob, describeBackgroundStore } from './background-store.cases.testing';
import { backgroundSealKey, RedisBackgroundStore } from './redis-background-store';
import { responseSealKey } from './response-store';
import { until } from '../redis.testing';

/** The redis-server the integration project's global setup started. */
function testRedisUrl(): string {
  const url = process.env['OPENROUTER_TEST_REDIS_URL'];
  if (!url) throw new Error("OPENROUTER_TEST_REDIS_URL is not set: run this suite through jest's integration project");
  return url;
}

const SECRET = 'redis-background-store-spec-secret';
const TOMORROW_MS = Date.now() + 86_400_000;

/** A prefix of its own for each store: cases never see each other's keys. */
const freshPrefix = (): string => `background-spec:${randomBytes(6).toString('hex')}:`;

describe('RedisBackgroundStore on a real Redis', () => {
  let redis: Redis;
  const prefixes: string[] = [];
  /** A store under a prefix of its own, whose keys are removed after the suite. */
  const newStore = (prefix = freshPrefix(), connection?: Redis): RedisBackgroundStore => {
    prefixes.push(prefix);
    return new RedisBackgroundStore(connection ?? redis, prefix, SECRET);
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

  describeBackgroundStore('the cases of every store', { store: (): BackgroundStore => newStore() });

  it('keeps the job sealed as bytes: Redis holds no text of the prompt, the owner or the key, and it opens under its own id and secret only', async () => {
    const prefix = freshPrefix();
    const store = newStore(prefix);
    const marker = 'the-secret-plan-7f3a';
    const job = backgroundJob('acme/search', `Tell me about ${marker}`, { keyId: 'key-visible-nowhere' });
    const id = job.record.id;
    await store.create(job, TOMORROW_MS, 10);
    const raw = (await redis.getBuffer(`${prefix}background:${id}`)) ?? Buffer.alloc(0);
    const json = JSON.stringify(job);
    // Sealed as bytes: the JSON's size and 28 bytes (IV and tag), none of its text.
    expect(raw.length).toBe(Buffer.byteLength(json) + 28);
    for (const text of [marker, Buffer.from(marker).toString('base64').slice(0, 12), 'acme/search', 'key-visible-nowhere', '"owner"', 'input_text', 'x-openrouter-tags']) {
      expect(raw.toString('latin1')).not.toContain(text);
    }
    expect(JSON.parse(openBytes(backgroundSealKey(SECRET), raw, id).toString('utf8'))).toEqual(job);
    expect(() => openBytes(backgroundSealKey('another secret'), raw, id)).toThrow();
    expect(() => openBytes(backgroundSealKey(SECRET), raw, 'resp_other')).toThrow();
    // Its own key: not the stored responses' key of the same secret.
    expect(() => openBytes(responseSealKey(SECRET), raw, id)).toThrow();
    // The state is plain text; these are the only keys it wrote, and a claim adds its own.
    expect(await redis.get(`${prefix}background:${id}:state`)).toBe('queued');
    expect((await redis.keys(`${prefix}*`)).sort()).toEqual([`${prefix}background:${id}`, `${prefix}background:${id}:state`, `${prefix}backgrounds:active`].sort());
    await store.claim(id, 'replica-a', 60_000);
    expect(await redis.get(`${prefix}background:${id}:claim`)).toBe('replica-a');
  });

  it('does not open a job moved under another id, and leaves the original as it was', async () => {
    const prefix = freshPrefix();
    const store = newStore(prefix);
    const job = backgroundJob('acme/search', 'moved');
    await store.create(job, TOMORROW_MS, 10);
    const raw = await redis.getBuffer(`${prefix}background:${job.record.id}`);
    if (!raw) throw new Error('the job was not stored');
    await redis.set(`${prefix}background:resp_elsewhere`, raw);
    await redis.set(`${prefix}background:resp_elsewhere:state`, 'queued');
    expect(await store.byId('resp_elsewhere')).toBeUndefined();
    expect(await store.get('acme/search', 'resp_elsewhere')).toBeUndefined();
    expect(await store.byId(job.record.id)).toEqual({ job, state: 'queued' });
  });

  it('finds nothing in a damaged job (not sealed, too short, another secret, not JSON, not a job, another id) or beside a state missing or unknown', async () => {
    const prefix = freshPrefix();
    const store = newStore(prefix);
    const good = backgroundJob('acme/search', 'damaged', { id: 'resp_damaged' });
    const key = `${prefix}background:${good.record.id}`;
    const stateKey = `${key}:state`;
    const sealKey = backgroundSealKey(SECRET);
    const seal = (value: unknown): Buffer => sealBytes(sealKey, Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)), good.record.id);
    await redis.set(stateKey, 'in_progress');
    const values: Array<string | Buffer> = [
      'garbage',
      Buffer.alloc(5),
      sealBytes(backgroundSealKey('another secret'), Buffer.from(JSON.stringify(good)), good.record.id),
      seal('{not json'),
      seal({ keyId: 'search-1' }),
      seal({ ...good, headers: { 'x-openrouter-tags': 7 } }),
      seal({ ...good, request: 'not an object' }),
      seal({ ...good, record: { ...good.record, conversationBytes: -1 } }),
      // Well formed, but naming another id than the one it is sealed under.
      seal({ ...good, record: { ...good.record, id: 'resp_other' } }),
    ];
    for (const value of values) {
      await redis.set(key, value);
      expect(await store.byId(good.record.id)).toBeUndefined();
      expect(await store.get('acme/search', good.record.id)).toBeUndefined();
    }
    // Sealed as the store seals it, it opens: the cases above fail for what they hold.
    await redis.set(key, seal(good));
    expect(await store.byId(good.record.id)).toEqual({ job: good, state: 'in_progress' });
    // A good job beside no state, or one not of a pending response, is not found.
    for (const state of ['completed', 'QUEUED', '']) {
      await redis.set(stateKey, state);
      expect(await store.byId(good.record.id)).toBeUndefined();
      expect(await store.state(good.record.id)).toBeUndefined();
      expect(await store.start(good.record.id)).toBeUndefined();
    }
    await redis.del(stateKey);
    expect(await store.byId(good.record.id)).toBeUndefined();
    expect(await store.cancel(good.record.id)).toBeUndefined();
    // Neither start nor cancel made a state where there was none.
    expect(await redis.exists(stateKey)).toBe(0);
  });

  it('expires the job and its state at its expiry (kept through start and cancel), and a claim after its time', async () => {
    const prefix = freshPrefix();
    const store = newStore(prefix);
    const job = backgroundJob('acme/search', 'expiring');
    const id = job.record.id;
    const expiresAtMs = Date.now() + 3_600_000;
    await store.create(job, expiresAtMs, 10);
    const expiries = async (): Promise<number[]> => [await redis.pexpiretime(`${prefix}background:${id}`), await redis.pexpiretime(`${prefix}background:${id}:state`)];
    expect(await expiries()).toEqual([expiresAtMs, expiresAtMs]);
    await store.start(id);
    expect(await expiries()).toEqual([expiresAtMs, expiresAtMs]);
    await store.cancel(id);
    expect(await expiries()).toEqual([expiresAtMs, expiresAtMs]);
    await store.claim(id, 'replica-a', 30_000);
    const claimTtl = await redis.pttl(`${prefix}background:${id}:claim`);
    expect(claimTtl).toBeGreaterThan(25_000);
    expect(claimTtl).toBeLessThanOrEqual(30_000);
    await store.renew(id, 'replica-a', 90_000);
    expect(await redis.pttl(`${prefix}background:${id}:claim`)).toBeGreaterThan(85_000);
    // The set of pending ids does not expire: its ids leave it when they are finished.
    expect(await redis.pttl(`${prefix}backgrounds:active`)).toBe(-1);
  });

  it('lets Redis drop a job at its expiry: then it is not found, and leaves the pending ones when a runner tries to claim it or finishes it', async () => {
    const prefix = freshPrefix();
    const store = newStore(prefix);
    const brief = backgroundJob('acme/search', 'brief');
    const id = brief.record.id;
    await store.create(brief, Date.now() + 300, 10);
    expect(await store.byId(id)).toEqual({ job: brief, state: 'queued' });
    await until(async () => (await redis.exists(`${prefix}background:${id}`, `${prefix}background:${id}:state`)) === 0, 'the expired keys to go');
    expect(await store.byId(id)).toBeUndefined();
    expect(await store.get('acme/search', id)).toBeUndefined();
    expect(await store.state(id)).toBeUndefined();
    expect(await store.start(id)).toBeUndefined();
    expect(await store.cancel(id)).toBeUndefined();
    expect(await store.active(10)).toEqual([id]);
    expect(await store.count()).toBe(1);
    // It still takes its place until a runner comes by.
    expect(await store.create(backgroundJob('acme/search', 'next'), TOMORROW_MS, 1)).toBe(false);
    // A runner's claim finds it gone and drops it.
    expect(await store.claim(id, 'replica-a', 60_000)).toBe(false);
    expect(await store.active(10)).toEqual([]);
    expect(await store.count()).toBe(0);
    await store.finish(id);
    expect(await store.active(10)).toEqual([]);
    expect(await store.count()).toBe(0);
    expect(await redis.keys(`${prefix}*`)).toEqual([]);
    // The id can be taken again.
    expect(await store.create(backgroundJob('acme/search', 'again', { id }), TOMORROW_MS, 1)).toBe(true);
  });

  it('lets a claim lapse after its time: then another holder takes it, and the first can no longer renew it', async () => {
    const store = newStore();
    const job = backgroundJob('acme/search', 'lapsing');
    const id = job.record.id;
    await store.create(job, TOMORROW_MS, 10);
    const claimedAt = Date.now();
    expect(await store.claim(id, 'replica-a', 300)).toBe(true);
    expect(await store.claim(id, 'replica-b', 300)).toBe(false);
    await until(() => store.claim(id, 'replica-b', 60_000), 'the claim to lapse');
    // Not before its time (a few ms of clock granularity aside).
    expect(Date.now() - claimedAt).toBeGreaterThanOrEqual(290);
    expect(await store.renew(id, 'replica-a', 60_000)).toBe(false);
    expect(await store.claim(id, 'replica-a', 60_000)).toBe(false);
  });

  it('is shared: replicas on their own connections create past maxPending never, claim one holder at a time, and see each other’s changes', async () => {
    const prefix = freshPrefix();
    const other = new Redis(testRedisUrl());
    try {
      const a = newStore(prefix);
      const b = newStore(prefix, other);
      const jobs = Array.from({ length: 20 }, (_, i) => backgroundJob('acme/search', `concurrent ${i}`));
      const created = await Promise.all(jobs.map((job, i) => (i % 2 === 0 ? a : b).create(job, TOMORROW_MS, 5)));
      expect(created.filter(Boolean)).toHaveLength(5);
      expect(await b.count()).toBe(5);
      const createdIds = jobs.filter((_, i) => created[i]).map((j) => j.record.id);
      expect((await a.active(100)).sort()).toEqual([...createdIds].sort());
      const id = createdIds[0] ?? '';
      const claims = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? a : b).claim(id, `replica-${i}`, 60_000)));
      expect(claims.filter(Boolean)).toHaveLength(1);
      expect(await b.start(id)).toBe('in_progress');
      expect(await a.cancel(id)).toBe('cancelling');
      expect(await b.state(id)).toBe('cancelling');
      await a.finish(id);
      expect(await b.byId(id)).toBeUndefined();
      expect(await b.count()).toBe(4);
    } finally {
      await other.quit();
    }
  });

  it('fails a write or a read while Redis cannot be reached, rather than report nothing found', async () => {
    const closed = new Redis(testRedisUrl(), { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0 });
    const store = new RedisBackgroundStore(closed, freshPrefix(), SECRET);
    const job = backgroundJob('acme/search', 'unreachable');
    const id = job.record.id;
    await expect(store.create(job, TOMORROW_MS, 10)).rejects.toThrow();
    await expect(store.byId(id)).rejects.toThrow();
    await expect(store.get('acme/search', id)).rejects.toThrow();
    await expect(store.active(10)).rejects.toThrow();
    await expect(store.count()).rejects.toThrow();
    await expect(store.claim(id, 'replica-a', 60_000)).rejects.toThrow();
    await expect(store.start(id)).rejects.toThrow();
    await expect(store.cancel(id)).rejects.toThrow();
    await expect(store.state(id)).rejects.toThrow();
    await expect(store.finish(id)).rejects.toThrow();
    closed.disconnect();
  });
});
