import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { openBytes } from '../access/sealed-text';
import { describeFileStore, storedFile } from './file-store.cases.testing';
import { fileSealKey, TOMBSTONE_MS, type FileStore } from './file-store';
import { RedisFileStore } from './redis-file-store';
import { probeRedis } from './redis-probe.testing';
import { SLICE_BYTES } from './sealed-slices';
import { until } from '../redis.testing';

/** The redis-server the integration project's global setup started. */
function testRedisUrl(): string {
  const url = process.env['OPENROUTER_TEST_REDIS_URL'];
  if (!url) throw new Error("OPENROUTER_TEST_REDIS_URL is not set: run this suite through jest's integration project");
  return url;
}

const SECRET = 'redis-file-store-spec-secret';

/** A prefix of its own for each store: cases never see each other's keys. */
const freshPrefix = (): string => `files-spec:${randomBytes(6).toString('hex')}:`;

describe('RedisFileStore on a real Redis', () => {
  let redis: Redis;

  beforeAll(() => {
    redis = new Redis(testRedisUrl());
  });
  afterAll(async () => {
    await redis?.quit();
  });

  describe('the cases of every store', () => {
    describeFileStore({ store: (): FileStore => new RedisFileStore(redis, freshPrefix(), SECRET) });
  });

  it('keeps the content sealed: Redis holds neither the text nor its base64 (the content sealed as bytes), and it opens only under its own id and secret', async () => {
    const prefix = freshPrefix();
    const store = new RedisFileStore(redis, prefix, SECRET);
    const text = '{"custom_id":"r1","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[{"role":"user","content":"the secret plan"}]}}\n';
    const file = storedFile('acme/search', 0, { bytes: Buffer.byteLength(text) });
    await store.put(file, Buffer.from(text));
    const sealed = (await redis.getBuffer(`${prefix}file:${file.id}:content`)) ?? Buffer.alloc(0);
    // Sealed as bytes: the content's size and 28 bytes (IV and tag), no text of it anywhere.
    expect(sealed.length).toBe(Buffer.byteLength(text) + 28);
    expect(sealed.toString('latin1')).not.toContain('secret plan');
    expect(sealed.toString('latin1')).not.toContain(Buffer.from(text).toString('base64').slice(0, 40));
    // Under its own id and secret it opens; moved under another id, or with another secret, it does not.
    expect(openBytes(fileSealKey(SECRET), sealed, file.id).toString()).toBe(text);
    expect(() => openBytes(fileSealKey(SECRET), sealed, 'file-another')).toThrow();
    expect(() => openBytes(fileSealKey('another secret'), sealed, file.id)).toThrow();
    // The record names the file, never its content.
    expect(JSON.parse((await redis.get(`${prefix}file:${file.id}`)) ?? '{}')).toEqual(file);
  });

  it('stores a large file (sealed and sent in slices) as it stores any: the same sealed form, read back exactly, never over a file of the same id, nothing left staged', async () => {
    const prefix = freshPrefix();
    const store = new RedisFileStore(redis, prefix, SECRET);
    // Over two of the 8 MiB slices, and not a whole number of them.
    const content = randomBytes(17 * 1024 * 1024 + 5);
    const file = storedFile('acme/search', 0, { bytes: content.length });
    await store.put(file, content);
    const sealed = (await redis.getBuffer(`${prefix}file:${file.id}:content`)) ?? Buffer.alloc(0);
    expect(sealed.length).toBe(content.length + 28);
    expect(openBytes(fileSealKey(SECRET), sealed, file.id).equals(content)).toBe(true);
    expect((await store.content('acme/search', file.id))?.equals(content)).toBe(true);
    expect(Math.round((await redis.pexpiretime(`${prefix}file:${file.id}:content`)) / 1000)).toBe(file.expiresAt);
    // Its id taken: refused, and the file kept as it was.
    await expect(store.put({ ...file, owner: 'initech/ops' }, randomBytes(content.length))).rejects.toThrow(/exists/);
    expect((await store.content('acme/search', file.id))?.equals(content)).toBe(true);
    expect((await redis.keys(`${prefix}*`)).sort()).toEqual([`${prefix}file:${file.id}`, `${prefix}file:${file.id}:content`, `${prefix}files:acme/search`]);
  });

  it('stores nothing when its staging key goes while a large file is written (expired, or deleted): the put fails, and no key is left behind, none without an expiry', async () => {
    const prefix = freshPrefix();
    const content = randomBytes(17 * 1024 * 1024 + 5);
    const file = storedFile('acme/search', 0, { bytes: content.length });
    const staging = `${prefix}file:${file.id}:content:staging`;
    // The staging key is deleted before the second slice is sent (the third command naming it, after its header and first slice).
    let writes = 0;
    const connection = new Redis(testRedisUrl());
    try {
      const probe = await probeRedis(connection, async (_name, args) => {
        if (args.includes(staging) && ++writes === 3) await redis.del(staging);
      });
      const store = new RedisFileStore(probe.redis, prefix, SECRET);
      await expect(store.put(file, content)).rejects.toThrow();
      expect(await store.get('acme/search', file.id)).toBeUndefined();
    } finally {
      connection.disconnect();
    }
    expect(await redis.keys(`${prefix}*`)).toEqual([]);
  });

  it('reads a large file back a slice at a time (no reply over a slice), under a previous secret too, and one deleted while it is read as gone, never a part of it', async () => {
    const prefix = freshPrefix();
    const content = randomBytes(17 * 1024 * 1024 + 5);
    const file = storedFile('acme/search', 0, { bytes: content.length });
    await new RedisFileStore(redis, prefix, SECRET).put(file, content);
    let deleteMidway = false;
    const connection = new Redis(testRedisUrl());
    try {
      const probe = await probeRedis(connection, async (name) => {
        if (deleteMidway && name === 'getrangeBuffer') await redis.del(`${prefix}file:${file.id}:content`);
      });
      const store = new RedisFileStore(probe.redis, prefix, SECRET);
      expect((await store.content('acme/search', file.id))?.equals(content)).toBe(true);
      expect(probe.largestReply()).toBeLessThanOrEqual(SLICE_BYTES);
      const rotated = new RedisFileStore(probe.redis, prefix, { current: 'a newer secret', previous: [SECRET] });
      expect((await rotated.content('acme/search', file.id))?.equals(content)).toBe(true);
      expect(await new RedisFileStore(probe.redis, prefix, 'another secret').content('acme/search', file.id)).toBeUndefined();
      deleteMidway = true;
      expect(await store.content('acme/search', file.id)).toBeUndefined();
    } finally {
      connection.disconnect();
    }
  });

  it('fails a read when Redis fails halfway through a large file (a server error, not the file gone)', async () => {
    const prefix = freshPrefix();
    const content = randomBytes(17 * 1024 * 1024 + 5);
    const file = storedFile('acme/search', 0, { bytes: content.length });
    await new RedisFileStore(redis, prefix, SECRET).put(file, content);
    const connection = new Redis(testRedisUrl());
    try {
      // The connection drops as the read goes on to the file's second slice.
      const probe = await probeRedis(connection, async (name) => {
        if (name === 'getrangeBuffer') connection.disconnect();
      });
      await expect(new RedisFileStore(probe.redis, prefix, SECRET).content('acme/search', file.id)).rejects.toThrow();
    } finally {
      connection.disconnect();
    }
  });

  it("is shared: another replica's store on another connection sees, reads and deletes the same files", async () => {
    const prefix = freshPrefix();
    const other = new Redis(testRedisUrl());
    try {
      const a = new RedisFileStore(redis, prefix, SECRET);
      const b = new RedisFileStore(other, prefix, SECRET);
      const file = storedFile('acme/search', 0);
      await a.put(file, Buffer.from('shared'));
      expect(await b.get('acme/search', file.id)).toEqual(file);
      expect((await b.content('acme/search', file.id))?.toString()).toBe('shared');
      expect(await b.delete('acme/search', file.id)).toBe(true);
      expect(await a.get('acme/search', file.id)).toBeUndefined();
      // Its content is gone; only its tombstone (an hour at most) and its place in the list are left, for a cursor naming it.
      expect((await redis.keys(`${prefix}*`)).sort()).toEqual([`${prefix}file:${file.id}`, `${prefix}files:acme/search`]);
      expect(await redis.get(`${prefix}file:${file.id}`)).toBe('{"deleted":true}');
      const ttl = await redis.pttl(`${prefix}file:${file.id}`);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(TOMBSTONE_MS);
    } finally {
      await other.quit();
    }
  });

  it("sets every key to expire with its file, the owner's list with its last file", async () => {
    const prefix = freshPrefix();
    const store = new RedisFileStore(redis, prefix, SECRET);
    const nowSeconds = Math.floor(Date.now() / 1000);
    const later = storedFile('acme/search', 0, { expiresAt: nowSeconds + 7_200 });
    const sooner = storedFile('acme/search', 1, { expiresAt: nowSeconds + 3_600 });
    await store.put(later, Buffer.from('later'));
    await store.put(sooner, Buffer.from('sooner'));
    const expiry = async (key: string): Promise<number> => Math.round((await redis.pexpiretime(key)) / 1000);
    expect(await expiry(`${prefix}file:${later.id}`)).toBe(later.expiresAt);
    expect(await expiry(`${prefix}file:${later.id}:content`)).toBe(later.expiresAt);
    expect(await expiry(`${prefix}file:${sooner.id}`)).toBe(sooner.expiresAt);
    expect(await expiry(`${prefix}file:${sooner.id}:content`)).toBe(sooner.expiresAt);
    // A file that expires sooner does not shorten the list of the one that expires later.
    expect(await expiry(`${prefix}files:acme/search`)).toBe(later.expiresAt);
  });

  it('lets Redis drop a file at its expiry (a retention of about a second), and a listing drops its id', async () => {
    const prefix = freshPrefix();
    const store = new RedisFileStore(redis, prefix, SECRET);
    const kept = storedFile('acme/search', 0);
    const brief = storedFile('acme/search', 1, { expiresAt: Date.now() / 1000 + 1 });
    await store.put(kept, Buffer.from('kept'));
    await store.put(brief, Buffer.from('brief'));
    expect((await store.list('acme/search', { limit: 10, order: 'desc' })).data.map((f) => f.id)).toEqual([brief.id, kept.id]);
    await until(async () => (await redis.exists(`${prefix}file:${brief.id}`, `${prefix}file:${brief.id}:content`)) === 0, 'the expired keys to go');
    expect(await store.get('acme/search', brief.id)).toBeUndefined();
    expect(await store.content('acme/search', brief.id)).toBeUndefined();
    // Still in the list until a listing meets it: then it is skipped and dropped.
    expect(await redis.zscore(`${prefix}files:acme/search`, brief.id)).not.toBeNull();
    expect((await store.list('acme/search', { limit: 10, order: 'desc' })).data).toEqual([kept]);
    expect(await redis.zscore(`${prefix}files:acme/search`, brief.id)).toBeNull();
  });

  it('pages past ids whose records are gone: still a full page, and the stale ids dropped from the list', async () => {
    const prefix = freshPrefix();
    const store = new RedisFileStore(redis, prefix, SECRET);
    const files = Array.from({ length: 6 }, (_, i) => storedFile('acme/search', i));
    for (const f of files) await store.put(f, Buffer.from(f.id));
    // Records gone behind the store's back (expired between a listing's reads, say).
    await redis.del(`${prefix}file:${files[4]?.id}`, `${prefix}file:${files[3]?.id}`);
    const page = await store.list('acme/search', { limit: 3, order: 'desc' });
    expect(page.data.map((f) => f.id)).toEqual([5, 2, 1].map((i) => files[i]?.id));
    expect(page.hasMore).toBe(true);
    expect(await redis.zcard(`${prefix}files:acme/search`)).toBe(4);
  });

  it('finds no content that does not open (sealed under a secret no longer known, or damaged): the file reads as gone, not as a store failure', async () => {
    const prefix = freshPrefix();
    const file = storedFile('acme/search', 0, { bytes: 5 });
    await new RedisFileStore(redis, prefix, 'a secret dropped since').put(file, Buffer.from('hello'));
    const store = new RedisFileStore(redis, prefix, SECRET);
    expect(await store.content('acme/search', file.id)).toBeUndefined();
    // Under the secret as a previous one, it opens.
    expect((await new RedisFileStore(redis, prefix, { current: SECRET, previous: ['a secret dropped since'] }).content('acme/search', file.id))?.toString()).toBe('hello');
    await redis.set(`${prefix}file:${file.id}:content`, randomBytes(40), 'KEEPTTL');
    expect(await store.content('acme/search', file.id)).toBeUndefined();
  });

  it("drops a deleted file's id from the list once its tombstone has expired, when a listing meets it", async () => {
    const prefix = freshPrefix();
    const store = new RedisFileStore(redis, prefix, SECRET);
    const [kept, deleted] = [storedFile('acme/search', 0), storedFile('acme/search', 1)];
    await store.put(kept, Buffer.from('kept'));
    await store.put(deleted, Buffer.from('deleted'));
    await store.delete('acme/search', deleted.id);
    expect((await store.list('acme/search', { limit: 10, order: 'desc' })).data).toEqual([kept]);
    // Listed past, but kept as a place.
    expect(await redis.zscore(`${prefix}files:acme/search`, deleted.id)).not.toBeNull();
    // Its tombstone expired (as Redis does it after TOMBSTONE_MS).
    await redis.del(`${prefix}file:${deleted.id}`);
    expect((await store.list('acme/search', { limit: 10, order: 'desc' })).data).toEqual([kept]);
    expect(await redis.zscore(`${prefix}files:acme/search`, deleted.id)).toBeNull();
  });

  it('finds nothing in a damaged record', async () => {
    const prefix = freshPrefix();
    const store = new RedisFileStore(redis, prefix, SECRET);
    await redis.set(`${prefix}file:file-damaged`, '{not json');
    expect(await store.get('acme/search', 'file-damaged')).toBeUndefined();
    await redis.set(`${prefix}file:file-damaged`, JSON.stringify({ id: 'file-damaged', owner: 'acme/search' }));
    expect(await store.get('acme/search', 'file-damaged')).toBeUndefined();
  });
});
