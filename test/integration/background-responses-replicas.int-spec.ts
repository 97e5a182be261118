import { Redis } from 'ioredis';
import OpenAI from 'openai';
import { hashApiKey } from '@openrouter/ingress';
import type { ObservedRequest } from '@openrouter/provider-simulator';
import { apiError } from '../support/api-error';
import { RedisServer } from '../support/infra/redis';
import { waitFor } from '../support/infra/wait-for';
import { startTestGateway, type TestGateway } from '../support/test-gateway';

/**
 * Background responses on two ingress replicas sharing the access store's Redis
 * (docs/responses-api.md#background-responses): a response queued on one is read on the other by
 * every key of its project and by no other, and runs once, on whichever replica claims it; a
 * cancel made on the replica that does not run it stops the provider call of the one that does;
 * and a replica stopped in the middle of a run lets it go after its shutdown grace (or at once,
 * when the run only waits to be tried again), so that the other runs it again and answers it under
 * the queued id.
 */

const SECRET = 'background-replicas-hash-secret';
const SEARCH_KEY = 'sk-or-v1-bg-int-search-0000000000000000';
const SEARCH_OTHER_KEY = 'sk-or-v1-bg-int-search-1111111111111111';
const ADS_KEY = 'sk-or-v1-bg-int-ads-000000000000000000000';
const PREFIX = 'background-replicas:';
/**
 * Renewed every third of it: a replica stalled (GC, a loaded machine) for under two thirds of it keeps
 * its claim. No test waits for a claim to lapse: a stopping replica lets its claims go.
 */
const LEASE_MS = 5_000;
/** The shutdown grace: over three renewals of a claim, so that a stopping replica is seen renewing its run's claim. */
const GRACE_MS = 6_000;
/** A provider call that outlasts the lease, the shutdown grace, and the checks made while it runs (within the provider timeout, PROVIDER_TIMEOUT_MS). */
const SLOW_MS = 20_000;
/** The replicas' provider timeout (the tests' usual one is 10 s): longer than SLOW_MS. */
const PROVIDER_TIMEOUT_MS = 30_000;

const PENDING = ['queued', 'in_progress'];

const chatCalls = (gw: TestGateway): ObservedRequest[] => gw.sim.requests().filter((r) => r.path === '/v1/chat/completions');

/** The background responses the replica ran to their end, by status (its own count, from its metrics). */
async function endedOn(gw: TestGateway): Promise<Record<string, number>> {
  const metrics = await (await fetch(`${gw.url}/metrics`)).text();
  const counts: Record<string, number> = {};
  for (const [, status, value] of metrics.matchAll(/^openrouter_background_responses_ended_total\{[^}]*status="([a-z]+)"[^}]*\} (\d+)$/gm)) counts[status as string] = Number(value);
  return counts;
}

/** Waits until the replica counts `count` responses ended with `status` (a run counts its end once its record is stored and it has left the pending ones). */
const endedCount = (gw: TestGateway, status: string, count: number): Promise<true> =>
  waitFor(async () => ((await endedOn(gw))[status] ?? 0) === count || undefined, { timeoutMs: 10_000, intervalMs: 20, what: `${count} background responses ended ${status}` });

describe('background responses on two replicas sharing one Redis', () => {
  let redis: RedisServer;
  let a: TestGateway;
  let b: TestGateway;
  /** A third replica, started once one of the first two has stopped, and a fourth once another has. */
  let c: TestGateway | undefined;
  let d: TestGateway | undefined;
  let configure: (doc: Record<string, unknown>) => void;
  /** The test's own connection, to see who holds a claim. */
  let inspect: Redis | undefined;
  const closed = new Set<TestGateway>();
  const both = (): TestGateway[] => [a, b];
  const claimOf = (id: string): Promise<string | null> => (inspect as Redis).get(`${PREFIX}background:${id}:claim`);
  const watchers: Redis[] = [];
  /**
   * What Redis does to the claim on `id` from now on, as its keyspace events: `expire` a renewal
   * (PEXPIRE by its holder), `del` let go (or dropped with the ended response), `expired` lapsed.
   */
  const watchClaim = async (id: string): Promise<string[]> => {
    const channel = `__keyspace@0__:${PREFIX}background:${id}:claim`;
    const subscriber = new Redis(redis.url);
    watchers.push(subscriber);
    const events: string[] = [];
    subscriber.on('message', (from: string, event: string) => void (from === channel && events.push(event)));
    await subscriber.subscribe(channel);
    return events;
  };
  const renewals = (events: string[]): number => events.filter((event) => event === 'expire').length;
  /** Waits for the claim's end (let go or lapsed) among `events`, and returns which it was. */
  const claimEnd = (events: string[]): Promise<string> =>
    waitFor(() => events.find((event) => event === 'del' || event === 'expired'), { timeoutMs: 10_000, intervalMs: 10, what: 'the claim to end' });

  /** Polls the response until it has left `queued` and `in_progress`, as an application does. */
  const ended = (client: OpenAI, id: string) =>
    waitFor(
      async () => {
        const response = await client.responses.retrieve(id);
        return PENDING.includes(response.status ?? '') ? undefined : response;
      },
      { timeoutMs: 30_000, intervalMs: 25, what: `response ${id} to end` },
    );

  /** The replica whose simulator got the run's provider call, and the other. */
  const holderOf = async (): Promise<[holder: TestGateway, other: TestGateway]> => {
    await waitFor(() => both().some((gw) => chatCalls(gw).length > 0) || undefined, { timeoutMs: 10_000, intervalMs: 10, what: 'the run to reach a provider' });
    return chatCalls(a).length > 0 ? [a, b] : [b, a];
  };

  beforeAll(async () => {
    redis = await RedisServer.start();
    const shared = (doc: Record<string, unknown>): void => {
      doc['ingress'] = { ...(doc['ingress'] as object), limits: { shutdownGraceMs: GRACE_MS } };
      const providers = doc['providers'] as { simulated: object };
      doc['providers'] = { ...providers, simulated: { ...providers.simulated, timeoutMs: PROVIDER_TIMEOUT_MS } };
      doc['access'] = {
        ...(doc['access'] as object),
        keyHashSecret: SECRET,
        redis: { url: redis.url, keyPrefix: PREFIX },
        orgs: [
          { id: 'default', teams: [{ id: 'default', projects: [{ id: 'default' }] }] },
          { id: 'acme', teams: [{ id: 'platform', projects: [{ id: 'search' }, { id: 'ads' }] }] },
        ],
        keys: [
          { id: 'search-1', hash: hashApiKey(SECRET, SEARCH_KEY), org: 'acme', project: 'search' },
          { id: 'search-2', hash: hashApiKey(SECRET, SEARCH_OTHER_KEY), org: 'acme', project: 'search' },
          { id: 'ads-1', hash: hashApiKey(SECRET, ADS_KEY), org: 'acme', project: 'ads' },
        ],
      };
      doc['responses'] = { background: { pollMs: 50, concurrency: 1, leaseMs: LEASE_MS } };
    };
    configure = shared;
    [a, b] = await Promise.all([startTestGateway({ configure: shared }), startTestGateway({ configure: shared })]);
    inspect = new Redis(redis.url);
    // Keyspace events of generic commands (del, expire) and of expiries, for watchClaim.
    await inspect.config('SET', 'notify-keyspace-events', 'Kgx');
  });
  afterAll(async () => {
    for (const watcher of watchers) watcher.disconnect();
    inspect?.disconnect();
    await Promise.all([a, b, c, d].filter((gw): gw is TestGateway => gw !== undefined && !closed.has(gw)).map((gw) => gw.close()));
    await redis?.stop();
  });
  beforeEach(() => {
    for (const gw of both()) if (!closed.has(gw)) gw.sim.reset();
  });

  it('shows a response queued on one replica on the other, to every key of the project and to no other, and runs it once', async () => {
    // Slow enough that it is still pending when the other replica is asked, on a slow machine too.
    for (const gw of both()) gw.sim.configure({ latencyMs: 3_000 });
    const onA = a.client({ apiKey: SEARCH_KEY });
    const onB = b.client({ apiKey: SEARCH_OTHER_KEY });
    const queued = await onA.responses.create({ model: 'gpt-4o-mini', input: 'Name a river.', background: true, metadata: { job: 'shared' } });
    expect(queued).toMatchObject({ status: 'queued', background: true });

    const seen = await onB.responses.retrieve(queued.id);
    expect(seen).toMatchObject({ id: queued.id, created_at: queued.created_at, background: true, metadata: { job: 'shared' }, output: [] });
    expect(PENDING).toContain(seen.status);
    // Another project's key finds it on neither replica, and cannot cancel it.
    for (const gw of both()) {
      const ads = gw.client({ apiKey: ADS_KEY });
      expect(await apiError(() => ads.responses.retrieve(queued.id))).toMatchObject({ status: 404, code: 'response_not_found' });
      expect(await apiError(() => ads.responses.cancel(queued.id))).toMatchObject({ status: 404 });
    }

    const done = await ended(onB, queued.id);
    expect(done).toMatchObject({ id: queued.id, created_at: queued.created_at, status: 'completed', background: true, metadata: { job: 'shared' } });
    expect(done.output_text.length).toBeGreaterThan(0);
    expect(await onA.responses.retrieve(queued.id)).toMatchObject({ status: 'completed', output_text: done.output_text });
    // One provider call over both replicas, and one replica counts it ended.
    expect(chatCalls(a).length + chatCalls(b).length).toBe(1);
    const [holder, other] = chatCalls(a).length === 1 ? [a, b] : [b, a];
    await endedCount(holder, 'completed', 1);
    expect(await endedOn(holder)).toEqual({ completed: 1 });
    expect(await endedOn(other)).toEqual({});
  });

  it('keeps a run on its replica past the lease, and stops it when it is cancelled on the other: one provider call, aborted, and cancelled', async () => {
    for (const gw of both()) gw.sim.configure({ latencyMs: SLOW_MS });
    const queued = await a.client({ apiKey: SEARCH_KEY }).responses.create({ model: 'gpt-4o-mini', input: 'Take your time.', background: true });
    const [holder, other] = await holderOf();
    const onOther = other.client({ apiKey: SEARCH_OTHER_KEY });
    expect((await onOther.responses.retrieve(queued.id)).status).toBe('in_progress');

    // Its replica renews its claim (every third of its lease): after five renewals seen in Redis (over
    // a lease since the first), the claim is still its own and the other has not taken it over.
    const claimed = await claimOf(queued.id);
    expect(claimed).toEqual(expect.any(String));
    const claim = await watchClaim(queued.id);
    await waitFor(() => renewals(claim) >= 5 || undefined, { timeoutMs: 20_000, intervalMs: 20, what: 'the claim to be renewed past a lease' });
    expect(await claimOf(queued.id)).toBe(claimed);
    expect(claim).not.toContain('expired');
    expect(chatCalls(other)).toEqual([]);
    expect(chatCalls(holder)).toEqual([expect.objectContaining({ outcome: 'pending' })]);

    expect(await onOther.responses.cancel(queued.id)).toMatchObject({ id: queued.id, status: 'cancelled', background: true });
    // Shown cancelled at once, on both replicas.
    expect(await ended(onOther, queued.id)).toMatchObject({ id: queued.id, status: 'cancelled' });
    expect((await holder.client({ apiKey: SEARCH_KEY }).responses.retrieve(queued.id)).status).toBe('cancelled');
    // The replica that ran it saw the cancel at its next look and stopped the provider call: aborted,
    // where the provider, answering after SLOW_MS (within the provider timeout), would have completed it.
    const aborted = await holder.sim.waitForRequest((r) => r.path === '/v1/chat/completions' && r.outcome !== 'pending', 5_000);
    expect(aborted.outcome).toBe('aborted');
    await endedCount(holder, 'cancelled', 1);
    // Its claim went with it, rather than lapse.
    expect(await claimEnd(claim)).toBe('del');
    expect(await claimOf(queued.id)).toBeNull();
    expect((await endedOn(other))['cancelled']).toBeUndefined();
    // It has ended: stored cancelled, without output; a later cancel answers it as it ended, and it can be deleted.
    expect(await onOther.responses.retrieve(queued.id)).toMatchObject({ id: queued.id, status: 'cancelled', background: true, output: [], usage: null });
    expect((await a.client({ apiKey: SEARCH_KEY }).responses.cancel(queued.id)).status).toBe('cancelled');
    await onOther.responses.delete(queued.id);
    expect(await apiError(() => holder.client({ apiKey: SEARCH_KEY }).responses.retrieve(queued.id))).toMatchObject({ status: 404 });
    // Cancelled once, run once.
    expect(chatCalls(a).length + chatCalls(b).length).toBe(1);
  });

  it('runs a response again on the other replica when the one running it stops, under the same id, answered by the other’s provider', async () => {
    for (const gw of both()) gw.sim.configure({ latencyMs: SLOW_MS });
    const onA = a.client({ apiKey: SEARCH_KEY });
    const queued = await onA.responses.create({ model: 'gpt-4o-mini', input: 'Survive a restart.', background: true });
    const [holder, survivor] = await holderOf();
    // The other replica answers at once, so that what it answers is its own run.
    survivor.sim.configure({ latencyMs: 0 });
    const completedBefore = (await endedOn(survivor))['completed'] ?? 0;
    const claim = await watchClaim(queued.id);

    closed.add(holder);
    const renewedBefore = renewals(claim);
    const closing = holder.close();
    // It waits out its shutdown grace for the run, still running it and renewing its claim meanwhile
    // (a replica that dropped the run at once would renew it no more: one renewal in flight at most)...
    await waitFor(() => renewals(claim) >= renewedBefore + 2 || undefined, { timeoutMs: 10_000, intervalMs: 10, what: 'the claim to be renewed while the replica stops' });
    await closing;
    // ...then stops it and its provider call, which would have answered only after SLOW_MS
    // (longer than the grace), and lets its claim go rather than leave it to lapse.
    expect(chatCalls(holder)).toEqual([expect.objectContaining({ outcome: 'aborted' })]);
    expect(await claimEnd(claim)).toBe('del');

    const client = survivor.client({ apiKey: SEARCH_OTHER_KEY });
    const done = await ended(client, queued.id);
    expect(done).toMatchObject({ id: queued.id, created_at: queued.created_at, status: 'completed', background: true });
    expect(done.output_text.length).toBeGreaterThan(0);
    expect(chatCalls(survivor)).toEqual([expect.objectContaining({ outcome: 'completed' })]);
    await endedCount(survivor, 'completed', completedBefore + 1);
    // It is a stored response like any other now: continued on the survivor.
    const next = await client.responses.create({ model: 'gpt-4o-mini', previous_response_id: queued.id, input: 'And then?' });
    expect(next).toMatchObject({ status: 'completed', previous_response_id: queued.id });
  });

  it('lets a response go at once when its replica stops while it waits to try it again, so that the other runs it', async () => {
    c = await startTestGateway({ configure });
    const live = [a, b, c].filter((gw) => !closed.has(gw));
    // Every provider call is refused with a 429 asking for 30 s: a run waits that long to try again,
    // far longer than the checks below take before its replica stops.
    for (const gw of live) {
      gw.sim.reset();
      gw.sim.configure({ faults: [{ kind: 'http_error', status: 429, retryAfterSeconds: 30, path: 'chat' }] });
    }
    const queued = await c.client({ apiKey: SEARCH_KEY }).responses.create({ model: 'gpt-4o-mini', input: 'Try me again.', background: true });
    const holder = await waitFor(() => live.find((gw) => chatCalls(gw).some((r) => r.outcome !== 'pending')), { timeoutMs: 10_000, intervalMs: 5, what: 'the first attempt to be refused' });
    const survivor = live.find((gw) => gw !== holder) as TestGateway;
    const claimed = await claimOf(queued.id);
    expect(claimed).toEqual(expect.any(String));
    survivor.sim.reset();
    const claim = await watchClaim(queued.id);

    closed.add(holder);
    await holder.close();
    // Stopped, it holds no claim: it let the response go (a `del`) rather than leave it to lapse
    // (responses.background.leaseMs), and made no second attempt (one call on its provider, below).
    expect(await claimOf(queued.id)).not.toBe(claimed);
    expect(await claimEnd(claim)).toBe('del');

    const done = await ended(survivor.client({ apiKey: SEARCH_OTHER_KEY }), queued.id);
    expect(done).toMatchObject({ id: queued.id, status: 'completed' });
    expect(chatCalls(holder)).toEqual([expect.objectContaining({ outcome: 'error' })]);
    expect(chatCalls(survivor)).toEqual([expect.objectContaining({ outcome: 'completed' })]);
  });
  it('streams a response run on one replica to a client reading it on another; when the one running it stops mid-stream, the other runs it whole and ends the stream with its answer', async () => {
    d = await startTestGateway({ configure });
    const live = [a, b, c, d].filter((gw): gw is TestGateway => gw !== undefined && !closed.has(gw));
    expect(live).toHaveLength(2);
    // A stream of 800 tokens at 40 a second (20 s): still streaming when its replica stops, after its grace.
    for (const gw of live) {
      gw.sim.reset();
      gw.sim.configure({ completionTokens: 800, tokensPerSecond: 40 });
    }
    const [first] = live as [TestGateway, TestGateway];
    const stream = await first.client({ apiKey: SEARCH_KEY }).responses.create({ model: 'gpt-4o-mini', input: 'Survive mid-stream.', background: true, stream: true });
    let id = '';
    let deltas = 0;
    for await (const event of stream) {
      if (event.type === 'response.created') id = event.response.id;
      if (event.type === 'response.output_text.delta' && ++deltas === 3) break;
    }
    const holder = live.find((gw) => chatCalls(gw).length > 0) as TestGateway;
    const survivor = live.find((gw) => gw !== holder) as TestGateway;
    // Its run there answers at once.
    survivor.sim.configure({ completionTokens: 5, tokensPerSecond: 0 });

    // Read on the other replica from the start: what the holder adds reaches it as it is added.
    const seen: Array<{ type: string; sequence_number: number }> = [];
    let end: OpenAI.Responses.ResponseStreamEvent | undefined;
    const reading = (async () => {
      for await (const event of await survivor.client({ apiKey: SEARCH_OTHER_KEY }).responses.retrieve(id, { stream: true })) {
        seen.push({ type: event.type, sequence_number: event.sequence_number });
        end = event;
      }
    })();
    await waitFor(() => seen.filter((event) => event.type === 'response.output_text.delta').length >= 3 || undefined, { timeoutMs: 10_000, intervalMs: 10, what: 'the deltas streamed on the other replica' });

    closed.add(holder);
    await holder.close();
    await reading;
    // The holder's events, then the end the survivor's whole run made: numbered on without a gap.
    expect(seen.slice(0, 3).map((event) => event.type)).toEqual(['response.created', 'response.queued', 'response.in_progress']);
    expect(seen.map((event) => event.sequence_number)).toEqual(seen.map((_, i) => i));
    expect(seen.filter((event) => event.type === 'response.failed' || event.type === 'error')).toEqual([]);
    expect(end).toMatchObject({ type: 'response.completed', response: { id, status: 'completed', background: true } });
    const done = await survivor.client({ apiKey: SEARCH_OTHER_KEY }).responses.retrieve(id);
    expect(done).toMatchObject({ id, status: 'completed' });
    const endText = end?.type === 'response.completed' ? end.response.output.flatMap((item) => (item.type === 'message' ? item.content : [])).map((part) => (part.type === 'output_text' ? part.text : '')).join('') : undefined;
    expect(endText).toBe(done.output_text);
    // The holder's call was cut by its shutdown; the survivor's was whole, not streamed.
    expect(chatCalls(holder)).toEqual([expect.objectContaining({ outcome: 'aborted' })]);
    expect(chatCalls(survivor)).toEqual([expect.objectContaining({ outcome: 'completed' })]);
    expect((chatCalls(survivor)[0]?.body as { stream?: boolean }).stream).not.toBe(true);
  });
});
