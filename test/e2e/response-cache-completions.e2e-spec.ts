import { randomBytes } from 'node:crypto';
import OpenAI from 'openai';
import { queryRows } from '../support/infra/clickhouse';
import { waitFor } from '../support/infra/wait-for';
import { startTestGateway, type TestGateway } from '../support/test-gateway';

interface Row {
  request_id: string;
  cache_hit: boolean;
  cost: string;
  cache_saved_cost: string;
  prompt_tokens: number;
  completion_tokens: number;
  stream: boolean;
  status: string;
}

const use = { 'x-openrouter-cache': 'use' };

/** A streamed legacy completion read through the SDK: its header, each choice's text by index, finish reasons, ids and usage chunk. */
async function readStream(client: OpenAI, body: OpenAI.CompletionCreateParamsStreaming, headers: Record<string, string>) {
  const { data, response } = await client.completions.create(body, { headers }).withResponse();
  const texts = new Map<number, string>();
  const finishes = new Map<number, string>();
  const ids = new Set<string>();
  let usage: (OpenAI.CompletionUsage & { cost?: number }) | undefined;
  for await (const chunk of data) {
    ids.add(chunk.id);
    for (const choice of chunk.choices) {
      texts.set(choice.index, (texts.get(choice.index) ?? '') + choice.text);
      if (choice.finish_reason) finishes.set(choice.index, choice.finish_reason);
    }
    if (chunk.usage) usage = chunk.usage;
  }
  return { cache: response.headers.get('x-openrouter-cache'), texts, finishes, ids, usage };
}

describe('the response cache for legacy completions (/v1/completions), through the official openai SDK', () => {
  let gw: TestGateway;
  let client: OpenAI;

  beforeAll(async () => {
    gw = await startTestGateway({
      configure: (doc) => {
        doc['cache'] = { enabled: true, defaultTtlSeconds: 60 };
      },
    });
    client = gw.client();
  }, 120_000);
  afterAll(async () => gw?.close());
  beforeEach(() => gw.sim.reset());

  const upstreamChats = (): number => gw.sim.requests().filter((r) => r.path.endsWith('/chat/completions')).length;
  const unique = (text: string): string => `${text} (${randomBytes(4).toString('hex')})`;

  /** The usage rows of the requests sent with these ids, once every one is stored. */
  function rowsOf(ids: string[]): Promise<Map<string, Row>> {
    return waitFor(
      async () => {
        const rows = await queryRows<Row>(
          gw.gateway.billing.usage.store,
          `SELECT request_id, cache_hit, toString(cost) AS cost, toString(cache_saved_cost) AS cache_saved_cost, prompt_tokens, completion_tokens, stream, status
           FROM {db:Identifier}.usage_events FINAL WHERE has({ids:Array(String)}, request_id)`,
          { ids },
        );
        return rows.length === ids.length ? new Map(rows.map((r) => [r.request_id, r])) : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200, what: `the usage rows of ${ids.join(', ')}` },
    );
  }

  it('answers the same legacy completion a second time from the cache, whole and streamed, with no provider call and a cost of 0, recorded as a hit', async () => {
    const body = { model: 'gpt-4o-mini', prompt: unique('Name three colours of the rainbow.'), max_tokens: 24 };
    const tag = randomBytes(4).toString('hex');
    const first = await client.completions.create(body, { headers: { ...use, 'x-request-id': `legacy-first-${tag}` } }).withResponse();
    expect(first.response.headers.get('x-openrouter-cache')).toBe('miss');
    const firstCost = first.response.headers.get('x-openrouter-cost') ?? '';
    expect(Number(firstCost)).toBeGreaterThan(0);
    const text = first.data.choices[0]?.text ?? '';
    expect(text.length).toBeGreaterThan(0);

    const second = await client.completions.create(body, { headers: { ...use, 'x-request-id': `legacy-second-${tag}` } }).withResponse();
    expect(upstreamChats()).toBe(1);
    const headers = second.response.headers;
    expect(headers.get('x-openrouter-cache')).toBe('hit');
    expect(Number(headers.get('age'))).toBeGreaterThanOrEqual(0);
    expect(headers.get('x-openrouter-cost')).toBe('0');
    for (const name of ['x-openrouter-model', 'x-openrouter-provider', 'x-openrouter-deployment']) expect(headers.get(name)).toBe(first.response.headers.get(name));
    expect(second.data).toMatchObject({ object: 'text_completion', model: first.data.model });
    expect(second.data.choices).toEqual([expect.objectContaining({ index: 0, text, finish_reason: first.data.choices[0]?.finish_reason })]);
    // An answer of its own: another id.
    expect(second.data.id).toMatch(/^cmpl-/);
    expect(second.data.id).not.toBe(first.data.id);
    expect(second.data.usage).toMatchObject({ prompt_tokens: first.data.usage?.prompt_tokens, completion_tokens: first.data.usage?.completion_tokens, cost: 0 });

    // Streamed, from the whole answer's entry: read by the SDK as any legacy stream.
    const streamed = await readStream(client, { ...body, stream: true, stream_options: { include_usage: true } }, { ...use, 'x-request-id': `legacy-streamed-${tag}` });
    expect(streamed.cache).toBe('hit');
    expect(streamed.texts.get(0)).toBe(text);
    expect(streamed.finishes.get(0)).toBe(first.data.choices[0]?.finish_reason);
    expect(streamed.ids.size).toBe(1);
    expect([...streamed.ids][0]).toMatch(/^cmpl-/);
    expect([...streamed.ids][0]).not.toBe(first.data.id);
    expect(streamed.usage).toMatchObject({ prompt_tokens: first.data.usage?.prompt_tokens, completion_tokens: first.data.usage?.completion_tokens, cost: 0 });
    expect(upstreamChats()).toBe(1);

    const rows = await rowsOf(['first', 'second', 'streamed'].map((name) => `legacy-${name}-${tag}`));
    expect(rows.get(`legacy-first-${tag}`)).toMatchObject({ cache_hit: false, cost: firstCost, status: 'ok' });
    for (const name of ['second', 'streamed']) {
      expect(rows.get(`legacy-${name}-${tag}`)).toMatchObject({
        cache_hit: true,
        cost: '0',
        cache_saved_cost: firstCost,
        status: 'ok',
        prompt_tokens: first.data.usage?.prompt_tokens,
        completion_tokens: first.data.usage?.completion_tokens,
      });
    }
    expect(rows.get(`legacy-streamed-${tag}`)?.stream).toBe(true);
  });

  it('stores a request of several prompts, streamed, as one entry, and answers it whole from it with every prompt\'s choices numbered as before', async () => {
    const prompts = [unique('Count to three.'), unique('Name a fruit.')];
    const body = { model: 'gpt-4o-mini', prompt: prompts, n: 2, max_tokens: 16 };
    const streamed = await readStream(client, { ...body, stream: true }, use);
    expect(streamed.cache).toBe('miss');
    expect([...streamed.texts.keys()].sort()).toEqual([0, 1, 2, 3]);
    expect(upstreamChats()).toBe(2);

    const whole = await client.completions.create(body, { headers: use }).withResponse();
    expect(whole.response.headers.get('x-openrouter-cache')).toBe('hit');
    expect(whole.data.choices.map((c) => [c.index, c.text, c.finish_reason])).toEqual([0, 1, 2, 3].map((i) => [i, streamed.texts.get(i), streamed.finishes.get(i)]));
    expect(upstreamChats()).toBe(2);

    // Another order of the prompts, or one of them alone, is another request: each calls the provider.
    const reordered = await client.completions.create({ ...body, prompt: [...prompts].reverse() }, { headers: use }).withResponse();
    expect(reordered.response.headers.get('x-openrouter-cache')).toBe('miss');
    expect(upstreamChats()).toBe(4);
    const alone = await client.completions.create({ ...body, prompt: prompts[0] ?? '' }, { headers: use }).withResponse();
    expect(alone.response.headers.get('x-openrouter-cache')).toBe('miss');
    expect(upstreamChats()).toBe(5);
  });

  it('keys every legacy field, never answers a chat completion from a legacy entry, bypasses without the header, and refreshes on request', async () => {
    const prompt = unique('What is the capital of France?');
    const body = { model: 'gpt-4o-mini', prompt, max_tokens: 16 };
    await client.completions.create(body, { headers: use });
    expect(upstreamChats()).toBe(1);
    const variants: OpenAI.CompletionCreateParamsNonStreaming[] = [
      { ...body, max_tokens: 17 },
      { ...body, stop: ['\n\n'] },
      { ...body, user: 'someone' },
      { ...body, temperature: 0 },
      { ...body, logit_bias: { '50256': -100 } },
      { ...body, echo: false },
    ];
    for (const variant of variants) {
      const answer = await client.completions.create(variant, { headers: use }).withResponse();
      expect(answer.response.headers.get('x-openrouter-cache')).toBe('miss');
    }
    expect(upstreamChats()).toBe(1 + variants.length);

    const chat = await client.chat.completions.create({ model: 'gpt-4o-mini', max_tokens: 16, messages: [{ role: 'user', content: prompt }] }, { headers: use }).withResponse();
    expect(chat.response.headers.get('x-openrouter-cache')).toBe('miss');
    expect(upstreamChats()).toBe(2 + variants.length);

    const bypassed = await client.completions.create(body).withResponse();
    expect(bypassed.response.headers.get('x-openrouter-cache')).toBe('bypass');
    const refreshed = await client.completions.create(body, { headers: { 'x-openrouter-cache': 'refresh' } }).withResponse();
    expect(refreshed.response.headers.get('x-openrouter-cache')).toBe('refresh');
    expect(upstreamChats()).toBe(4 + variants.length);
    const after = await client.completions.create(body, { headers: use }).withResponse();
    expect(after.response.headers.get('x-openrouter-cache')).toBe('hit');
    expect(after.data.choices[0]?.text).toBe(refreshed.data.choices[0]?.text);
    expect(upstreamChats()).toBe(4 + variants.length);
  });

  it('refuses a bad cache header on a legacy completion as bad input naming it', async () => {
    const refused = await client.completions.create({ model: 'gpt-4o-mini', prompt: 'hi' }, { headers: { 'x-openrouter-cache': 'sometimes' } }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(OpenAI.BadRequestError);
    expect(refused).toMatchObject({ status: 400, param: 'x-openrouter-cache', code: 'invalid_value' });
    expect(upstreamChats()).toBe(0);
  });

  it('calls the provider once for identical legacy completions arriving together: the others are answered from its answer as hits', async () => {
    // Long enough for every request sent together to arrive while the first one's provider call is still out.
    gw.sim.configure({ latencyMs: 1_500 });
    const body = { model: 'gpt-4o-mini', prompt: unique('Name a prime between 10 and 20.'), max_tokens: 16 };
    const answers = await Promise.all(Array.from({ length: 4 }, () => client.completions.create(body, { headers: use }).withResponse()));
    expect(upstreamChats()).toBe(1);
    expect(new Set(answers.map((a) => a.data.choices[0]?.text)).size).toBe(1);
    expect(answers.map((a) => a.response.headers.get('x-openrouter-cache')).sort()).toEqual(['hit', 'hit', 'hit', 'miss']);
    for (const hit of answers.filter((a) => a.response.headers.get('x-openrouter-cache') === 'hit')) expect(hit.response.headers.get('x-openrouter-cost')).toBe('0');
  });
});
