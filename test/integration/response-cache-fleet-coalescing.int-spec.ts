import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { accessSchema, cacheSchema } from '@openrouter/config';
import { routerv1, type chatv1 } from '@openrouter/contracts';
import { connectRedis, connectSubscriber, RedisResponseCacheStore, ResponseCache } from '@openrouter/ingress';
import { createLogger } from '@openrouter/observability';
import { whenReady } from '@openrouter/service-runtime';
import { RedisServer } from '../support/infra/redis';
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
/** Far beyond any test's own timeout: a waiter that only went on once its wait ran out would fail the test. */
const LONG_WAIT_MS = 120_000;

interface Replica {
  cache: ResponseCache;
  registry: Registry;
  redis: Redis;
}

/** Two ResponseCache instances on one Redis, each with its own connections: two ingress replicas. */
describe('coalesced misses across ingress replicas sharing one Redis (redis-server)', () => {
  const replicas: Replica[] = [];
  const prefix = `cache-fleet-spec-${randomBytes(4).toString('hex')}:`;

  async function replicaOn(url: string, settings: Record<string, unknown> = {}): Promise<Replica> {
    const connection = accessSchema.parse({ redis: { url } }).redis;
    const redis = connectRedis(connection);
    redis.on('error', () => undefined);
    const subscriber = connectSubscriber(connection);
    await Promise.all([whenReady(redis, 5_000), whenReady(subscriber, 5_000)]);
    const registry = new Registry();
    const config = cacheSchema.parse({ enabled: true, coalesceWaitMs: LONG_WAIT_MS, ...settings });
    const replica = { cache: new ResponseCache(config, 'fleet-secret', new RedisResponseCacheStore(redis, prefix, subscriber), createLogger('test', 'silent'), registry), registry, redis };
    replicas.push(replica);
    return replica;
  }
  const replica = (settings?: Record<string, unknown>): Promise<Replica> => replicaOn(sharedRedisUrl(), settings);

  afterAll(() => {
    for (const { cache, redis } of replicas) {
      cache.close();
      // Once only: a replica that "crashed" has let go of its connection already.
      if (redis.status !== 'end') redis.disconnect();
    }
  });

  async function metric(registry: Registry, name: string, result?: string): Promise<number> {
    const found = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
    return (found?.values ?? []).filter((v) => result === undefined || v.labels['result'] === result).reduce((sum, v) => sum + v.value, 0);
  }
  const waiting = (registry: Registry, count: number): Promise<boolean> =>
    waitFor(async () => (await metric(registry, 'openrouter_cache_waiting')) === count, { what: `${count} requests waiting` });

  /** A request body of its own: every test starts with no entry and no flight. */
  const bodyOf = (): unknown => ({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `How many oceans? ${randomBytes(4).toString('hex')}` }] });
  const claimKey = (id: string): string => `${prefix}cache-flight:${id}`;

  it('answers the requests waiting on another replica from the entry the leader stored, as hits, and clears the claim', async () => {
    const [a, b] = await Promise.all([replica(), replica()]);
    const body = bodyOf();
    const leader = a.cache.plan('/v1/chat/completions', context, body, use);
    await expect(a.cache.lookup(leader, 'a1')).resolves.toBeUndefined();
    // The claim holds a token of the leader's, nothing of the request.
    const token = await a.redis.get(claimKey(leader.id));
    expect(token).toMatch(/^[0-9a-f-]{36}$/);

    // On b: the first follows a's flight, the second waits behind it in b's own single flight.
    const waiters = ['b1', 'b2'].map((id) => b.cache.lookup(b.cache.plan('/v1/chat/completions', context, body, use), id));
    await waiting(b.registry, 2);
    a.cache.storeCompletion(leader, origin, answer, 'a1');

    for (const hit of await Promise.all(waiters)) {
      expect(hit).toMatchObject(origin);
      expect(hit?.completion?.choices[0]?.message?.content).toBe('Seven.');
    }
    expect(await metric(b.registry, 'openrouter_cache_requests_total', 'hit')).toBe(2);
    expect(await metric(b.registry, 'openrouter_cache_requests_total', 'miss')).toBe(0);
    expect(await metric(b.registry, 'openrouter_cache_waiting')).toBe(0);
    expect(await metric(a.registry, 'openrouter_cache_requests_total', 'miss')).toBe(1);
    await waitFor(async () => (await a.redis.exists(claimKey(leader.id))) === 0, { what: 'the claim released' });
  });

  it('lets the requests waiting on another replica go on as misses at once when the leader stores nothing, without leading in turn', async () => {
    const [a, b] = await Promise.all([replica(), replica()]);
    for (const end of ['skipped', 'abandon'] as const) {
      const body = bodyOf();
      const leader = a.cache.plan('/v1/chat/completions', context, body, use);
      await expect(a.cache.lookup(leader, 'a1')).resolves.toBeUndefined();
      const waiters = ['b1', 'b2'].map((id) => b.cache.lookup(b.cache.plan('/v1/chat/completions', context, body, use), id));
      await waiting(b.registry, 2);
      a.cache[end](leader);
      // Long before LONG_WAIT_MS: let go by the release's notice (or the poll), not by the wait running out.
      await expect(Promise.all(waiters)).resolves.toEqual([undefined, undefined]);
      expect(await a.redis.exists(claimKey(leader.id))).toBe(0);
      // They went on without claiming a flight of their own.
      expect(await b.redis.exists(claimKey(leader.id))).toBe(0);
    }
    expect(await metric(b.registry, 'openrouter_cache_requests_total', 'miss')).toBe(4);
  });

  it('lets a waiter go once the claim of a leader that crashed expires (its cache.coalesceWaitMs), with nothing published', async () => {
    // a claims for 2 s at a time (b's lookup, two round trips, must find it held even on a slow machine),
    // b follows it, then a "crashes": it loses Redis, so it renews, stores, abandons and publishes nothing.
    const [a, b] = await Promise.all([replica({ coalesceWaitMs: 2_000 }), replica()]);
    const body = bodyOf();
    const leader = a.cache.plan('/v1/chat/completions', context, body, use);
    await expect(a.cache.lookup(leader, 'a1')).resolves.toBeUndefined();
    const waiter = b.cache.lookup(b.cache.plan('/v1/chat/completions', context, body, use), 'b1');
    await waiting(b.registry, 1);
    a.redis.disconnect();
    await expect(waiter).resolves.toBeUndefined();
    expect(await b.redis.exists(claimKey(leader.id))).toBe(0);
    expect(await metric(b.registry, 'openrouter_cache_requests_total', 'miss')).toBe(1);
    // Its request ends (its renewals with it); the release cannot reach Redis, and needs not.
    a.cache.abandon(leader);
  });

  /**
   * Until the claim of `id` held by `token` has been extended `times` times (its time to live seen
   * rising again): it outlived its time to live by then. A claim that lapsed, or is another's, fails at once.
   */
  async function renewed(redis: Redis, id: string, token: string, times: number): Promise<void> {
    let last = Number.POSITIVE_INFINITY;
    let seen = 0;
    await waitFor(
      async () => {
        const [[, holder], [, pttl]] = (await redis.multi().get(claimKey(id)).pttl(claimKey(id)).exec()) as [[null, string | null], [null, number]];
        if (holder !== token) throw new Error(`the claim is ${holder === null ? 'gone' : 'another\'s'} after ${seen} renewals`);
        if (pttl > last) seen++;
        last = pttl;
        return seen >= times;
      },
      { intervalMs: 20, what: `${times} renewals of the claim` },
    );
  }

  it('keeps the claim of a leader whose call outlasts cache.coalesceWaitMs: a request arriving at another replica then waits for it, and is a hit', async () => {
    // The claim lives 3 s at a time (a stalled renewal does not let it lapse); a's provider call takes longer than that.
    const [a, b] = await Promise.all([replica({ coalesceWaitMs: 3_000 }), replica()]);
    const body = bodyOf();
    const leader = a.cache.plan('/v1/chat/completions', context, body, use);
    await expect(a.cache.lookup(leader, 'a1')).resolves.toBeUndefined();
    const token = (await a.redis.get(claimKey(leader.id))) ?? '';
    // Four renewals, every second: the claim is past the 3 s it was made for, and still a's.
    await renewed(a.redis, leader.id, token, 4);

    // Arriving now, b's request follows a's flight instead of leading one (and calling the provider) itself.
    const waiter = b.cache.lookup(b.cache.plan('/v1/chat/completions', context, body, use), 'b1');
    await waiting(b.registry, 1);
    expect(await b.redis.get(claimKey(leader.id))).toBe(token);
    a.cache.storeCompletion(leader, origin, answer, 'a1');
    await expect(waiter).resolves.toMatchObject(origin);
    expect(await metric(b.registry, 'openrouter_cache_requests_total', 'hit')).toBe(1);
    expect(await metric(b.registry, 'openrouter_cache_requests_total', 'miss')).toBe(0);
    // Released once stored, and not renewed back: an identical request now is a plain hit of the entry.
    await waitFor(async () => (await a.redis.exists(claimKey(leader.id))) === 0, { what: 'the claim released' });
    await expect(b.cache.lookup(b.cache.plan('/v1/chat/completions', context, body, use), 'b2')).resolves.toMatchObject(origin);
  });

  it('lets a waiter go on by itself at its own cache.coalesceWaitMs while the leader, still running, keeps its claim', async () => {
    // b waits at most 1 s; a leads for longer than that. Its claim lives 3 s at a time, so a stall cannot
    // let it lapse meanwhile (that it outlives its own time to live is the test above's).
    const [a, b] = await Promise.all([replica({ coalesceWaitMs: 3_000 }), replica({ coalesceWaitMs: 1_000 })]);
    const body = bodyOf();
    const leader = a.cache.plan('/v1/chat/completions', context, body, use);
    await expect(a.cache.lookup(leader, 'a1')).resolves.toBeUndefined();
    const token = (await a.redis.get(claimKey(leader.id))) ?? '';
    const arrived = Date.now();
    await expect(b.cache.lookup(b.cache.plan('/v1/chat/completions', context, body, use), 'b1')).resolves.toBeUndefined();
    expect(Date.now() - arrived).toBeGreaterThanOrEqual(950);
    expect(await metric(b.registry, 'openrouter_cache_requests_total', 'miss')).toBe(1);
    // a still leads: its claim outlived b's wait, and is still its own.
    expect(await a.redis.get(claimKey(leader.id))).toBe(token);
    a.cache.abandon(leader);
    await waitFor(async () => (await a.redis.exists(claimKey(leader.id))) === 0, { what: 'the claim released' });
  });

  it("gives each waiter its own cache.coalesceWaitMs: the first one's end does not let go of a later one while the leader still holds its claim", async () => {
    // a's claim lives 3 s at a time, renewed every second while its call runs; b's requests wait 5 s each:
    // room, on a slow machine too, for the second to arrive before the first's end, and to store after it.
    const [a, b] = await Promise.all([replica({ coalesceWaitMs: 3_000 }), replica({ coalesceWaitMs: 5_000 })]);
    const body = bodyOf();
    const leader = a.cache.plan('/v1/chat/completions', context, body, use);
    await expect(a.cache.lookup(leader, 'a1')).resolves.toBeUndefined();
    const token = (await a.redis.get(claimKey(leader.id))) ?? '';

    // b's first request follows a's flight; its second arrives some 3 s later (three renewals of a's claim), both still waiting.
    const first = b.cache.lookup(b.cache.plan('/v1/chat/completions', context, body, use), 'b1');
    await waiting(b.registry, 1);
    await renewed(a.redis, leader.id, token, 3);
    const second = b.cache.lookup(b.cache.plan('/v1/chat/completions', context, body, use), 'b2');
    await waiting(b.registry, 2);

    // The first goes on by itself at the end of its own wait (a miss); a still leads, its claim its own.
    await expect(first).resolves.toBeUndefined();
    expect(await a.redis.get(claimKey(leader.id))).toBe(token);
    // The second, with some 3 s of its own wait left, is still waiting, and is answered from a's entry.
    a.cache.storeCompletion(leader, origin, answer, 'a1');
    await expect(second).resolves.toMatchObject(origin);
    expect(await metric(b.registry, 'openrouter_cache_requests_total', 'miss')).toBe(1);
    expect(await metric(b.registry, 'openrouter_cache_requests_total', 'hit')).toBe(1);
    await waitFor(async () => (await a.redis.exists(claimKey(leader.id))) === 0, { what: 'the claim released' });
  });

  it('goes on as a plain miss, without an error, when its claim fails', async () => {
    const [a, b] = await Promise.all([replica(), replica()]);
    const body = bodyOf();
    const plan = b.cache.plan('/v1/chat/completions', context, body, use);
    // A claim that cannot be read as one (the wrong type): the claim's script fails as a store error would.
    await a.redis.hset(claimKey(plan.id), 'x', '1');
    await expect(b.cache.lookup(plan, 'b1')).resolves.toBeUndefined();
    expect(await metric(b.registry, 'openrouter_cache_requests_total', 'error')).toBe(1);
    expect(await metric(b.registry, 'openrouter_cache_requests_total', 'miss')).toBe(1);
    // Still coalesced within the replica: an identical request there waits for this one.
    const local = b.cache.lookup(b.cache.plan('/v1/chat/completions', context, body, use), 'b2');
    await waiting(b.registry, 1);
    b.cache.storeCompletion(plan, origin, answer, 'b1');
    await expect(local).resolves.toMatchObject(origin);
    await a.redis.del(claimKey(plan.id));
  });

  it('coalesces nothing across replicas with cache.coalesceAcrossReplicas false', async () => {
    const [a, b] = await Promise.all([replica({ coalesceAcrossReplicas: false }), replica({ coalesceAcrossReplicas: false })]);
    const body = bodyOf();
    const first = a.cache.plan('/v1/chat/completions', context, body, use);
    await expect(a.cache.lookup(first, 'a1')).resolves.toBeUndefined();
    const second = b.cache.plan('/v1/chat/completions', context, body, use);
    await expect(b.cache.lookup(second, 'b1')).resolves.toBeUndefined();
    expect(await a.redis.exists(claimKey(first.id))).toBe(0);
    a.cache.abandon(first);
    b.cache.abandon(second);
  });

  it('listens for the flights\' notices on a subscriber connection that was ready before the store was made', async () => {
    const connection = accessSchema.parse({ redis: { url: sharedRedisUrl() } }).redis;
    const [redis, subscriber] = [connectRedis(connection), connectSubscriber(connection)];
    redis.on('error', () => undefined);
    await Promise.all([whenReady(redis, 5_000), whenReady(subscriber, 5_000)]);
    // A prefix of its own: no other replica listens on its channel.
    const own = `${prefix}ready-${randomBytes(4).toString('hex')}:`;
    const listening = async (): Promise<number> => Number(((await redis.pubsub('NUMSUB', `${own}cache-flights`)) as [string, number])[1]);
    expect(await listening()).toBe(0);
    // Its 'ready' has passed already: the store subscribes at once, or its followers would only ever learn by polling.
    const store = new RedisResponseCacheStore(redis, own, subscriber);
    try {
      await waitFor(async () => (await listening()) === 1, { what: 'the subscription to the flights\' channel', timeoutMs: 5_000 });
    } finally {
      store.close();
      redis.disconnect();
    }
  });

  it('serves every request as a plain miss, without an error, when Redis is down', async () => {
    const server = await RedisServer.start();
    try {
      const [a, b] = await Promise.all([replicaOn(server.url), replicaOn(server.url)]);
      await server.stop();
      const body = bodyOf();
      const planA = a.cache.plan('/v1/chat/completions', context, body, use);
      const planB = b.cache.plan('/v1/chat/completions', context, body, use);
      await expect(Promise.all([a.cache.lookup(planA, 'a1'), b.cache.lookup(planB, 'b1')])).resolves.toEqual([undefined, undefined]);
      for (const { registry } of [a, b]) expect(await metric(registry, 'openrouter_cache_requests_total', 'error')).toBe(1);
      a.cache.abandon(planA);
      b.cache.abandon(planB);
    } finally {
      await server.stop();
    }
  });
});
