import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { accessSchema, cacheSchema } from '@openrouter/config';
import { routerv1, type chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { connectRedis, RedisResponseCacheStore, ResponseCache } from '@openrouter/ingress';
import { createLogger } from '@openrouter/observability';
import { whenReady } from '@openrouter/service-runtime';
import { sharedRedisUrl } from '../support/infra/shared-infra';
import { waitFor } from '../support/infra/wait-for';

const context = routerv1.RequestContext.fromPartial({ requestId: 'r', orgId: 'acme', teamId: 't', projectId: 'search', keyId: 'k1' });
const origin = { model: 'gpt-4o-mini', provider: 'simulated', deployment: 'sim-mini', upstreamModel: 'sim-mini-upstream', cost: { amount: '0.0000315', currency: 'USD', priceVersion: 'p1' } };
const answer: chatv1.ChatCompletion = {
  id: 'chatcmpl-1',
  created: 1_700_000_000,
  model: 'sim-mini-upstream',
  choices: [{ index: 0, message: { role: 'assistant', content: 'Seven.', toolCalls: [], extraJson: '' }, finishReason: 'stop', logprobsJson: '' }],
  usage: { promptTokens: 9, completionTokens: 2, totalTokens: 11, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, estimated: false },
};
const use = { 'x-openrouter-cache': 'use' };

describe('coalesced misses of the response cache on Redis (redis-server)', () => {
  let redis: Redis;
  const prefix = `cache-coalesce-spec-${randomBytes(4).toString('hex')}:`;

  beforeAll(async () => {
    redis = connectRedis(accessSchema.parse({ redis: { url: sharedRedisUrl() } }).redis);
    await whenReady(redis, 5_000);
  });
  afterAll(async () => redis?.quit());

  function cacheOf(settings: Record<string, unknown> = {}): { cache: ResponseCache; registry: Registry } {
    const registry = new Registry();
    const config = cacheSchema.parse({ enabled: true, ...settings });
    return { cache: new ResponseCache(config, 'coalesce-secret', new RedisResponseCacheStore(redis, prefix), createLogger('test', 'silent'), registry), registry };
  }

  async function metric(registry: Registry, name: string, result?: string): Promise<number> {
    const found = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
    return (found?.values ?? []).filter((v) => result === undefined || v.labels['result'] === result).reduce((sum, v) => sum + v.value, 0);
  }

  /** A request body of its own: every test starts with no entry. */
  const bodyOf = (): unknown => ({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `How many seas? ${randomBytes(4).toString('hex')}` }] });

  /** Until `count` requests wait for another's answer. */
  const waiting = (registry: Registry, count: number): Promise<boolean> =>
    waitFor(async () => (await metric(registry, 'openrouter_cache_waiting')) === count, { what: `${count} requests waiting` });

  it('answers the requests that waited from the entry the leader stored in Redis, as hits', async () => {
    const { cache, registry } = cacheOf();
    const body = bodyOf();
    const leader = cache.plan('/v1/chat/completions', context, body, use);
    await expect(cache.lookup(leader, 'r1')).resolves.toBeUndefined();
    const waiters = ['r2', 'r3', 'r4'].map((id) => cache.lookup(cache.plan('/v1/chat/completions', context, body, use), id));
    await waiting(registry, 3);

    cache.storeCompletion(leader, origin, answer, 'r1');
    const hits = await Promise.all(waiters);
    for (const hit of hits) {
      expect(hit).toMatchObject(origin);
      expect(hit?.completion?.choices[0]?.message?.content).toBe('Seven.');
    }
    // What they were given is what Redis holds.
    expect(await redis.exists(`${prefix}cache:${leader.id}`)).toBe(1);
    expect(await metric(registry, 'openrouter_cache_requests_total', 'hit')).toBe(3);
    expect(await metric(registry, 'openrouter_cache_requests_total', 'miss')).toBe(1);
    expect(await metric(registry, 'openrouter_cache_waiting')).toBe(0);
  });

  it('lets the waiters go on as misses when the leader stores nothing (skipped or failed), and they do not lead in turn', async () => {
    const { cache, registry } = cacheOf();
    for (const end of ['skipped', 'abandon'] as const) {
      const body = bodyOf();
      const leader = cache.plan('/v1/chat/completions', context, body, use);
      await expect(cache.lookup(leader, 'r1')).resolves.toBeUndefined();
      const waiters = ['r2', 'r3'].map((id) => cache.lookup(cache.plan('/v1/chat/completions', context, body, use), id));
      await waiting(registry, 2);
      cache[end](leader);
      await expect(Promise.all(waiters)).resolves.toEqual([undefined, undefined]);
      // A later request leads a flight of its own: no one is left waiting on the abandoned one.
      const next = cache.plan('/v1/chat/completions', context, body, use);
      await expect(cache.lookup(next, 'r4')).resolves.toBeUndefined();
      const behindNext = cache.lookup(cache.plan('/v1/chat/completions', context, body, use), 'r5');
      await waiting(registry, 1);
      cache.storeCompletion(next, origin, answer, 'r4');
      await expect(behindNext).resolves.toMatchObject(origin);
    }
  });

  it('lets a waiter go once cache.coalesceWaitMs has passed', async () => {
    const { cache, registry } = cacheOf({ coalesceWaitMs: 20 });
    const body = bodyOf();
    const leader = cache.plan('/v1/chat/completions', context, body, use);
    await expect(cache.lookup(leader, 'r1')).resolves.toBeUndefined();
    await expect(cache.lookup(cache.plan('/v1/chat/completions', context, body, use), 'r2')).resolves.toBeUndefined();
    expect(await metric(registry, 'openrouter_cache_requests_total', 'miss')).toBe(2);
    cache.abandon(leader);
  });

  it('ends the wait of a request whose client left as cancelled, and waits for nothing with cache.coalesceWaitMs 0', async () => {
    const { cache, registry } = cacheOf();
    const body = bodyOf();
    const leader = cache.plan('/v1/chat/completions', context, body, use);
    await expect(cache.lookup(leader, 'r1')).resolves.toBeUndefined();
    const gone = new AbortController();
    const leaving = cache.lookup(cache.plan('/v1/chat/completions', context, body, use), 'r2', gone.signal).catch((error: unknown) => error);
    await waiting(registry, 1);
    gone.abort();
    const error = await leaving;
    expect(error).toBeInstanceOf(GatewayError);
    expect(error).toMatchObject({ kind: 'cancelled' });
    cache.abandon(leader);

    const { cache: alone } = cacheOf({ coalesceWaitMs: 0 });
    const first = alone.plan('/v1/chat/completions', context, body, use);
    await expect(alone.lookup(first, 'r3')).resolves.toBeUndefined();
    // Not led by the first: a miss at once.
    await expect(alone.lookup(alone.plan('/v1/chat/completions', context, body, use), 'r4')).resolves.toBeUndefined();
  });

  it('never lets a refresh or a bypass lead or wait', async () => {
    const { cache, registry } = cacheOf();
    const body = bodyOf();
    const refresh = cache.plan('/v1/chat/completions', context, body, { 'x-openrouter-cache': 'refresh' });
    await expect(cache.lookup(refresh, 'r1')).resolves.toBeUndefined();
    const leader = cache.plan('/v1/chat/completions', context, body, use);
    await expect(cache.lookup(leader, 'r2')).resolves.toBeUndefined();
    const waiter = cache.lookup(cache.plan('/v1/chat/completions', context, body, use), 'r3');
    await waiting(registry, 1);
    // The refresh's answer, stored, settles nothing: the waiter waits for its own leader.
    cache.storeCompletion(refresh, origin, { ...answer, choices: [{ index: 0, message: { role: 'assistant', content: 'Refreshed.', toolCalls: [], extraJson: '' }, finishReason: 'stop', logprobsJson: '' }] }, 'r1');
    await waitFor(async () => (await redis.exists(`${prefix}cache:${refresh.id}`)) === 1, { what: 'the refresh stored' });
    expect(await metric(registry, 'openrouter_cache_waiting')).toBe(1);
    cache.storeCompletion(leader, origin, answer, 'r2');
    await expect(waiter).resolves.toMatchObject({ completion: { choices: [{ message: { content: 'Seven.' } }] } });
  });
});
