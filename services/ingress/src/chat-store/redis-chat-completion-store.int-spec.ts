import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { chatCompletionsSchema } from '@openrouter/config';
import { createLogger } from '@openrouter/observability';
import { openBytes } from '../access/sealed-text';
import { PURGE_BATCH } from '../redis-records';
import { chatCompletionSealKey, type ChatCompletionStore } from './chat-completion-store';
import { describeChatCompletionStore, storedCompletion, TOMORROW_MS } from './chat-completion-store.cases.testing';
import { RedisChatCompletionStore } from './redis-chat-completion-store';
import { StoredChatCompletions } from './stored-chat-completions';
import { until } from '../redis.testing';

/** The redis-server the integration project's global setup started. */
function testRedisUrl(): string {
  const url = process.env['OPENROUTER_TEST_REDIS_URL'];
  if (!url) throw new Error("OPENROUTER_TEST_REDIS_URL is not set: run this suite through jest's integration project");
  return url;
}

const SECRET = 'redis-chat-completion-store-spec-secret';

/** A prefix of its own for each store: cases never see each other's keys. */
const freshPrefix = (): string => `chat-store-spec:${randomBytes(6).toString('hex')}:`;

describe('RedisChatCompletionStore on a real Redis', () => {
  let redis: Redis;
  const prefixes: string[] = [];
  const newStore = (prefix = freshPrefix()): RedisChatCompletionStore => {
    prefixes.push(prefix);
    return new RedisChatCompletionStore(redis, prefix, SECRET);
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
    describeChatCompletionStore({ store: (): ChatCompletionStore => newStore() });
  });

  it('keeps the record sealed as bytes: Redis holds no text of the prompt, the answer, the metadata or the owner, and it opens under its own id and secret only', async () => {
    const prefix = freshPrefix();
    const store = newStore(prefix);
    const marker = 'the-secret-plan-7f3a';
    const record = storedCompletion('acme/search', `Tell me about ${marker}`, { metadata: { customer: 'globex-corp' } });
    await store.put(record, TOMORROW_MS);
    const raw = (await redis.getBuffer(`${prefix}chatcmpl:${record.id}`)) ?? Buffer.alloc(0);
    expect(raw.length).toBe(Buffer.byteLength(JSON.stringify(record)) + 28);
    for (const text of [marker, 'globex-corp', 'acme/search', '"owner"', 'chat.completion']) expect(raw.toString('latin1')).not.toContain(text);
    expect(JSON.parse(openBytes(chatCompletionSealKey(SECRET), raw, record.id).toString('utf8'))).toEqual(record);
    expect(() => openBytes(chatCompletionSealKey('another secret'), raw, record.id)).toThrow();
    // The only keys it wrote: the completion, and its owner's index, named without the owner.
    const keys = (await redis.keys(`${prefix}*`)).sort();
    expect(keys).toHaveLength(2);
    expect(keys.some((key) => key.includes('acme'))).toBe(false);
    const index = keys.find((key) => key.startsWith(`${prefix}chatcmpl:owner:`)) ?? '';
    expect(await redis.zrange(index, '0', '-1', 'WITHSCORES')).toEqual([record.id, String(record.createdAtMs)]);
  });

  it('expires a completion at its expiry, the index with the latest, and a metadata change keeps the expiry', async () => {
    const prefix = freshPrefix();
    const store = newStore(prefix);
    const soon = storedCompletion('acme/search', 'brief');
    const later = storedCompletion('acme/search', 'longer');
    await store.put(soon, Date.now() + 60_000);
    await store.put(later, TOMORROW_MS);
    const key = `${prefix}chatcmpl:${soon.id}`;
    const expiry = await redis.pexpiretime(key);
    expect(Math.abs(expiry - (Date.now() + 60_000))).toBeLessThan(5_000);
    await store.setMetadata('acme/search', soon.id, { topic: 'x' });
    expect(await redis.pexpiretime(key)).toBe(expiry);
    const [index] = await redis.keys(`${prefix}chatcmpl:owner:*`);
    expect(await redis.pexpiretime(index ?? '')).toBe(TOMORROW_MS);
  });

  it('takes the ids of completions gone by expiry out of the index as a read finds them, so listing pages on', async () => {
    const prefix = freshPrefix();
    const store = newStore(prefix);
    const gone = storedCompletion('acme/search', 'short-lived', { createdAtMs: Date.now() - 10 });
    const kept = storedCompletion('acme/search', 'kept');
    await store.put(gone, Date.now() + 150);
    await store.put(kept, TOMORROW_MS);
    await until(async () => (await redis.exists(`${prefix}chatcmpl:${gone.id}`)) === 0, 'the short-lived completion to expire');
    const service = new StoredChatCompletions(store, chatCompletionsSchema.parse({}), { responsesUnstoredBy: async () => undefined }, createLogger('ingress', 'silent'));
    const page = await service.list('acme/search', { limit: 5, order: 'asc', metadata: {} });
    expect(page.data.map((c) => c['id'])).toEqual([kept.id]);
    expect(await store.ids('acme/search', { order: 'asc', count: 5 })).toEqual([{ id: kept.id, createdAtMs: kept.createdAtMs }]);
  });

  it('takes the ids of completions that no longer open out of the index as a list reads them, so listing pages past them', async () => {
    const prefix = freshPrefix();
    const store = newStore(prefix);
    const now = Date.now();
    const made = Array.from({ length: 102 }, (_, i) => storedCompletion('acme/search', `s${i}`, { createdAtMs: now + i }));
    for (const record of made) await store.put(record, TOMORROW_MS);
    // All but the last were sealed under a secret no longer known (dropped after a rotation, or damaged).
    for (const record of made.slice(0, -1)) await redis.set(`${prefix}chatcmpl:${record.id}`, randomBytes(64), 'KEEPTTL');
    const service = new StoredChatCompletions(store, chatCompletionsSchema.parse({ listScanLimit: 100 }), { responsesUnstoredBy: async () => undefined }, createLogger('ingress', 'silent'));
    // A page reads 100 at most: none opens, and has_more says to go on, from the start.
    const first = await service.list('acme/search', { limit: 2, order: 'asc', metadata: {} });
    expect(first).toEqual({ object: 'list', data: [], first_id: null, last_id: null, has_more: true });
    const next = await service.list('acme/search', { limit: 2, order: 'asc', metadata: {} });
    expect(next.data.map((c) => c['id'])).toEqual([made[101]?.id]);
    expect(next.has_more).toBe(false);
    expect((await store.ids('acme/search', { order: 'asc', count: 10 }))?.map((entry) => entry.id)).toEqual([made[101]?.id]);
    // Still stored, until their expiry: only the index let go of them.
    expect(await redis.exists(`${prefix}chatcmpl:${made[0]?.id}`)).toBe(1);
  });

  it('takes the ids of completions past the retention out of the index as a completion is stored: an index stored into every day does not grow', async () => {
    const prefix = freshPrefix();
    const store = newStore(prefix);
    const day = 86_400_000;
    const now = Date.now();
    // Kept a day (expiring in a moment): created two days before the next one, past its retention.
    const old = storedCompletion('acme/search', 'old', { createdAtMs: now - 2 * day });
    const recent = storedCompletion('acme/search', 'recent', { createdAtMs: now - day / 2 });
    await store.put(old, now + 60_000);
    await store.put(recent, now + 2 * day);
    const [index] = await redis.keys(`${prefix}chatcmpl:owner:*`);
    expect(await redis.zrange(index ?? '', '0', '-1')).toEqual([old.id, recent.id]);
    const fresh = storedCompletion('acme/search', 'fresh', { createdAtMs: now });
    await store.put(fresh, now + day);
    expect(await redis.zrange(index ?? '', '0', '-1')).toEqual([recent.id, fresh.id]);
  });

  it('does not open a record moved under another id, nor one of another secret', async () => {
    const prefix = freshPrefix();
    const store = newStore(prefix);
    const a = storedCompletion('acme/search', 'a');
    const b = storedCompletion('acme/search', 'b');
    await store.put(a, TOMORROW_MS);
    await store.put(b, TOMORROW_MS);
    await redis.copy(`${prefix}chatcmpl:${a.id}`, `${prefix}chatcmpl:${b.id}`, 'REPLACE');
    expect(await store.get('acme/search', b.id)).toBeUndefined();
    expect(await new RedisChatCompletionStore(redis, prefix, 'another secret').get('acme/search', a.id)).toBeUndefined();
  });

  it(`purges an owner in batches of ${PURGE_BATCH}`, async () => {
    const store = newStore();
    const n = PURGE_BATCH + 20;
    for (let i = 0; i < n; i++) await store.put(storedCompletion('acme/bulk', `b${i}`, { createdAtMs: Date.now() + i }), TOMORROW_MS);
    expect(await store.purgeOwner('acme/bulk')).toBe(n);
    expect(await store.ids('acme/bulk', { order: 'asc', count: 10 })).toEqual([]);
  });

  it('answers with errors while Redis is away (the service makes them 503s)', async () => {
    const offline = new Redis({ port: 1, lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
    const store = new RedisChatCompletionStore(offline, freshPrefix(), SECRET);
    await expect(store.put(storedCompletion('acme/search', 'x'), TOMORROW_MS)).rejects.toThrow();
    await expect(store.get('acme/search', 'chatcmpl-x')).rejects.toThrow();
    offline.disconnect();
  });
});
