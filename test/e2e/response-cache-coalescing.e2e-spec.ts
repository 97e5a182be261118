import { randomBytes } from 'node:crypto';
import OpenAI from 'openai';
import { queryRows } from '../support/infra/clickhouse';
import { sharedRedisUrl } from '../support/infra/shared-infra';
import { waitFor } from '../support/infra/wait-for';
import { startTestGateway, type TestGateway } from '../support/test-gateway';

interface Row {
  request_id: string;
  cache_hit: boolean;
  cost: string;
  status: string;
}

/** Identical requests sent together: how many of them (one leads, the others wait for its answer). */
const N = 5;
const use = { 'x-openrouter-cache': 'use' };

describe('identical cacheable requests arriving together (coalesced misses), through the official openai SDK', () => {
  let gw: TestGateway;
  let client: OpenAI;
  const prefix = `cache-coalesce-e2e-${randomBytes(4).toString('hex')}:`;

  beforeAll(async () => {
    gw = await startTestGateway({
      configure: (doc) => {
        // Entries in the shared Redis, as every replica of a deployment keeps them.
        doc['access'] = { ...(doc['access'] as object), redis: { url: sharedRedisUrl(), keyPrefix: prefix } };
        doc['cache'] = { enabled: true, defaultTtlSeconds: 60 };
        // An A/B experiment on the alias `trial`: its answers are never stored.
        doc['routing'] = {
          ...(doc['routing'] as Record<string, unknown>),
          aliases: { trial: { models: ['gpt-4o-mini'] } },
          experiments: [{ id: 'trial-split', target: 'trial', stickiness: 'key', arms: [{ name: 'a', model: 'gpt-4o-mini', weight: 1 }, { name: 'b', model: 'gpt-4o-mini', weight: 1 }] }],
        };
      },
    });
    client = gw.client();
  }, 120_000);
  afterAll(async () => gw?.close());
  beforeEach(() => {
    gw.sim.reset();
    // Long enough for every request sent together to arrive while the first one's provider call is still out.
    gw.sim.configure({ latencyMs: 1_500 });
  });

  const upstreamChats = (): number => gw.sim.requests().filter((r) => r.path.endsWith('/chat/completions')).length;
  const requestIds = (name: string): string[] => Array.from({ length: N }, (_, i) => `${name}-${i}-${randomBytes(3).toString('hex')}`);

  async function waiting(): Promise<number> {
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    return Number(/^openrouter_cache_waiting(?:\{[^}]*\})? (\d+)$/m.exec(metrics)?.[1] ?? Number.NaN);
  }

  /** The usage rows of the requests sent with these ids, once every one is stored. */
  function rowsOf(ids: string[]): Promise<Map<string, Row>> {
    return waitFor(
      async () => {
        const rows = await queryRows<Row>(
          gw.gateway.billing.usage.store,
          `SELECT request_id, cache_hit, toString(cost) AS cost, status FROM {db:Identifier}.usage_events FINAL WHERE has({ids:Array(String)}, request_id)`,
          { ids },
        );
        return rows.length === ids.length ? new Map(rows.map((r) => [r.request_id, r])) : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200, what: `the usage rows of ${ids.join(', ')}` },
    );
  }

  it('calls the provider once: one request is billed, the others are answered from its stored answer as hits', async () => {
    const body = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: `Name a prime between 10 and 20 (${randomBytes(4).toString('hex')}).` }] };
    const ids = requestIds('together');
    const answers = await Promise.all(ids.map((id) => client.chat.completions.create(body, { headers: { ...use, 'x-request-id': id } }).withResponse()));

    expect(upstreamChats()).toBe(1);
    const contents = new Set(answers.map((a) => a.data.choices[0]?.message.content));
    expect(contents.size).toBe(1);
    expect([...contents][0]?.length).toBeGreaterThan(0);
    // Each an answer of its own, as any hit is.
    expect(new Set(answers.map((a) => a.data.id)).size).toBe(N);

    const misses = answers.filter((a) => a.response.headers.get('x-openrouter-cache') === 'miss');
    const hits = answers.filter((a) => a.response.headers.get('x-openrouter-cache') === 'hit');
    expect(misses).toHaveLength(1);
    expect(hits).toHaveLength(N - 1);
    const billed = misses[0]?.response.headers.get('x-openrouter-cost') ?? '';
    expect(Number(billed)).toBeGreaterThan(0);
    for (const hit of hits) {
      expect(hit.response.headers.get('x-openrouter-cost')).toBe('0');
      expect(hit.data.usage).toMatchObject({ cost: 0, prompt_tokens: misses[0]?.data.usage?.prompt_tokens, completion_tokens: misses[0]?.data.usage?.completion_tokens });
      for (const name of ['x-openrouter-model', 'x-openrouter-provider', 'x-openrouter-deployment']) expect(hit.response.headers.get(name)).toBe(misses[0]?.response.headers.get(name));
    }

    const rows = [...(await rowsOf(ids)).values()];
    expect(rows.filter((r) => !r.cache_hit)).toEqual([expect.objectContaining({ cost: billed, status: 'ok' })]);
    expect(rows.filter((r) => r.cache_hit)).toHaveLength(N - 1);
    for (const row of rows.filter((r) => r.cache_hit)) expect(row).toMatchObject({ cost: '0', status: 'ok' });
  });

  it('answers streamed requests that waited with a streamed hit of the stored answer', async () => {
    const body = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: `Count to four (${randomBytes(4).toString('hex')}).` }] };
    const ids = requestIds('streamed');
    const answers = await Promise.all(
      ids.map(async (id) => {
        const { data, response } = await client.chat.completions.create({ ...body, stream: true, stream_options: { include_usage: true } }, { headers: { ...use, 'x-request-id': id } }).withResponse();
        let text = '';
        let cost: unknown;
        for await (const chunk of data) {
          text += chunk.choices[0]?.delta.content ?? '';
          if (chunk.usage) cost = (chunk.usage as { cost?: unknown }).cost;
        }
        return { cache: response.headers.get('x-openrouter-cache'), text, cost };
      }),
    );
    expect(upstreamChats()).toBe(1);
    expect(new Set(answers.map((a) => a.text)).size).toBe(1);
    expect(answers[0]?.text.length).toBeGreaterThan(0);
    expect(answers.filter((a) => a.cache === 'miss')).toHaveLength(1);
    const hits = answers.filter((a) => a.cache === 'hit');
    expect(hits).toHaveLength(N - 1);
    for (const hit of hits) expect(hit.cost).toBe(0);
  });

  it('lets the waiters call the provider themselves when the first request fails', async () => {
    // The first provider call fails (not retried): the requests waiting for it each go on as a miss.
    gw.sim.configure({ faults: [{ kind: 'http_error', status: 400, code: 'invalid_value', message: 'refused once', path: 'chat', remaining: 1 }] });
    const body = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: `Name a bird (${randomBytes(4).toString('hex')}).` }] };
    const results = await Promise.all(
      requestIds('failing').map((id) =>
        client.chat.completions.create(body, { headers: { ...use, 'x-request-id': id } }).withResponse().then(
          (answer) => ({ cache: answer.response.headers.get('x-openrouter-cache'), content: answer.data.choices[0]?.message.content }),
          (error: unknown) => ({ error }),
        ),
      ),
    );
    const failed = results.filter((r) => 'error' in r);
    expect(failed).toHaveLength(1);
    expect((failed[0] as { error: unknown }).error).toBeInstanceOf(OpenAI.BadRequestError);
    const answered = results.filter((r): r is { cache: string | null; content: string | null | undefined } => !('error' in r));
    expect(answered).toHaveLength(N - 1);
    for (const answer of answered) expect(answer.content?.length).toBeGreaterThan(0);
    // The waiters were told of no failure: none of them is answered from a cache the failed request never filled.
    expect(answered.every((a) => a.cache === 'miss')).toBe(true);
    expect(upstreamChats()).toBe(N);
    expect(await waiting()).toBe(0);
  });

  it('lets the waiters go when the first answer may not be stored (an experiment arm answered it)', async () => {
    const body = { model: 'trial', messages: [{ role: 'user' as const, content: `Name a tree (${randomBytes(4).toString('hex')}).` }] };
    const answers = await Promise.all(requestIds('experiment').map((id) => client.chat.completions.create(body, { headers: { ...use, 'x-request-id': id } }).withResponse()));
    expect(answers.map((a) => a.response.headers.get('x-openrouter-cache'))).toEqual(Array(N).fill('miss'));
    for (const answer of answers) expect(answer.response.headers.get('x-openrouter-experiment')).toMatch(/^trial-split\//);
    expect(upstreamChats()).toBe(N);
  });

  it('stops waiting for a client that leaves, and bills it nothing', async () => {
    // Longer than the waiter takes to arrive, be seen waiting and leave on a slow machine: all before the first is answered.
    gw.sim.configure({ latencyMs: 5_000 });
    const body = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: `Name a river (${randomBytes(4).toString('hex')}).` }] };
    const [leaderId, waiterId] = requestIds('abort');
    const leader = client.chat.completions.create(body, { headers: { ...use, 'x-request-id': leaderId } }).withResponse();
    await gw.sim.waitForRequest((r) => r.path.endsWith('/chat/completions'), 10_000);
    const abort = new AbortController();
    const waiter = client.chat.completions.create(body, { headers: { ...use, 'x-request-id': waiterId }, signal: abort.signal }).then(
      () => 'answered',
      (error: unknown) => error,
    );
    await waitFor(async () => (await waiting()) === 1, { what: 'the second request waiting for the first' });
    abort.abort();
    await expect(waiter).resolves.toBeInstanceOf(OpenAI.APIUserAbortError);
    await waitFor(async () => (await waiting()) === 0, { what: 'the second request to stop waiting' });

    const first = await leader;
    expect(first.response.headers.get('x-openrouter-cache')).toBe('miss');
    expect(upstreamChats()).toBe(1);
    const rows = await rowsOf([leaderId ?? '', waiterId ?? '']);
    expect(rows.get(waiterId ?? '')).toMatchObject({ cache_hit: false, cost: '0', status: 'cancelled' });
    expect(rows.get(leaderId ?? '')).toMatchObject({ cache_hit: false, status: 'ok' });
  });
});
