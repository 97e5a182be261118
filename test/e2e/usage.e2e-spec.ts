import { estimatedTokens, Money, moneyText } from '@openrouter/usage';
import { queryRows } from '../support/infra/clickhouse';
import { sharedKafkaBrokers } from '../support/infra/shared-infra';
import { waitFor } from '../support/infra/wait-for';
import { startTestGateway, type TestGateway } from '../support/test-gateway';
import { usageTestConfig } from '../support/usage-fixtures';
import { usageRowsOf } from '../support/usage-rows';

interface Row {
  event_id: string;
  request_id: string;
  cost: string;
  status: string;
  operation: string;
  stream: boolean;
  prompt_tokens: number;
  completion_tokens: number;
  org_id: string;
  served_model: string;
  price_version: string;
}

async function rows(gw: TestGateway): Promise<Row[]> {
  return queryRows<Row>(
    gw.gateway.billing.usage.store,
    'SELECT event_id, request_id, toString(cost) AS cost, status, operation, stream, prompt_tokens, completion_tokens, org_id, served_model, price_version FROM {db:Identifier}.usage_events FINAL',
  );
}

async function inBatches<T>(count: number, concurrency: number, run: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < count; i += concurrency) out.push(...(await Promise.all(Array.from({ length: Math.min(concurrency, count - i) }, (_, j) => run(i + j)))));
  return out;
}

describe.each([
  ['Kafka and ClickHouse (chDB)', 'kafka'],
  ['the in-process bus and chDB (default embedded mode)', 'in-process'],
] as const)('usage metering end to end through %s', (_name, bus) => {
  let gw: TestGateway;

  beforeAll(async () => {
    const usage = usageTestConfig({ brokers: sharedKafkaBrokers() }).usage;
    gw = await startTestGateway({
      configure: (document) => {
        document['usage'] = bus === 'kafka' ? usage : { clickhouse: usage.clickhouse };
      },
    });
  }, 120_000);

  afterAll(async () => {
    await gw?.close();
  });

  it('records one priced row per request and tells the client the same cost', async () => {
    const client = gw.client();
    const nonStream = await inBatches(bus === 'kafka' ? 300 : 100, 20, async (i) => {
      const { data, response } = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `Say something about ${i}` }] }).withResponse();
      const header = response.headers.get('x-openrouter-cost') ?? '';
      const usage = data.usage as (typeof data.usage & { cost?: number }) | undefined;
      return { id: response.headers.get('x-request-id') ?? '', header, cost: usage?.cost };
    });
    for (const r of nonStream) {
      expect(r.header).toMatch(/^\d+(\.\d+)?$/);
      expect(Number(r.header)).toBeGreaterThan(0);
      expect(r.cost).toBe(Number(r.header));
    }

    const streamed = await inBatches(30, 10, async (i) => {
      const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: `Stream ${i}` }] });
      let cost: number | undefined;
      for await (const chunk of stream) {
        const usage = chunk.usage as (typeof chunk.usage & { cost?: number }) | null | undefined;
        if (usage) cost = usage.cost;
      }
      return cost;
    });
    for (const cost of streamed) expect(cost).toBeGreaterThan(0);

    const embeddings = await inBatches(10, 10, async (i) => {
      const { response } = await client.embeddings.create({ model: 'text-embedding-3-small', input: `text ${i}` }).withResponse();
      return response.headers.get('x-openrouter-cost');
    });
    for (const cost of embeddings) expect(cost).toMatch(/^\d+(\.\d+)?$/);

    const failures = await inBatches(5, 5, async () => client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }).then(() => 'answered', (error: { status?: number }) => error.status));
    expect(failures).toEqual([404, 404, 404, 404, 404]);

    const total = nonStream.length + streamed.length + embeddings.length + failures.length;
    await waitFor(async () => (await rows(gw)).length === total, { timeoutMs: 60_000, intervalMs: 200, what: `${total} usage rows` });
    const stored = await rows(gw);
    expect(new Set(stored.map((r) => r.event_id)).size).toBe(total);
    const byId = new Map(stored.map((r) => [r.request_id, r]));
    for (const r of nonStream) expect(moneyText(new Money(byId.get(r.id)?.cost ?? '-1'))).toBe(r.header);
    const expectedChat = nonStream.reduce((sum, r) => sum.plus(r.header), new Money(0));
    const storedChat = stored.filter((r) => r.operation === 'chat' && !r.stream && r.status === 'ok').reduce((sum, r) => sum.plus(r.cost), new Money(0));
    expect(moneyText(storedChat)).toBe(moneyText(expectedChat));
    expect(stored.filter((r) => r.stream)).toHaveLength(streamed.length);
    expect(stored.filter((r) => r.operation === 'embedding')).toHaveLength(embeddings.length);
    const errors = stored.filter((r) => r.status === 'error');
    expect(errors).toHaveLength(failures.length);
    for (const e of errors) expect(moneyText(new Money(e.cost))).toBe('0');
    for (const r of stored.filter((x) => x.status === 'ok')) {
      expect(r.org_id).toBe('default');
      expect(r.price_version).toMatch(/@base#/);
      expect(r.prompt_tokens).toBeGreaterThan(0);
    }
  }, 240_000);

  it('records every request once even when clients reuse a request id, keeping the id beside a unique event id', async () => {
    const before = (await rows(gw)).length;
    const client = gw.client();
    const costs: string[] = [];
    // Several calls under one trace id, as agent frameworks send them, then one without an id.
    for (let i = 0; i < 3; i++) {
      const { response } = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `question number ${i}` }] }, { headers: { 'x-request-id': 'trace-abc-123' } }).withResponse();
      expect(response.headers.get('x-request-id')).toBe('trace-abc-123');
      costs.push(response.headers.get('x-openrouter-cost') ?? 'missing');
    }
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'no id' }] });
    await waitFor(async () => (await rows(gw)).length === before + 4, { timeoutMs: 60_000, intervalMs: 200, what: 'four more usage rows' });
    const shared = (await rows(gw)).filter((r) => r.request_id === 'trace-abc-123');
    expect(shared).toHaveLength(3);
    expect(new Set(shared.map((r) => r.event_id)).size).toBe(3);
    for (const r of shared) expect(r.event_id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-/);
    expect(shared.map((r) => moneyText(new Money(r.cost))).sort()).toEqual([...costs].sort());
    expect(gw.gateway.billing.usage.stats().duplicates).toBe(0);
  }, 120_000);

  it('stores the row of a request whose end user is a lone surrogate, and of the requests after it', async () => {
    const client = gw.client();
    // An emoji cut in half: valid JSON, but no valid Unicode. ClickHouse refuses it in a JSON row.
    const broken = `team-a-${'\ud83d'}`;
    await client.chat.completions.create({ model: 'gpt-4o-mini', user: broken, messages: [{ role: 'user', content: 'half an emoji' }] }, { headers: { 'x-request-id': `lone-surrogate-${bus}` } });
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'next one' }] }, { headers: { 'x-request-id': `after-lone-surrogate-${bus}` } });
    const [row] = await usageRowsOf<{ end_user: string; status: string }>(gw, 'end_user, status', `lone-surrogate-${bus}`);
    expect(row).toEqual({ end_user: 'team-a-\ufffd', status: 'ok' });
    expect(await usageRowsOf<{ status: string }>(gw, 'status', `after-lone-surrogate-${bus}`)).toEqual([{ status: 'ok' }]);
  }, 120_000);
});

/** A gateway whose provider calls are ended by the gateway or the client only, never by their own timeout. */
function startWithoutProviderTimeout(): Promise<TestGateway> {
  return startTestGateway({
    configure: (document) => {
      const providers = document['providers'] as Record<string, Record<string, unknown>>;
      providers['simulated'] = { ...providers['simulated'], timeoutMs: 120_000 };
    },
  });
}

describe('an answer whose provider reports no usage', () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startTestGateway();
  }, 120_000);
  afterAll(async () => gw?.close());

  it('is billed its output estimated from its text, and the chat completion and the Responses API report what is billed', async () => {
    gw.sim.configure({ omitUsage: true });
    const client = gw.client();
    const chat = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Answer me without usage' }] }, { headers: { 'x-request-id': 'no-usage-chat' } }).withResponse();
    const response = await client.responses.create({ model: 'gpt-4o-mini', input: 'Answer me without usage too' }, { headers: { 'x-request-id': 'no-usage-responses' } }).withResponse();
    type Billed = { prompt_tokens: number; completion_tokens: number; estimated: boolean; cost: string };
    const columns = 'prompt_tokens, completion_tokens, tokens_estimated AS estimated, toString(cost) AS cost';
    const [chatRow] = await usageRowsOf<Billed>(gw, columns, 'no-usage-chat');
    const [responsesRow] = await usageRowsOf<Billed>(gw, columns, 'no-usage-responses');
    // The answer's text, estimated as a long prompt's is.
    expect(chatRow).toMatchObject({ estimated: true, completion_tokens: estimatedTokens(chat.data.choices[0]?.message.content ?? '') });
    expect(chatRow?.completion_tokens).toBeGreaterThan(0);
    expect(chat.data.usage).toMatchObject({ prompt_tokens: chatRow?.prompt_tokens, completion_tokens: chatRow?.completion_tokens });
    expect(Number(chatRow?.cost)).toBe(Number(chat.response.headers.get('x-openrouter-cost')));
    expect(responsesRow?.completion_tokens).toBeGreaterThan(0);
    expect(response.data.usage).toMatchObject({ input_tokens: responsesRow?.prompt_tokens, output_tokens: responsesRow?.completion_tokens });
  });
});

describe('legacy completions with several prompts', () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startWithoutProviderTimeout();
  }, 120_000);
  afterAll(async () => gw?.close());

  it('stops the other prompts at the provider when one fails', async () => {
    gw.sim.configure({ faults: [{ kind: 'http_error', status: 500, remaining: 1 }, { kind: 'timeout' }] });
    try {
      const error = await gw.client().completions.create({ model: 'gpt-4o-mini', prompt: ['one', 'two', 'three'], max_tokens: 5 }).then(
        () => undefined,
        (e: { status?: number }) => e,
      );
      expect(error?.status).toBe(502);
      const calls = await waitFor(() => {
        const seen = gw.sim.requests();
        return seen.length === 3 && seen.every((r) => r.outcome !== 'pending') ? seen : undefined;
      }, { timeoutMs: 10_000, what: 'every prompt call ended' });
      expect(calls.map((c) => c.outcome).sort()).toEqual(['aborted', 'aborted', 'error']);
    } finally {
      gw.sim.configure({ faults: [] });
    }
  });

  it('streams every prompt under the first answer’s id and creation time, the usage chunk too', async () => {
    const stream = await gw.client().completions.create({ model: 'gpt-4o-mini', prompt: ['one', 'two', 'three'], max_tokens: 5, stream: true, stream_options: { include_usage: true } });
    const chunks: Array<{ id: string; created: number; usage?: unknown; choices: Array<{ index: number }> }> = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(new Set(chunks.flatMap((c) => c.choices.map((ch) => ch.index)))).toEqual(new Set([0, 1, 2]));
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
    expect(chunks[0]?.id).toMatch(/^cmpl-/);
    expect(new Set(chunks.map((c) => c.created)).size).toBe(1);
    expect(chunks.at(-1)?.usage).toBeTruthy();
  });

  it('records the serving attempt’s latency as the provider’s time to its first answer event, not the whole stream', async () => {
    gw.sim.configure({ tokensPerSecond: 20 });
    try {
      const { data: stream, response } = await gw.client().chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Tell a long story' }], max_tokens: 20, stream: true }).withResponse();
      for await (const chunk of stream) void chunk;
      const requestId = response.headers.get('x-request-id') ?? '';
      const [row] = await usageRowsOf<{ latency_ms: number; ttft_ms: number; attempt_latency: number }>(gw, 'latency_ms, ttft_ms, attempts.latency_ms[-1] AS attempt_latency', requestId);
      // 20 tokens at 20 a second: the whole request takes about a second, its first event comes at once.
      expect(row?.latency_ms).toBeGreaterThanOrEqual(700);
      expect(row?.attempt_latency).toBeLessThanOrEqual(row?.ttft_ms ?? 0);
    } finally {
      gw.sim.configure({ tokensPerSecond: 0 });
    }
  });
});

describe('a request the client abandons while the provider works on it, before any answer', () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startWithoutProviderTimeout();
  }, 120_000);
  afterAll(async () => gw?.close());

  it.each([
    ['whole', false],
    ['streamed', true],
  ] as const)('is charged the prompt, estimated, at the price of the deployment it was with (%s)', async (_name, stream) => {
    gw.sim.configure({ faults: [{ kind: 'timeout' }] });
    try {
      const requestId = `abandoned-${_name}`;
      const before = gw.sim.requests().length;
      const client = new AbortController();
      const call = gw.client().chat.completions.create(
        { model: 'gpt-4o-mini', stream, messages: [{ role: 'user', content: 'A long question whose answer nobody waits for in the end' }] },
        { signal: client.signal, headers: { 'x-request-id': requestId } },
      );
      await waitFor(() => (gw.sim.requests().length > before ? true : undefined), { timeoutMs: 10_000, what: 'the provider call' });
      client.abort();
      await expect(call).rejects.toThrow();
      const [row] = await usageRowsOf<{ status: string; cancelled: boolean; served_model: string; provider: string; deployment: string; prompt_tokens: number; completion_tokens: number; tokens_estimated: boolean; cost: string; attempt_status: string }>(gw, 'status, cancelled, served_model, provider, deployment, prompt_tokens, completion_tokens, tokens_estimated, toString(cost) AS cost, attempts.status[-1] AS attempt_status', requestId);
      expect(row).toMatchObject({ status: 'cancelled', cancelled: true, served_model: 'gpt-4o-mini', provider: 'simulated', deployment: 'sim-mini', completion_tokens: 0, tokens_estimated: true, attempt_status: 'cancelled' });
      expect(row?.prompt_tokens).toBeGreaterThan(0);
      // gpt-4o-mini's input price: 0.15 per million tokens.
      expect(moneyText(new Money(row?.cost ?? '-1'))).toBe(moneyText(new Money(row?.prompt_tokens ?? 0).times('0.15').div(1_000_000)));
      // The provider call was stopped, not left to run.
      await waitFor(() => (gw.sim.requests().at(-1)?.outcome === 'aborted' ? true : undefined), { timeoutMs: 10_000, what: 'the provider call aborted' });
    } finally {
      gw.sim.configure({ faults: [] });
    }
  });

  it('lets an abandoned embeddings call finish and records what the provider reported, as cancelled', async () => {
    // The client must leave before the answer comes, even after a stall of seconds on a loaded
    // machine (the call then runs on to its answer: the test waits this out).
    gw.sim.configure({ latencyMs: 5_000 });
    try {
      const requestId = 'abandoned-embedding';
      const before = gw.sim.requests().length;
      const client = new AbortController();
      const call = gw.client().embeddings.create({ model: 'text-embedding-3-small', input: ['an input nobody waits for', 'and a second one'] }, { signal: client.signal, headers: { 'x-request-id': requestId } });
      await waitFor(() => (gw.sim.requests().length > before ? true : undefined), { timeoutMs: 10_000, what: 'the provider call' });
      client.abort();
      await expect(call).rejects.toThrow();
      // The provider call is not stopped: the provider bills the input it began on.
      const served = await waitFor(() => {
        const request = gw.sim.requests()[before];
        return request && request.outcome !== 'pending' ? request : undefined;
      }, { timeoutMs: 30_000, what: 'the provider call to end' });
      expect(served.outcome).toBe('completed');
      const [row] = await usageRowsOf<{ status: string; cancelled: boolean; operation: string; served_model: string; provider: string; prompt_tokens: number; tokens_estimated: boolean; cost: string; http_status: number; attempt_status: string }>(gw, 'status, cancelled, operation, served_model, provider, prompt_tokens, tokens_estimated, toString(cost) AS cost, http_status, attempts.status[-1] AS attempt_status', requestId);
      // The provider's own count, not an estimate.
      expect(row).toMatchObject({ status: 'cancelled', cancelled: true, operation: 'embedding', served_model: 'text-embedding-3-small', provider: 'simulated', tokens_estimated: false, http_status: 499, attempt_status: 'ok' });
      expect(row?.prompt_tokens).toBeGreaterThan(0);
      // text-embedding-3-small's input price: 0.02 per million tokens.
      expect(moneyText(new Money(row?.cost ?? '-1'))).toBe(moneyText(new Money(row?.prompt_tokens ?? 0).times('0.02').div(1_000_000)));
    } finally {
      gw.sim.configure({ latencyMs: 0 });
    }
  });

  it('charges a legacy completion of several prompts abandoned during its calls once, every prompt counted', async () => {
    gw.sim.configure({ faults: [{ kind: 'timeout' }] });
    try {
      const requestId = 'abandoned-legacy';
      const before = gw.sim.requests().length;
      const client = new AbortController();
      const prompts = ['the first prompt of three', 'the second prompt of three', 'the third prompt of three'];
      const call = gw.client().completions.create({ model: 'gpt-4o-mini', prompt: prompts, max_tokens: 5 }, { signal: client.signal, headers: { 'x-request-id': requestId } });
      await waitFor(() => (gw.sim.requests().length >= before + 3 ? true : undefined), { timeoutMs: 10_000, what: 'the three provider calls' });
      client.abort();
      await expect(call).rejects.toThrow();
      const rows = await usageRowsOf<{ status: string; operation: string; deployment: string; prompt_tokens: number; completion_tokens: number; tokens_estimated: boolean; cost: string }>(gw, 'status, operation, deployment, prompt_tokens, completion_tokens, tokens_estimated, toString(cost) AS cost', requestId);
      expect(rows).toHaveLength(1);
      const [row] = rows;
      expect(row).toMatchObject({ status: 'cancelled', operation: 'completion', deployment: 'sim-mini', completion_tokens: 0, tokens_estimated: true });
      // Every prompt's tokens: more than the longest prompt alone could have.
      expect(row?.prompt_tokens).toBeGreaterThanOrEqual(3 * 5);
      expect(moneyText(new Money(row?.cost ?? '-1'))).toBe(moneyText(new Money(row?.prompt_tokens ?? 0).times('0.15').div(1_000_000)));
      await waitFor(() => (gw.sim.requests().slice(before).every((r) => r.outcome === 'aborted') ? true : undefined), { timeoutMs: 10_000, what: 'every provider call aborted' });
    } finally {
      gw.sim.configure({ faults: [] });
    }
  });
});
