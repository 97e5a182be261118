import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import OpenAI from 'openai';
import { sharedRedisUrl } from '../support/infra/shared-infra';
import { waitFor } from '../support/infra/wait-for';
import { startTestGateway, type TestGateway } from '../support/test-gateway';

/** Identical requests sent together, split across the two replicas. */
const N = 6;
const use = { 'x-openrouter-cache': 'use' };

describe('identical cacheable requests arriving together at two ingress replicas sharing Redis, through the official openai SDK', () => {
  let a: TestGateway;
  let b: TestGateway;
  const prefix = `cache-fleet-e2e-${randomBytes(4).toString('hex')}:`;

  beforeAll(async () => {
    // Two replicas of one deployment: the same access store (and so the same entries and flights).
    const shared = (doc: Record<string, unknown>): void => {
      doc['access'] = { ...(doc['access'] as object), redis: { url: sharedRedisUrl(), keyPrefix: prefix } };
      doc['cache'] = { enabled: true, defaultTtlSeconds: 60 };
    };
    [a, b] = await Promise.all([startTestGateway({ configure: shared }), startTestGateway({ configure: shared })]);
  }, 120_000);
  afterAll(async () => Promise.all([a?.close(), b?.close()]));
  beforeEach(() => {
    for (const gw of [a, b]) {
      gw.sim.reset();
      // Long enough for every request sent together to arrive while the first one's provider call is still out.
      gw.sim.configure({ latencyMs: 1_500 });
    }
  });

  const upstreamChats = (): number => [a, b].reduce((sum, gw) => sum + gw.sim.requests().filter((r) => r.path.endsWith('/chat/completions')).length, 0);
  const replicaOf = (i: number): TestGateway => (i % 2 === 0 ? a : b);

  it('calls the provider once for the whole fleet: one request is billed, the others (on both replicas) are hits', async () => {
    const body = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: `Name a prime between 20 and 30 (${randomBytes(4).toString('hex')}).` }] };
    const answers = await Promise.all(
      Array.from({ length: N }, (_, i) => replicaOf(i).client().chat.completions.create(body, { headers: { ...use, 'x-request-id': `fleet-${i}-${randomBytes(3).toString('hex')}` } }).withResponse()),
    );

    expect(upstreamChats()).toBe(1);
    expect(new Set(answers.map((x) => x.data.choices[0]?.message.content)).size).toBe(1);
    const misses = answers.filter((x) => x.response.headers.get('x-openrouter-cache') === 'miss');
    const hits = answers.filter((x) => x.response.headers.get('x-openrouter-cache') === 'hit');
    expect(misses).toHaveLength(1);
    expect(hits).toHaveLength(N - 1);
    expect(Number(misses[0]?.response.headers.get('x-openrouter-cost'))).toBeGreaterThan(0);
    for (const hit of hits) {
      expect(hit.response.headers.get('x-openrouter-cost')).toBe('0');
      expect(hit.data.usage).toMatchObject({ cost: 0, completion_tokens: misses[0]?.data.usage?.completion_tokens });
    }
  });

  it('lets the requests waiting on the other replica call the provider themselves when the leader fails', async () => {
    // The leader on replica a: its provider call fails (not retried); the requests waiting for it go on as misses.
    a.sim.configure({ faults: [{ kind: 'http_error', status: 400, code: 'invalid_value', message: 'refused once', path: 'chat', remaining: 1 }] });
    const body = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: `Name a mountain (${randomBytes(4).toString('hex')}).` }] };
    const send = (gw: TestGateway): Promise<{ cache: string | null; content: string | null | undefined } | { error: unknown }> =>
      gw
        .client()
        .chat.completions.create(body, { headers: use })
        .withResponse()
        .then(
          (answer) => ({ cache: answer.response.headers.get('x-openrouter-cache'), content: answer.data.choices[0]?.message.content }),
          (error: unknown) => ({ error }),
        );
    const leader = send(a);
    await a.sim.waitForRequest((r) => r.path.endsWith('/chat/completions'), 10_000);
    // The others arrive while its provider call is out: on both replicas.
    const others = Array.from({ length: N - 1 }, (_, i) => send(replicaOf(i + 1)));
    const results = await Promise.all([leader, ...others]);
    const failed = results.filter((r) => 'error' in r);
    expect(failed).toHaveLength(1);
    expect((failed[0] as { error: unknown }).error).toBeInstanceOf(OpenAI.BadRequestError);
    const answered = results.filter((r): r is { cache: string | null; content: string | null | undefined } => !('error' in r));
    expect(answered).toHaveLength(N - 1);
    for (const answer of answered) expect(answer.content?.length).toBeGreaterThan(0);
    expect(answered.every((x) => x.cache === 'miss')).toBe(true);
    expect(upstreamChats()).toBe(N);
  });
});

describe('a leader whose provider call outlasts cache.coalesceWaitMs, on two ingress replicas sharing Redis, through the official openai SDK', () => {
  let a: TestGateway;
  let b: TestGateway;
  let redis: Redis;
  const prefix = `cache-renewal-e2e-${randomBytes(4).toString('hex')}:`;
  /** The claim lives this long at a time; the leader's provider call takes longer. */
  const CLAIM_MS = 2_000;

  beforeAll(async () => {
    const shared = (doc: Record<string, unknown>): void => {
      doc['access'] = { ...(doc['access'] as object), redis: { url: sharedRedisUrl(), keyPrefix: prefix } };
      doc['cache'] = { enabled: true, defaultTtlSeconds: 60, coalesceWaitMs: CLAIM_MS };
    };
    [a, b] = await Promise.all([startTestGateway({ configure: shared }), startTestGateway({ configure: shared })]);
    redis = new Redis(sharedRedisUrl());
  }, 120_000);
  afterAll(async () => {
    await redis?.quit();
    await Promise.all([a?.close(), b?.close()]);
  });

  it('keeps its claim while the call runs: a request arriving at the other replica after the claim\'s first life waits for it and is a hit, not a second provider call', async () => {
    a.sim.configure({ latencyMs: 3_500 });
    b.sim.configure({ latencyMs: 3_500 });
    const body = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: `Name a long river (${randomBytes(4).toString('hex')}).` }] };
    const leader = a.client().chat.completions.create(body, { headers: use }).withResponse();
    await a.sim.waitForRequest((r) => r.path.endsWith('/chat/completions'), 10_000);
    const [claim] = await waitFor(async () => {
      const keys = await redis.keys(`${prefix}cache-flight:*`);
      return keys.length > 0 ? keys : undefined;
    }, { what: 'the leader\'s claim' });
    const token = await redis.get(claim ?? '');
    // Extended four times (every third of its 2 s): well past the life it was claimed for, and still the leader's.
    let last = Number.POSITIVE_INFINITY;
    let renewals = 0;
    await waitFor(
      async () => {
        const [[, holder], [, pttl]] = (await redis.multi().get(claim ?? '').pttl(claim ?? '').exec()) as [[null, string | null], [null, number]];
        if (holder !== token) throw new Error(`the claim is ${holder === null ? 'gone' : 'another\'s'} after ${renewals} renewals`);
        if (pttl > last) renewals++;
        last = pttl;
        return renewals >= 4;
      },
      { intervalMs: 20, what: 'four renewals of the leader\'s claim' },
    );

    const follower = await b.client().chat.completions.create(body, { headers: use }).withResponse();
    const first = await leader;
    expect(first.response.headers.get('x-openrouter-cache')).toBe('miss');
    expect(follower.response.headers.get('x-openrouter-cache')).toBe('hit');
    expect(follower.response.headers.get('x-openrouter-cost')).toBe('0');
    expect(follower.data.choices[0]?.message.content).toBe(first.data.choices[0]?.message.content);
    expect(b.sim.requests().filter((r) => r.path.endsWith('/chat/completions'))).toHaveLength(0);
    expect(a.sim.requests().filter((r) => r.path.endsWith('/chat/completions'))).toHaveLength(1);
    await waitFor(async () => (await redis.exists(claim ?? '')) === 0, { what: 'the claim released' });
  });
});
