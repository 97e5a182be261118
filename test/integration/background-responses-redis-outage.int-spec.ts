import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import OpenAI from 'openai';
import type { ObservedRequest } from '@openrouter/provider-simulator';
import { apiError } from '../support/api-error';
import { RedisServer } from '../support/infra/redis';
import { waitFor } from '../support/infra/wait-for';
import { startTestGateway, type TestGateway } from '../support/test-gateway';

const PREFIX = 'background-outage:';
const PENDING = ['queued', 'in_progress'];

/**
 * A Redis outage under background responses (docs/responses-api.md#background-responses): while
 * it lasts, queueing one, reading one and cancelling one answer 503 `response_store_unavailable`
 * (retryable, in OpenAI's shape), never a 500, and nothing refused is kept. A run whose answer
 * comes while Redis is away cannot store it: the answer is held, and stored once Redis is back (its
 * data kept on disk, as a production Redis keeps it), so the response is not run, nor billed,
 * again; the response queued behind it runs then, once. Both end completed: none is lost.
 */
describe('background responses through a Redis outage', () => {
  let dir: string;
  let redis: RedisServer;
  let gw: TestGateway;
  let inspect: Redis | undefined;
  const persistent = (): { args: string[] } => ({ args: ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir] });
  const callsFor = (text: string): ObservedRequest[] => gw.sim.requests().filter((r) => r.path === '/v1/chat/completions' && JSON.stringify(r.body).includes(text));
  /** A connection of the test's own, to look into Redis. */
  const inspector = async (): Promise<Redis> => {
    const connection = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    await connection.connect();
    return connection;
  };
  /** The gateway's connections to Redis: all but the inspector's own. */
  const gatewayConnections = async (inspect: Redis): Promise<number> => Number(/^connected_clients:(\d+)/m.exec(await inspect.info('clients'))?.[1] ?? 0) - 1;
  const failedToStore = async (): Promise<number> => {
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    return Number(/^openrouter_responses_stored_total\{[^}]*outcome="failed"[^}]*\} (\d+)$/m.exec(metrics)?.[1] ?? 0);
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'redis-outage-'));
    redis = await RedisServer.start(undefined, persistent());
    gw = await startTestGateway({
      configure: (doc) => {
        doc['access'] = { ...(doc['access'] as object), redis: { url: redis.url, keyPrefix: PREFIX } };
        // One at a time, so that the second response stays queued behind the first while Redis is away.
        doc['responses'] = { background: { pollMs: 50, concurrency: 1, leaseMs: 1_000 } };
      },
    });
  });
  afterAll(async () => {
    inspect?.disconnect();
    await gw?.close();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses to queue, read or cancel with 503 while Redis is away, and runs every response queued before it once it is back', async () => {
    const client = gw.client();
    // The first run's provider call outlasts the moment Redis goes, even when the steps before it are
    // slow (within the provider timeout, 10 s).
    gw.sim.configure({ latencyMs: 6_000 });
    const first = await client.responses.create({ model: 'gpt-4o-mini', input: 'First, running when Redis goes.', background: true });
    await waitFor(() => callsFor('First').length === 1 || undefined, { timeoutMs: 10_000, intervalMs: 10, what: 'the first run to reach the provider' });
    const second = await client.responses.create({ model: 'gpt-4o-mini', input: 'Second, queued behind it.', background: true });
    expect((await client.responses.retrieve(second.id)).status).toBe('queued');

    const before = await inspector();
    const connected = await gatewayConnections(before);
    before.disconnect();
    await redis.stop();
    expect(callsFor('First')).toEqual([expect.objectContaining({ outcome: 'pending' })]);
    const refusals = [
      () => client.responses.create({ model: 'gpt-4o-mini', input: 'Third, refused while Redis is away.', background: true }),
      () => client.responses.retrieve(first.id),
      () => client.responses.retrieve(second.id),
      () => client.responses.inputItems.list(second.id),
      () => client.responses.cancel(second.id),
      () => client.responses.delete(second.id),
    ];
    for (const call of refusals) {
      const error = await apiError(call);
      expect(error).toBeInstanceOf(OpenAI.InternalServerError);
      expect(error.status).toBe(503);
      // OpenAI's error shape: {"error": {"message", "type", "param", "code"}}.
      expect(error.error).toEqual({ message: expect.any(String), type: expect.any(String), param: null, code: 'response_store_unavailable' });
    }

    // The first run is answered while Redis is away: its answer cannot be stored yet.
    await waitFor(async () => (await failedToStore()) === 1 || undefined, { timeoutMs: 20_000, intervalMs: 50, what: 'the first run’s answer to fail to be stored' });
    expect(callsFor('First')).toEqual([expect.objectContaining({ outcome: 'completed' })]);
    expect((await fetch(`${gw.url}/health`)).status).toBe(200);
    gw.sim.configure({ latencyMs: 0 });

    redis = await RedisServer.start(redis.port, persistent());
    const back = await inspector();
    inspect = back;
    const ended = async (id: string) =>
      waitFor(
        async () => {
          const found = await client.responses.retrieve(id).catch(() => undefined);
          return found && !PENDING.includes(found.status ?? '') ? found : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 50, what: `response ${id} to end after the outage` },
      );
    for (const queued of [first, second]) {
      const done = await ended(queued.id);
      expect(done).toMatchObject({ id: queued.id, created_at: queued.created_at, status: 'completed', background: true, store: true });
      expect(done.output_text.length).toBeGreaterThan(0);
    }
    // The first ran once (its answer, held through the outage, was stored once Redis was back), the second once, the refused one never.
    expect(callsFor('First')).toHaveLength(1);
    expect(callsFor('Second')).toHaveLength(1);
    expect(callsFor('Third')).toEqual([]);
    expect(await failedToStore()).toBe(1);

    // Nothing is left pending, and nothing refused was kept.
    expect(await back.zrange(`${PREFIX}backgrounds:active`, '0', '-1')).toEqual([]);
    expect(await back.keys(`${PREFIX}background:*`)).toEqual([]);
    // Every connection the gateway had is back.
    await waitFor(async () => (await gatewayConnections(back)) >= connected || undefined, { timeoutMs: 10_000, intervalMs: 50, what: 'the gateway’s Redis connections to be back' });
  });
  it('ends a stream being read when Redis goes away with an error event saying where to read on from, and the client reads the rest once it is back', async () => {
    const client = gw.client();
    gw.sim.reset();
    // 200 tokens at 40 a second: streaming still when Redis goes.
    gw.sim.configure({ completionTokens: 200, tokensPerSecond: 40 });
    const stream = await client.responses.create({ model: 'gpt-4o-mini', input: 'Stream through the outage.', background: true, stream: true });
    let id = '';
    let seen = -1;
    let deltas = 0;
    let told: OpenAI.Responses.ResponseStreamEvent | undefined;
    const reading = (async () => {
      for await (const event of stream) {
        if (event.type === 'error') {
          told = event;
          continue;
        }
        if (event.type === 'response.created') id = event.response.id;
        if (event.type === 'response.output_text.delta') deltas++;
        seen = event.sequence_number;
      }
    })();
    await waitFor(() => deltas >= 3 || undefined, { timeoutMs: 10_000, intervalMs: 10, what: 'the first deltas' });
    await redis.stop();
    await reading;
    // Told with an error event, as a stream tells a failure, where to read on from: not ended as if the response had.
    expect(told).toMatchObject({ type: 'error', code: 'stream_interrupted', message: expect.stringContaining(`starting_after=${seen}`) });
    expect(seen).toBeGreaterThan(3);

    gw.sim.configure({ completionTokens: 5, tokensPerSecond: 0 });
    redis = await RedisServer.start(redis.port, persistent());
    // Back: the rest, from the event after the last one read, to the end.
    const rest = await waitFor(
      async () => {
        try {
          const events: Array<{ type: string; sequence_number: number }> = [];
          for await (const event of await client.responses.retrieve(id, { stream: true, starting_after: seen })) events.push({ type: event.type, sequence_number: event.sequence_number });
          return events.at(-1)?.type === 'response.completed' ? events : undefined;
        } catch {
          return undefined;
        }
      },
      { timeoutMs: 30_000, intervalMs: 100, what: 'the rest of the stream after the outage' },
    );
    expect(rest[0]?.sequence_number).toBe(seen + 1);
    expect(rest.map((event) => event.sequence_number)).toEqual(rest.map((_, i) => seen + 1 + i));
    expect((await client.responses.retrieve(id)).status).toBe('completed');
    // Either its run could not add its events while Redis was away: it stopped, and the response was
    // run again, whole, once Redis was back (a stream begun would start its output anew), ending the
    // stream with the whole answer; or the event being added as Redis went was sent again once it
    // was back (the connection retries a command in flight once), and the run streamed on to its end.
    const calls = callsFor('Stream through the outage').map((r) => [r.outcome, (r.body as { stream?: boolean }).stream === true]);
    if (calls.length === 2) {
      // The first streamed (cut, or read to its end by the gateway while its run waited on Redis), the second whole.
      expect(calls).toEqual([
        [expect.stringMatching(/^(aborted|completed)$/), true],
        ['completed', false],
      ]);
      // The rest is the whole answer's end, after any deltas the first run added as Redis went
      // (kept by Redis, but not yet read by the client when its stream was cut).
      const types = rest.map((event) => event.type);
      expect(types.at(-1)).toBe('response.completed');
      expect(types.slice(0, -1)).toEqual(types.slice(0, -1).map(() => 'response.output_text.delta'));
    } else {
      expect(calls).toEqual([['completed', true]]);
      expect(rest.filter((event) => event.type === 'response.output_text.delta').length).toBeGreaterThan(0);
    }
  });
});
