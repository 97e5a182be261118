import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { accessSchema, cacheSchema } from '@openrouter/config';
import { routerv1, type chatv1 } from '@openrouter/contracts';
import { createLogger } from '@openrouter/observability';
import { whenReady } from '@openrouter/service-runtime';
import { connectRedis, connectSubscriber } from '../access/redis-connection';
import { ResponseCache, type CachedOrigin } from './response-cache';
import { RedisResponseCacheStore } from './response-cache.store';

const context = routerv1.RequestContext.fromPartial({ requestId: 'r', orgId: 'acme', teamId: 't', projectId: 'search', keyId: 'k1' });
const origin: CachedOrigin = { model: 'gpt-4o-mini', provider: 'simulated', deployment: 'sim-mini', upstreamModel: 'sim-mini-upstream', cost: { amount: '0.0000315', currency: 'USD', priceVersion: 'p1' } };
const answer: chatv1.ChatCompletion = {
  id: 'chatcmpl-1',
  created: 1_700_000_000,
  model: 'sim-mini-upstream',
  choices: [{ index: 0, message: { role: 'assistant', content: 'Seven.', toolCalls: [], extraJson: '' }, finishReason: 'stop', logprobsJson: '' }],
  usage: { promptTokens: 9, completionTokens: 2, totalTokens: 11, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, estimated: false },
};
const use = { 'x-openrouter-cache': 'use' };

/** The redis-server the integration project's global setup started. */
function redisUrl(): string {
  const url = process.env['OPENROUTER_TEST_REDIS_URL'];
  if (!url) throw new Error("OPENROUTER_TEST_REDIS_URL is not set: run this suite through jest's integration project");
  return url;
}

/** Polls `condition` until it holds; an error it throws fails at once. */
async function until(condition: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((done) => setTimeout(done, 20));
  }
}

interface Replica {
  cache: ResponseCache;
  registry: Registry;
  redis: Redis;
}

/** Two ResponseCache instances on one Redis, each with its own connections: two ingress replicas. */
describe('a replica following another replica\'s flight (redis-server)', () => {
  const replicas: Replica[] = [];
  const prefix = `cache-follow-spec-${randomBytes(4).toString('hex')}:`;

  async function replica(coalesceWaitMs: number): Promise<Replica> {
    const connection = accessSchema.parse({ redis: { url: redisUrl() } }).redis;
    const redis = connectRedis(connection);
    redis.on('error', () => undefined);
    const subscriber = connectSubscriber(connection);
    await Promise.all([whenReady(redis, 5_000), whenReady(subscriber, 5_000)]);
    const registry = new Registry();
    const cache = new ResponseCache(cacheSchema.parse({ enabled: true, coalesceWaitMs }), 'follow-secret', new RedisResponseCacheStore(redis, prefix, subscriber), createLogger('test', 'silent'), registry);
    const made = { cache, registry, redis };
    replicas.push(made);
    return made;
  }

  afterAll(() => {
    for (const { cache, redis } of replicas) {
      cache.close();
      redis.disconnect();
    }
  });

  async function metric(registry: Registry, name: string, result?: string): Promise<number> {
    const found = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
    return (found?.values ?? []).filter((v) => result === undefined || v.labels['result'] === result).reduce((sum, v) => sum + v.value, 0);
  }
  const waiting = (registry: Registry, count: number): Promise<void> => until(async () => (await metric(registry, 'openrouter_cache_waiting')) === count, `${count} requests waiting`);
  const claimKey = (id: string): string => `${prefix}cache-flight:${id}`;

  /** Until the claim of `id` held by `token` has been extended `times` times more (its time to live seen rising again): time passing, told by the leader. */
  async function renewed(redis: Redis, id: string, token: string, times: number): Promise<void> {
    let last = Number.POSITIVE_INFINITY;
    let seen = 0;
    await until(async () => {
      const [[, holder], [, pttl]] = (await redis.multi().get(claimKey(id)).pttl(claimKey(id)).exec()) as [[null, string | null], [null, number]];
      if (holder !== token) throw new Error(`the claim is ${holder === null ? 'gone' : "another's"} after ${seen} renewals`);
      if (pttl > last) seen++;
      last = pttl;
      return seen >= times;
    }, `${times} renewals of the claim`);
  }

  it("gives each waiter its own cache.coalesceWaitMs: the first one's end does not let go of a later one while the leader still holds its claim", async () => {
    // a's claim lives 300 ms at a time, renewed every 100 ms while its call runs; b's requests wait 2 s each.
    const [a, b] = await Promise.all([replica(300), replica(2_000)]);
    const body = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `How many oceans? ${randomBytes(4).toString('hex')}` }] };
    const leader = a.cache.plan('/v1/chat/completions', context, body, use);
    await expect(a.cache.lookup(leader, 'a1')).resolves.toBeUndefined();
    const token = (await a.redis.get(claimKey(leader.id))) ?? '';

    // b's first request follows a's flight; its second arrives some 600 ms later (six renewals of a's claim), both still waiting.
    const first = b.cache.lookup(b.cache.plan('/v1/chat/completions', context, body, use), 'b1');
    await waiting(b.registry, 1);
    await renewed(a.redis, leader.id, token, 6);
    const second = b.cache.lookup(b.cache.plan('/v1/chat/completions', context, body, use), 'b2');
    await waiting(b.registry, 2);

    // The first goes on by itself at the end of its own wait (a miss); a still leads, its claim its own.
    await expect(first).resolves.toBeUndefined();
    expect(await a.redis.get(claimKey(leader.id))).toBe(token);
    // The second, with some 600 ms of its own wait left, is still waiting, and is answered from a's entry.
    a.cache.storeCompletion(leader, origin, answer, 'a1');
    await expect(second).resolves.toMatchObject(origin);
    expect(await metric(b.registry, 'openrouter_cache_requests_total', 'miss')).toBe(1);
    expect(await metric(b.registry, 'openrouter_cache_requests_total', 'hit')).toBe(1);
    await until(async () => (await a.redis.exists(claimKey(leader.id))) === 0, 'the claim released');
  });
});
