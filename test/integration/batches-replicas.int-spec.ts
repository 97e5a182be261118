import OpenAI, { toFile } from 'openai';
import { hashApiKey } from '@openrouter/ingress';
import { RedisServer } from '../support/infra/redis';
import { waitFor } from '../support/infra/wait-for';
import { startTestGateway, type TestGateway } from '../support/test-gateway';

/**
 * Batches on two ingress replicas sharing the access store's Redis: a batch and its files made on
 * one are seen on the other by every key of the project, and a batch whose replica stops is taken
 * over by the other, which runs only the lines without a result, so that each line is answered once.
 */

const SECRET = 'batches-replicas-hash-secret';
const SEARCH_KEY = 'sk-or-v1-batches-int-search-000000000000';
const SEARCH_OTHER_KEY = 'sk-or-v1-batches-int-search-111111111111';
const ADS_KEY = 'sk-or-v1-batches-int-ads-00000000000000000';
const LINES = 8;
/**
 * The replicas' shutdown grace: longer than a test may run, so that a replica's close ends only
 * because nothing holds it open any more, never because its grace ran out.
 */
const GRACE_MS = 120_000;

const chatLine = (customId: string): string =>
  JSON.stringify({ custom_id: customId, method: 'POST', url: '/v1/chat/completions', body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `question ${customId}` }] } });

const chatRequests = (gw: TestGateway): number => gw.sim.requests().filter((r) => r.path === '/v1/chat/completions').length;

describe('batches on two replicas sharing one Redis', () => {
  let redis: RedisServer;
  let a: TestGateway;
  let b: TestGateway;
  const closed = new Set<TestGateway>();

  beforeAll(async () => {
    redis = await RedisServer.start();
    const shared = (doc: Record<string, unknown>): void => {
      doc['ingress'] = { ...(doc['ingress'] as object), limits: { shutdownGraceMs: GRACE_MS } };
      doc['access'] = {
        ...(doc['access'] as object),
        keyHashSecret: SECRET,
        redis: { url: redis.url, keyPrefix: 'batches-replicas:' },
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
      // Renewed every third of it: a replica stalled (GC, a loaded machine) for under two thirds of it
      // keeps its batch. No test waits for a claim to lapse: a stopping replica lets its claims go.
      doc['batches'] = { pollMs: 50, concurrency: 1, leaseMs: 10_000 };
    };
    [a, b] = await Promise.all([startTestGateway({ configure: shared }), startTestGateway({ configure: shared })]);
  });
  afterAll(async () => {
    await Promise.all([a, b].filter((gw) => gw && !closed.has(gw)).map((gw) => gw.close()));
    await redis?.stop();
  });

  it('shows the files and batches made on one replica on the other, to every key of the project and to no other', async () => {
    const onA = a.client({ apiKey: SEARCH_KEY });
    const onB = b.client({ apiKey: SEARCH_OTHER_KEY });
    const adsOnB = b.client({ apiKey: ADS_KEY });
    const file = await onA.files.create({ file: await toFile(Buffer.from(`${chatLine('only')}\n`), 'in.jsonl'), purpose: 'batch' });
    const batch = await onA.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h', metadata: { job: 'shared' } });

    expect(await onB.files.retrieve(file.id)).toMatchObject({ id: file.id, purpose: 'batch', filename: 'in.jsonl' });
    expect(await (await onB.files.content(file.id)).text()).toBe(`${chatLine('only')}\n`);
    expect(await onB.batches.retrieve(batch.id)).toMatchObject({ id: batch.id, input_file_id: file.id, metadata: { job: 'shared' } });
    expect((await onB.batches.list({ limit: 10 })).data.map((x) => x.id)).toContain(batch.id);
    // Another project's key finds neither, on either replica.
    await expect(adsOnB.files.retrieve(file.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(adsOnB.batches.retrieve(batch.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(a.client({ apiKey: ADS_KEY }).batches.retrieve(batch.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    expect((await adsOnB.batches.list({ limit: 10 })).data).toEqual([]);

    // It runs on whichever replica claims it, and both see it end.
    const ended = await waitFor(async () => {
      const seen = await onB.batches.retrieve(batch.id);
      return seen.status === 'completed' ? seen : undefined;
    }, { timeoutMs: 30_000, what: 'the batch to complete' });
    expect(ended.request_counts).toEqual({ total: 1, completed: 1, failed: 0 });
    expect(await onA.batches.retrieve(batch.id)).toMatchObject({ status: 'completed', output_file_id: ended.output_file_id });
  });

  it('carries on a batch whose replica stops on the other: every line answered once, in the input order', async () => {
    for (const gw of [a, b]) gw.sim.reset();
    // A second a line: the holder is still running lines (8 s of them) when two are answered and it is stopped.
    for (const gw of [a, b]) gw.sim.configure({ latencyMs: 1_000 });
    const onA = a.client({ apiKey: SEARCH_KEY });
    const ids = Array.from({ length: LINES }, (_, i) => `line-${i}`);
    const file = await onA.files.create({ file: await toFile(Buffer.from(`${ids.map(chatLine).join('\n')}\n`), 'in.jsonl'), purpose: 'batch' });
    const created = await onA.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });

    await waitFor(async () => ((await onA.batches.retrieve(created.id)).request_counts?.completed ?? 0) >= 2 || undefined, {
      timeoutMs: 30_000,
      intervalMs: 20,
      what: 'two lines answered',
    });
    // Only the replica holding the batch runs its lines, on its own simulator.
    const [holder, survivor] = chatRequests(a) > 0 ? [a, b] : [b, a];
    expect(chatRequests(survivor)).toBe(0);
    const ranBeforeStop = chatRequests(holder);
    expect(ranBeforeStop).toBeGreaterThanOrEqual(2);
    expect(ranBeforeStop).toBeLessThan(LINES);
    // The lines the survivor takes over are answered at once.
    survivor.sim.configure({ latencyMs: 0 });
    closed.add(holder);
    // It stops once its line in flight is answered, not at the end of its shutdown grace (longer
    // than the test's timeout): the connections its lines took to its own API do not hold its
    // listener open. Every line it sent its provider was answered, none cut.
    await holder.close();
    expect(holder.sim.requests().filter((r) => r.path === '/v1/chat/completions').map((r) => r.outcome)).toEqual(Array.from({ length: chatRequests(holder) }, () => 'completed'));

    const client = survivor.client({ apiKey: SEARCH_OTHER_KEY });
    const batch = await waitFor(async () => {
      const seen = await client.batches.retrieve(created.id);
      return ['completed', 'failed', 'expired', 'cancelled'].includes(seen.status) ? seen : undefined;
    }, { timeoutMs: 45_000, what: 'the batch to end on the other replica' });
    expect(batch).toMatchObject({ status: 'completed', request_counts: { total: LINES, completed: LINES, failed: 0 }, error_file_id: null });

    const output = (await (await client.files.content(batch.output_file_id as string)).text())
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as { custom_id: string; response: { status_code: number } });
    expect(output.map((l) => l.custom_id)).toEqual(ids);
    expect(output.every((l) => l.response.status_code === 200)).toBe(true);
    // The survivor ran the rest; a line in flight when its replica stopped may have run on both (one at most: concurrency 1).
    expect(chatRequests(survivor)).toBeGreaterThan(0);
    const total = chatRequests(holder) + chatRequests(survivor);
    expect(total).toBeGreaterThanOrEqual(LINES);
    expect(total).toBeLessThanOrEqual(LINES + 1);
  });
});
