import { randomBytes } from 'node:crypto';
import OpenAI from 'openai';
import { hashApiKey } from '@openrouter/ingress';
import { apiError } from '../support/api-error';
import { queryRows } from '../support/infra/clickhouse';
import { sharedRedisUrl } from '../support/infra/shared-infra';
import { waitFor } from '../support/infra/wait-for';
import { startTestGateway, type TestGateway } from '../support/test-gateway';

/**
 * Background responses of the Responses API through the whole gateway with the official SDK
 * (docs/responses-api.md#background-responses): a request with `background: true` answered
 * `queued` at once, run by the replica as its key's own request (metered, tagged, stored under the
 * queued id), polled to its end, continued; cancelled while queued and while running; failed with
 * the error its run got, tried again while refused for a reason that passes; and every way one is
 * refused. Kept in this process and in the access store's Redis.
 */

const SECRET = 'background-responses-e2e-secret';
const SEARCH_KEY = 'sk-or-v1-bg-e2e-search-00000000000000000';
const ADS_KEY = 'sk-or-v1-bg-e2e-ads-0000000000000000000000';

const PENDING = ['queued', 'in_progress'];

function configure(redis: { url: string; keyPrefix: string } | undefined) {
  return (doc: Record<string, unknown>): void => {
    doc['access'] = {
      ...(doc['access'] as object),
      keyHashSecret: SECRET,
      ...(redis ? { redis } : {}),
      orgs: [
        { id: 'default', teams: [{ id: 'default', projects: [{ id: 'default' }] }] },
        { id: 'acme', teams: [{ id: 'platform', projects: [{ id: 'search' }, { id: 'ads' }] }] },
      ],
      keys: [
        { id: 'search-1', hash: hashApiKey(SECRET, SEARCH_KEY), prefix: 'sk-or-v1-bg-', org: 'acme', project: 'search' },
        { id: 'ads-1', hash: hashApiKey(SECRET, ADS_KEY), prefix: 'sk-or-v1-bg-', org: 'acme', project: 'ads' },
      ],
    };
    // One at a time, so that a second response stays queued behind a slow first one.
    doc['responses'] = { background: { concurrency: 1, pollMs: 50, maxAttempts: 4, leaseMs: 5_000 } };
  };
}

describe.each([
  ['in this process', false],
  ['in Redis', true],
])('background responses through the gateway, kept %s', (_, withRedis) => {
  let gw: TestGateway;
  let search: OpenAI;
  const keyPrefix = `background-e2e-${randomBytes(4).toString('hex')}:`;

  beforeAll(async () => {
    gw = await startTestGateway({ configure: configure(withRedis ? { url: sharedRedisUrl(), keyPrefix } : undefined) });
    search = gw.client({ apiKey: SEARCH_KEY });
  });
  afterAll(async () => gw?.close());
  beforeEach(() => gw.sim.reset());

  const chatCalls = (): number => gw.sim.requests().filter((r) => r.path === '/v1/chat/completions').length;

  /** Polls the response until it has left `queued` and `in_progress`, as an application does. */
  const ended = (id: string, client: OpenAI = search) =>
    waitFor(
      async () => {
        const response = await client.responses.retrieve(id);
        return PENDING.includes(response.status ?? '') ? undefined : response;
      },
      { timeoutMs: 30_000, intervalMs: 25, what: `response ${id} to end` },
    );

  it('answers queued at once, runs it as the key, and stores the answer under the same id, metered and tagged', async () => {
    const tag = `job-${randomBytes(4).toString('hex')}`;
    const queued = await search.responses.create({ model: 'gpt-4o-mini', instructions: 'Be brief.', input: 'Name a planet.', background: true, metadata: { job: tag } }, { headers: { 'x-openrouter-tags': `job=${tag}` } });
    expect(queued).toMatchObject({ object: 'response', status: 'queued', background: true, store: true, output: [], usage: null, model: 'gpt-4o-mini', instructions: 'Be brief.', metadata: { job: tag } });
    expect(queued.id).toMatch(/^resp_[0-9a-f]{48}$/);

    const done = await ended(queued.id);
    expect(done).toMatchObject({ id: queued.id, created_at: queued.created_at, status: 'completed', background: true, store: true, instructions: 'Be brief.', metadata: { job: tag } });
    expect(done.output_text.length).toBeGreaterThan(0);
    expect(done.usage?.input_tokens).toBeGreaterThan(0);
    expect(chatCalls()).toBe(1);
    // Its input items are those it was queued with.
    const items = await search.responses.inputItems.list(queued.id);
    expect(items.data).toEqual([expect.objectContaining({ type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Name a planet.' }] })]);

    // Metered when it ran, as the key that queued it, with the tags it was queued with.
    const rows = await waitFor(
      async () => {
        const found = await queryRows<{ key_id: string; status: string }>(
          gw.gateway.billing.usage.store,
          "SELECT key_id, status FROM {db:Identifier}.usage_events FINAL WHERE tags['job'] = {job:String}",
          { job: tag },
        );
        return found.length > 0 ? found : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200, what: 'the usage row of the background run' },
    );
    expect(rows).toEqual([{ key_id: 'search-1', status: 'ok' }]);

    // Continued as any stored response.
    const next = await search.responses.create({ model: 'gpt-4o-mini', previous_response_id: queued.id, input: 'And another?' });
    expect(next).toMatchObject({ status: 'completed', previous_response_id: queued.id });
    const sent = (gw.sim.requests().at(-1)?.body as { messages: Array<{ role: string; content: unknown }> }).messages;
    expect(sent.map((m) => m.role)).toEqual(['user', 'assistant', 'user']);

    // Another project's key does not find it.
    expect(await apiError(() => gw.client({ apiKey: ADS_KEY }).responses.retrieve(queued.id))).toMatchObject({ status: 404, code: 'response_not_found' });
  });

  it('shows a running response in_progress, refuses to continue or delete it until it ends, and cancels it: the provider call stops and it ends cancelled', async () => {
    gw.sim.configure({ latencyMs: 5_000 });
    const queued = await search.responses.create({ model: 'gpt-4o-mini', input: 'Take your time.', background: true });
    await waitFor(() => chatCalls() === 1 || undefined, { timeoutMs: 10_000, intervalMs: 10, what: 'the run to reach the provider' });
    expect((await search.responses.retrieve(queued.id)).status).toBe('in_progress');

    expect(await apiError(() => search.responses.create({ model: 'gpt-4o-mini', previous_response_id: queued.id, input: 'Next?' }))).toMatchObject({ status: 400, param: 'previous_response_id', code: 'previous_response_in_progress' });
    expect(await apiError(() => search.responses.delete(queued.id))).toMatchObject({ status: 409, code: 'response_in_progress' });

    const cancelled = await search.responses.cancel(queued.id);
    expect(cancelled).toMatchObject({ id: queued.id, status: 'cancelled', background: true });
    const done = await ended(queued.id);
    expect(done).toMatchObject({ id: queued.id, status: 'cancelled', output: [], usage: null });
    // Cancelling again answers it as it ended; it is not run again.
    expect((await search.responses.cancel(queued.id)).status).toBe('cancelled');
    expect(chatCalls()).toBe(1);
    // Now it can be deleted.
    await search.responses.delete(queued.id);
    expect(await apiError(() => search.responses.retrieve(queued.id))).toMatchObject({ status: 404 });
  });

  it('cancels a queued response before it runs: it never reaches a provider', async () => {
    // The first run's answer would come long after the checks below; it is cancelled once they are made.
    gw.sim.configure({ latencyMs: 8_000 });
    const first = await search.responses.create({ model: 'gpt-4o-mini', input: 'First.', background: true });
    await waitFor(() => chatCalls() === 1 || undefined, { timeoutMs: 10_000, intervalMs: 10, what: 'the first run to reach the provider' });
    // The replica runs one at a time: the second waits.
    const second = await search.responses.create({ model: 'gpt-4o-mini', input: 'Second.', background: true });
    expect((await search.responses.retrieve(second.id)).status).toBe('queued');
    // The queue, as operators watch it: two pending, the oldest waiting since the first was queued.
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    expect(Number(/^openrouter_background_responses_pending(?:\{[^}]*\})? (\d+)$/m.exec(metrics)?.[1])).toBe(2);
    expect(Number(/^openrouter_background_responses_oldest_pending_seconds(?:\{[^}]*\})? ([\d.e-]+)$/m.exec(metrics)?.[1])).toBeGreaterThan(0);
    expect((await search.responses.cancel(second.id)).status).toBe('cancelled');
    // The replica's slot comes free: the second, cancelled, is not run in it.
    expect((await search.responses.cancel(first.id)).status).toBe('cancelled');
    expect((await ended(first.id)).status).toBe('cancelled');
    expect((await ended(second.id)).status).toBe('cancelled');
    expect(chatCalls()).toBe(1);
  });

  it('tries a run again while it is refused for a reason that passes, and fails a response with the error its run got', async () => {
    // The first two provider calls fail with 503 (no fallback in this catalog), then it answers.
    gw.sim.configure({ faults: [{ kind: 'http_error', status: 503, path: 'chat', remaining: 2 }] });
    const retried = await search.responses.create({ model: 'gpt-4o-mini', input: 'Retry me.', background: true });
    expect((await ended(retried.id)).status).toBe('completed');
    expect(chatCalls()).toBe(3);

    gw.sim.reset();
    gw.sim.configure({ faults: [{ kind: 'http_error', status: 400, path: 'chat' }] });
    const failing = await search.responses.create({ model: 'gpt-4o-mini', input: 'Refuse me.', background: true });
    const failed = await ended(failing.id);
    expect(failed).toMatchObject({ id: failing.id, status: 'failed', background: true, output: [], error: { code: expect.any(String), message: expect.any(String) } });
    // A refusal that does not pass is not tried again.
    expect(chatCalls()).toBe(1);
  });

  it('streams a background response from its creation to its end; any client reads the stream again, whole or after an event, from the SDK', async () => {
    gw.sim.configure({ completionTokens: 12, tokensPerSecond: 60 });
    const stream = search.responses.stream({ model: 'gpt-4o-mini', input: 'Stream it in the background.', background: true, metadata: { run: 'streamed' } });
    const events: Array<{ type: string; sequence_number: number }> = [];
    stream.on('event', (event) => events.push({ type: event.type, sequence_number: event.sequence_number }));
    let created: OpenAI.Responses.Response | undefined;
    stream.on('response.created', (event) => (created = event.response));
    const final = await stream.finalResponse();

    // Created and queued at once, then the run's own events, numbered on without a gap.
    expect(created).toMatchObject({ status: 'queued', background: true, store: true, output: [], metadata: { run: 'streamed' } });
    expect(events.slice(0, 3).map((event) => event.type)).toEqual(['response.created', 'response.queued', 'response.in_progress']);
    expect(events.filter((event) => event.type === 'response.output_text.delta').length).toBeGreaterThan(1);
    expect(events.at(-1)?.type).toBe('response.completed');
    expect(events.map((event) => event.sequence_number)).toEqual(events.map((_, i) => i));
    expect(final).toMatchObject({ id: created?.id, created_at: created?.created_at, status: 'completed', background: true, store: true, metadata: { run: 'streamed' } });
    expect(final.output_text.length).toBeGreaterThan(0);
    expect(chatCalls()).toBe(1);
    // Stored as it ended.
    const stored = await search.responses.retrieve(final.id);
    expect(stored).toMatchObject({ id: final.id, status: 'completed', output_text: final.output_text });

    // Read again from its start: the same events, in the same order.
    const replay: Array<{ type: string; sequence_number: number }> = [];
    for await (const event of await search.responses.retrieve(final.id, { stream: true })) replay.push({ type: event.type, sequence_number: event.sequence_number });
    expect(replay).toEqual(events);
    // After event 4: the rest.
    const rest: number[] = [];
    for await (const event of await search.responses.retrieve(final.id, { stream: true, starting_after: 4 })) rest.push(event.sequence_number);
    expect(rest).toEqual(events.slice(5).map((event) => event.sequence_number));
    // After its end event, or past it: nothing, the stream ending at once.
    for (const startingAfter of [events.length - 1, 1_000_000]) {
      const none: string[] = [];
      for await (const event of await search.responses.retrieve(final.id, { stream: true, starting_after: startingAfter })) none.push(event.type);
      expect(none).toEqual([]);
    }
    // The SDK's own resumption (it reads from the start, and hands on the events after the one given).
    const resumed = search.responses.stream({ response_id: final.id, starting_after: 4 });
    const handed: number[] = [];
    resumed.on('event', (event) => handed.push(event.sequence_number));
    expect((await resumed.finalResponse()).output_text).toBe(final.output_text);
    expect(handed).toEqual(rest);
    // Nothing was run again.
    expect(chatCalls()).toBe(1);
  });

  it('runs on when its client leaves mid-stream: the client reads on after the last event it saw, and gets the whole answer', async () => {
    gw.sim.configure({ completionTokens: 40, tokensPerSecond: 40 });
    const first = await search.responses.create({ model: 'gpt-4o-mini', input: 'A long one.', background: true, stream: true });
    let id = '';
    let seen = -1;
    let text = '';
    for await (const event of first) {
      if (event.type === 'response.created') id = event.response.id;
      seen = event.sequence_number;
      if (event.type === 'response.output_text.delta') {
        text += event.delta;
        // Leaves after the first word.
        break;
      }
    }
    expect(id).toMatch(/^resp_/);
    const types: string[] = [];
    let firstNumber: number | undefined;
    for await (const event of await search.responses.retrieve(id, { stream: true, starting_after: seen })) {
      firstNumber ??= event.sequence_number;
      types.push(event.type);
      if (event.type === 'response.output_text.delta') text += event.delta;
    }
    expect(firstNumber).toBe(seen + 1);
    expect(types.at(-1)).toBe('response.completed');
    const done = await search.responses.retrieve(id);
    expect(done.status).toBe('completed');
    expect(text).toBe(done.output_text);
    expect(chatCalls()).toBe(1);
  });

  it('ends the stream of a response cancelled mid-stream with response.failed, its status cancelled; and of a response that fails, with its error', async () => {
    gw.sim.configure({ completionTokens: 400, tokensPerSecond: 40 });
    const stream = await search.responses.create({ model: 'gpt-4o-mini', input: 'Go on and on.', background: true, stream: true });
    let id = '';
    let cancelled = false;
    const types: string[] = [];
    let last: OpenAI.Responses.ResponseStreamEvent | undefined;
    for await (const event of stream) {
      types.push(event.type);
      last = event;
      if (event.type === 'response.created') id = event.response.id;
      if (event.type === 'response.output_text.delta' && !cancelled) {
        cancelled = true;
        expect((await search.responses.cancel(id)).status).toBe('cancelled');
      }
    }
    expect(last).toMatchObject({ type: 'response.failed', response: { id, status: 'cancelled', background: true } });
    expect(types.filter((type) => type === 'response.output_text.delta').length).toBeLessThan(400);
    expect(await ended(id)).toMatchObject({ id, status: 'cancelled' });
    // Read again, it ends the same way.
    const again: string[] = [];
    for await (const event of await search.responses.retrieve(id, { stream: true })) again.push(event.type);
    expect(again).toEqual(types);

    gw.sim.reset();
    gw.sim.configure({ faults: [{ kind: 'http_error', status: 400, path: 'chat' }] });
    const failing = search.responses.stream({ model: 'gpt-4o-mini', input: 'Refuse me.', background: true });
    const failedTypes: string[] = [];
    failing.on('event', (event) => failedTypes.push(event.type));
    let failedId = '';
    failing.on('response.created', (event) => (failedId = event.response.id));
    const failedEnd = await failing.finalResponse();
    expect(failedTypes).toEqual(['response.created', 'response.queued', 'response.failed']);
    expect(failedEnd).toMatchObject({ id: failedId, status: 'failed', error: { code: expect.any(String), message: expect.any(String) } });
    expect(await ended(failedId)).toMatchObject({ status: 'failed', error: failedEnd.error });
  });

  it('refuses to stream what has no stream, in OpenAI’s error shape', async () => {
    const whole = await search.responses.create({ model: 'gpt-4o-mini', input: 'Not streamed.', background: true });
    await ended(whole.id);
    expect(await apiError(() => search.responses.retrieve(whole.id, { stream: true }))).toMatchObject({ status: 400, param: 'stream', code: 'response_not_streamable' });
    const plain = await search.responses.create({ model: 'gpt-4o-mini', input: 'Plain.' });
    expect(await apiError(() => search.responses.retrieve(plain.id, { stream: true }))).toMatchObject({ status: 400, param: 'stream', code: 'response_not_streamable' });
    expect(await apiError(() => search.responses.retrieve('resp_unknown', { stream: true }))).toMatchObject({ status: 404, code: 'response_not_found' });
    // Another project's streamed response is not found.
    const streamed = await search.responses.stream({ model: 'gpt-4o-mini', input: 'Mine.', background: true }).finalResponse();
    expect(await apiError(() => gw.client({ apiKey: ADS_KEY }).responses.retrieve(streamed.id, { stream: true }))).toMatchObject({ status: 404, code: 'response_not_found' });
    expect(await apiError(() => search.responses.retrieve(streamed.id, { stream: true, starting_after: -3 }))).toMatchObject({ status: 400, param: 'starting_after' });
    // Written out as a whole number: an empty value is no 0.
    for (const value of ['', '1.5', 'abc', '0x10']) {
      const refused = await fetch(`${gw.url}/v1/responses/${streamed.id}?stream=true&starting_after=${value}`, { headers: { authorization: `Bearer ${SEARCH_KEY}` } });
      expect([refused.status, ((await refused.json()) as { error: { param: string } }).error.param]).toEqual([400, 'starting_after']);
    }
  });

  it('refuses what it cannot queue, in OpenAI’s error shape, before anything is stored', async () => {
    expect(await apiError(() => search.responses.create({ model: 'gpt-4o-mini', input: 'x', background: true, store: false }))).toMatchObject({ status: 400, param: 'background', code: 'invalid_value' });
    expect(await apiError(() => search.responses.create({ model: 'no-such-model', input: 'x', background: true }))).toMatchObject({ status: 404, param: 'model', code: 'model_not_found' });
    expect(await apiError(() => search.responses.create({ model: 'gpt-4o-mini', input: 'x', background: true, previous_response_id: 'resp_unknown' }))).toMatchObject({ status: 404, param: 'previous_response_id' });
    expect(await apiError(() => search.responses.create({ model: 'gpt-4o-mini', input: 'x', background: true, temperature: 7 }))).toMatchObject({ status: 400, param: 'temperature' });
    // A response that was not created in the background cannot be cancelled.
    const plain = await search.responses.create({ model: 'gpt-4o-mini', input: 'Plain.' });
    expect(await apiError(() => search.responses.cancel(plain.id))).toMatchObject({ status: 400, code: 'response_not_cancellable' });
    expect(await apiError(() => search.responses.cancel('resp_unknown'))).toMatchObject({ status: 404 });
    expect(chatCalls()).toBe(1);
  });
});
