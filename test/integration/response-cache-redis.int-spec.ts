import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { accessSchema, cacheSchema } from '@openrouter/config';
import { routerv1, type chatv1 } from '@openrouter/contracts';
import { connectRedis, RedisResponseCacheStore, ResponseCache } from '@openrouter/ingress';
import { createLogger } from '@openrouter/observability';
import { whenReady } from '@openrouter/service-runtime';
import { sharedRedisUrl } from '../support/infra/shared-infra';
import { waitFor } from '../support/infra/wait-for';

const context = routerv1.RequestContext.fromPartial({ requestId: 'r', orgId: 'acme', teamId: 't', projectId: 'search', keyId: 'k1' });
const body = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Which ship sails at midnight?' }] };
const origin = { model: 'gpt-4o-mini', provider: 'simulated', deployment: 'sim-mini', upstreamModel: 'sim-mini-upstream', cost: { amount: '0.0000315', currency: 'USD', priceVersion: 'p1' } };
const answer: chatv1.ChatCompletion = {
  id: 'chatcmpl-1',
  created: 1_700_000_000,
  model: 'sim-mini-upstream',
  choices: [{ index: 0, message: { role: 'assistant', content: 'The Nightingale.', toolCalls: [], extraJson: '' }, finishReason: 'stop', logprobsJson: '' }],
  usage: { promptTokens: 14, completionTokens: 5, totalTokens: 19, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, estimated: false },
};

describe('the response cache on Redis (redis-server), shared by two ingress replicas', () => {
  const connections: Redis[] = [];
  const prefix = `cache-spec-${randomBytes(4).toString('hex')}:`;
  const settings = cacheSchema.parse({ enabled: true, defaultTtlSeconds: 60, maxTtlSeconds: 600 });

  /** A replica: its own connection (as ingress makes it), registry and cache; the shared prefix and secret. */
  async function replica(): Promise<{ cache: ResponseCache; registry: Registry; redis: Redis }> {
    const redis = connectRedis(accessSchema.parse({ redis: { url: sharedRedisUrl() } }).redis);
    connections.push(redis);
    // As ingress does at start: its connection fails commands at once while not connected.
    await whenReady(redis, 5_000);
    const registry = new Registry();
    return { cache: new ResponseCache(settings, 'shared-hash-secret', new RedisResponseCacheStore(redis, prefix), createLogger('test', 'silent'), registry), registry, redis };
  }

  async function results(registry: Registry): Promise<Record<string, number>> {
    const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === 'openrouter_cache_requests_total');
    return Object.fromEntries((metric?.values ?? []).filter((v) => v.value > 0).map((v) => [String(v.labels['result']), v.value]));
  }

  afterAll(async () => {
    for (const redis of connections) await redis.quit();
  });

  it('answers on one replica from the entry the other stored, sealed in Redis with the TTL asked for', async () => {
    const [a, b] = await Promise.all([replica(), replica()]);
    const headers = { 'x-openrouter-cache': 'use', 'x-openrouter-cache-ttl': '300' };
    const planA = a.cache.plan('/v1/chat/completions', context, body, headers);
    await expect(a.cache.lookup(planA, 'r1')).resolves.toBeUndefined();
    a.cache.storeCompletion(planA, origin, answer, 'r1');
    const key = `${prefix}cache:${planA.id}`;
    await waitFor(async () => (await a.redis.exists(key)) === 1, { what: 'the entry in Redis' });

    // The other replica, the same request with its fields in another order and streamed.
    const planB = b.cache.plan('/v1/chat/completions', context, { stream: true, messages: body.messages, model: body.model }, headers);
    const hit = await b.cache.lookup(planB, 'r2');
    expect(hit).toMatchObject(origin);
    expect(hit?.completion?.choices[0]?.message?.content).toBe('The Nightingale.');
    expect(hit?.completion?.usage).toEqual(answer.usage);

    const stored = (await b.redis.get(key)) ?? '';
    for (const secret of ['Nightingale', 'midnight', 'gpt-4o-mini', '0.0000315']) expect(Buffer.from(stored, 'base64').toString('latin1')).not.toContain(secret);
    expect(stored).not.toContain('Nightingale');
    const ttl = await b.redis.pttl(key);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(300_000);
    // Another project shares nothing.
    await expect(b.cache.lookup(b.cache.plan('/v1/chat/completions', { ...context, projectId: 'ads' }, body, headers), 'r3')).resolves.toBeUndefined();
    await expect(results(a.registry)).resolves.toEqual({ miss: 1 });
    await expect(results(b.registry)).resolves.toEqual({ hit: 1, miss: 1 });
  });

  it('misses once an entry has outlived its TTL', async () => {
    const [a, b] = await Promise.all([replica(), replica()]);
    // 3 s: long enough for the other replica to be served from it first, on a slow machine too.
    const headers = { 'x-openrouter-cache': 'use', 'x-openrouter-cache-ttl': '3' };
    const plan = a.cache.plan('/v1/chat/completions', context, { ...body, temperature: 0 }, headers);
    const key = `${prefix}cache:${plan.id}`;
    a.cache.storeCompletion(plan, origin, answer, 'r1');
    // Waited for in Redis, not by lookups: a lookup that missed would make b lead, and the next one wait behind it.
    await waitFor(async () => (await a.redis.exists(key)) === 1, { what: 'the entry in Redis' });
    await expect(b.cache.lookup(plan, 'r2')).resolves.toMatchObject(origin);
    // Redis expires it after its TTL; no fixed wait: until the other replica misses.
    await waitFor(async () => (await b.cache.lookup(plan, 'r3')) === undefined, { timeoutMs: 15_000, intervalMs: 100, what: 'the entry to expire' });
    expect(await a.redis.exists(key)).toBe(0);
  });

  it('serves uncached when Redis cannot be reached: no error, counted as error', async () => {
    // A client that is not connected and, as ingress's (connectRedis), queues nothing: every
    // command fails at once, as during an outage.
    const redis = new Redis(sharedRedisUrl(), { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1 });
    const registry = new Registry();
    const cache = new ResponseCache(settings, 'shared-hash-secret', new RedisResponseCacheStore(redis, prefix), createLogger('test', 'silent'), registry);
    const plan = cache.plan('/v1/chat/completions', context, body, { 'x-openrouter-cache': 'use' });
    await expect(cache.lookup(plan, 'r1')).resolves.toBeUndefined();
    cache.storeCompletion(plan, origin, answer, 'r1');
    await waitFor(async () => (await results(registry))['error'] === 2, { what: 'the failed lookup and store, counted' });
    await expect(results(registry)).resolves.toEqual({ error: 2 });
    redis.disconnect();
  });
});
