import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { BatchRecord } from './batch-record';
import { batchRecord, describeBatchStore, until } from './batch-store.cases.testing';
import { RedisBatchStore } from './redis-batch-store';
import { probeRedis } from './redis-probe.testing';
import { APPEND_STAGED, SLICE_BYTES } from './sealed-slices';

/** The redis-server the integration project's global setup started. */
function testRedisUrl(): string {
  const url = process.env['OPENROUTER_TEST_REDIS_URL'];
  if (!url) throw new Error("OPENROUTER_TEST_REDIS_URL is not set: run this suite through jest's integration project");
  return url;
}

const SECRET = 'redis-batch-store-spec-secret';
const RETENTION_MS = 30 * 86_400_000;

/** A prefix of its own for each store: cases never see each other's keys. */
const freshPrefix = (): string => `batches-spec:${randomBytes(6).toString('hex')}:`;

describe('RedisBatchStore on a real Redis', () => {
  let redis: Redis;
  let other: Redis;

  beforeAll(() => {
    redis = new Redis(testRedisUrl());
    other = new Redis(testRedisUrl());
  });
  afterAll(async () => {
    await Promise.all([redis?.quit(), other?.quit()]);
  });

  describe('the cases of every store, two replicas on two connections', () => {
    describeBatchStore({
      stores: () => {
        const prefix = freshPrefix();
        return [new RedisBatchStore(redis, prefix, SECRET, RETENTION_MS), new RedisBatchStore(other, prefix, SECRET, RETENTION_MS)];
      },
    });
  });

  it('keeps the input and results sealed: Redis holds neither the text nor its base64, and under another secret, or moved to another line, they do not open: read as gone, not as a store failure', async () => {
    const prefix = freshPrefix();
    const store = new RedisBatchStore(redis, prefix, SECRET, RETENTION_MS);
    const input = Buffer.from('{"custom_id":"r1","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[{"role":"user","content":"the secret plan"}]}}\n');
    const result = '{"ok":true,"line":"{\\"custom_id\\":\\"r1\\",\\"response\\":{\\"body\\":\\"the secret answer\\"}}"}';
    const batch = batchRecord('acme/search', 0);
    await store.create(batch, input);
    await store.saveResult(batch.id, 0, result);
    await store.saveResult(batch.id, 1, '{"ok":true,"line":"another answer"}');

    const sealedInput = (await redis.get(`${prefix}batch:${batch.id}:input`)) ?? '';
    const sealedResults = await redis.hgetall(`${prefix}batch:${batch.id}:results`);
    expect(sealedInput).not.toBe('');
    expect(Object.keys(sealedResults).sort()).toEqual(['0', '1']);
    for (const sealed of [sealedInput, ...Object.values(sealedResults)]) {
      for (const plain of [sealed, Buffer.from(sealed, 'base64').toString('latin1')]) {
        expect(plain).not.toContain('secret');
        expect(plain).not.toContain(input.toString('base64').slice(0, 40));
        expect(plain).not.toContain(Buffer.from(result).toString('base64').slice(0, 40));
      }
    }
    // The record names the batch, never its requests.
    expect(JSON.parse((await redis.get(`${prefix}batch:${batch.id}`)) ?? '{}')).toEqual(batch);

    expect((await store.input(batch.id))?.equals(input)).toBe(true);
    expect((await store.results(batch.id)).get(0)).toBe(result);
    // Another secret does not open them (the secret they were sealed under dropped since); nor does
    // a result moved under another line. Either never opens: it is as if gone (the batch ends
    // failed, input_missing, or the line runs again), rather than a failure tried every lease.
    const otherSecret = new RedisBatchStore(redis, prefix, 'another secret', RETENTION_MS);
    expect(await otherSecret.input(batch.id)).toBeUndefined();
    expect(await otherSecret.results(batch.id)).toEqual(new Map());
    await redis.hset(`${prefix}batch:${batch.id}:results`, '1', sealedResults['0'] ?? '');
    expect(await store.results(batch.id)).toEqual(new Map([[0, result]]));
  });

  it('stores a large input (sealed and sent in slices) as it stores any: read back exactly, in slices, under a previous secret too; the batch neither seen nor run before its input is whole; nothing left staged', async () => {
    const prefix = freshPrefix();
    // Over two of the 8 MiB slices, and not a whole number of them.
    const input = randomBytes(17 * 1024 * 1024 + 5);
    const batch = batchRecord('acme/search', 0);
    const [record, inputKey, owner, active] = [`batch:${batch.id}`, `batch:${batch.id}:input`, 'batches:owner:acme/search', 'batches:active'].map((key) => `${prefix}${key}`) as [string, string, string, string];
    // What another replica sees each time a slice is about to be sent: none of the batch.
    const seenMidway: number[] = [];
    const connection = new Redis(testRedisUrl());
    try {
      const probe = await probeRedis(connection, async (name, args) => {
        if (name === 'eval' && args[0] === APPEND_STAGED) seenMidway.push((await other.exists(record, inputKey)) + (await other.sismember(active, batch.id)) + ((await other.zscore(owner, batch.id)) === null ? 0 : 1));
      });
      const store = new RedisBatchStore(probe.redis, prefix, SECRET, RETENTION_MS);
      await store.create(batch, input);
      expect(seenMidway).toEqual([0, 0, 0]);
      expect(probe.largestWrite()).toBeLessThan(SLICE_BYTES + 1024);
      expect((await store.input(batch.id))?.equals(input)).toBe(true);
      expect(probe.largestReply()).toBeLessThanOrEqual(SLICE_BYTES);
    } finally {
      connection.disconnect();
    }
    // Sealed as a small input is (its size and 28 bytes), kept as long as its batch, and active.
    expect(await redis.strlen(inputKey)).toBe(input.length + 28);
    expect(await redis.pexpiretime(inputKey)).toBe(await redis.pexpiretime(record));
    expect(await redis.sismember(active, batch.id)).toBe(1);
    expect((await new RedisBatchStore(other, prefix, SECRET, RETENTION_MS).get('acme/search', batch.id))).toEqual(batch);
    expect((await redis.keys(`${prefix}*`)).sort()).toEqual([record, inputKey, active, owner].sort());
    // Read by another replica, after a rotation too; not under another secret.
    expect((await new RedisBatchStore(other, prefix, { current: 'a newer secret', previous: [SECRET] }, RETENTION_MS).input(batch.id))?.equals(input)).toBe(true);
    expect(await new RedisBatchStore(other, prefix, 'another secret', RETENTION_MS).input(batch.id)).toBeUndefined();
  });

  it('stores nothing when its staging key goes while a large input is written (expired, or deleted): the creation fails, and no key is left behind, none without an expiry', async () => {
    const prefix = freshPrefix();
    const input = randomBytes(17 * 1024 * 1024 + 5);
    const batch = batchRecord('acme/search', 0);
    const staging = `${prefix}batch:${batch.id}:input:staging`;
    // The staging key is deleted before the second slice is sent (the third command naming it, after its header and first slice).
    let writes = 0;
    const connection = new Redis(testRedisUrl());
    try {
      const probe = await probeRedis(connection, async (_name, args) => {
        if (args.includes(staging) && ++writes === 3) await redis.del(staging);
      });
      const store = new RedisBatchStore(probe.redis, prefix, SECRET, RETENTION_MS);
      await expect(store.create(batch, input)).rejects.toThrow();
      expect(await store.byId(batch.id)).toBeUndefined();
    } finally {
      connection.disconnect();
    }
    expect(await redis.keys(`${prefix}*`)).toEqual([]);
  });

  it('keeps a batch its retention, or a day past its window when that is later, and its input as long', async () => {
    const prefix = freshPrefix();
    const store = new RedisBatchStore(redis, prefix, SECRET, RETENTION_MS);
    const batch = batchRecord('acme/search', 0);
    await store.create(batch, Buffer.from('x'));
    const expiry = async (key: string): Promise<number> => Math.round((await redis.pexpiretime(key)) / 1000);
    const keep = batch.createdAt + RETENTION_MS / 1000;
    expect(await expiry(`${prefix}batch:${batch.id}`)).toBe(keep);
    expect(await expiry(`${prefix}batch:${batch.id}:input`)).toBe(keep);
    expect(await expiry(`${prefix}batches:owner:acme/search`)).toBe(keep);

    const brief = new RedisBatchStore(redis, prefix, SECRET, 1_000);
    const short = batchRecord('acme/ads', 0);
    await brief.create(short, Buffer.from('x'));
    expect(await expiry(`${prefix}batch:${short.id}`)).toBe(short.expiresAt + 86_400);
  });

  it("skips a batch whose record has expired when listing, still a full page, and drops its id from the owner's list", async () => {
    const prefix = freshPrefix();
    const store = new RedisBatchStore(redis, prefix, SECRET, RETENTION_MS);
    const [oldest, older, newest] = [0, 1, 3].map((i) => batchRecord('acme/search', i)) as [BatchRecord, BatchRecord, BatchRecord];
    await store.create(oldest, undefined);
    await store.create(older, undefined);
    // Created so long ago, with a retention so short, that it is kept two seconds: a day past its window.
    const createdAt = Math.floor(Date.now() / 1000) - 2 * 86_400 + 2;
    const expiring = batchRecord('acme/search', 2, { createdAt, expiresAt: createdAt + 86_400 });
    await new RedisBatchStore(redis, prefix, SECRET, 1_000).create(expiring, Buffer.from('x'));
    await store.create(newest, undefined);
    // Listed by creation time: moved between the others by its score, so that a page must pass it.
    const owner = `${prefix}batches:owner:acme/search`;
    await redis.zadd(owner, (older.createdAt + 1) * 1000, expiring.id);

    expect((await store.list('acme/search', { limit: 10 })).data.map((b) => b.id)).toEqual([newest.id, expiring.id, older.id, oldest.id]);
    await until(async () => (await redis.exists(`${prefix}batch:${expiring.id}`, `${prefix}batch:${expiring.id}:input`)) === 0, 'the expired batch to go');
    const page = await store.list('acme/search', { limit: 2 });
    expect(page.data.map((b) => b.id)).toEqual([newest.id, older.id]);
    expect(page.hasMore).toBe(true);
    expect(await redis.zscore(owner, expiring.id)).toBeNull();
    expect(await store.list('acme/search', { limit: 10, after: older.id })).toEqual({ data: [oldest], hasMore: false });
  });

  it('finds nothing in a damaged record, nor another batch under its id: neither read nor changed, and skipped when listing', async () => {
    const prefix = freshPrefix();
    const store = new RedisBatchStore(redis, prefix, SECRET, RETENTION_MS);
    const [damaged, moved, kept] = [0, 1, 2].map((i) => batchRecord('acme/search', i)) as [BatchRecord, BatchRecord, BatchRecord];
    for (const b of [damaged, moved, kept]) await store.create(b, undefined);
    await redis.set(`${prefix}batch:${damaged.id}`, '{not json', 'KEEPTTL');
    // Another batch's record under this one's id.
    await redis.set(`${prefix}batch:${moved.id}`, JSON.stringify(kept), 'KEEPTTL');
    const change = jest.fn((b: BatchRecord) => b);
    for (const b of [damaged, moved]) {
      expect(await store.byId(b.id)).toBeUndefined();
      expect(await store.update(b.id, change)).toBeUndefined();
    }
    expect(change).not.toHaveBeenCalled();
    expect((await store.list('acme/search', { limit: 10 })).data).toEqual([kept]);
  });

  it('leaves nothing but the batch record once a batch is finished, even when a replica whose claim lapsed writes a result after', async () => {
    const prefix = freshPrefix();
    const store = new RedisBatchStore(redis, prefix, SECRET, RETENTION_MS);
    const batch = batchRecord('acme/search', 0);
    await store.create(batch, Buffer.from('x'));
    await store.saveResult(batch.id, 0, '{"ok":true,"line":"a"}');
    await store.claim(batch.id, 'replica-a', 60_000);
    await store.finish(batch.id);
    await new RedisBatchStore(other, prefix, SECRET, RETENTION_MS).saveResult(batch.id, 1, '{"ok":true,"line":"late"}');
    expect((await redis.keys(`${prefix}*`)).sort()).toEqual([`${prefix}batch:${batch.id}`, `${prefix}batches:owner:acme/search`]);
  });
});
