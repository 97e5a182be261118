import { randomBytes } from 'node:crypto';
import Anthropic from '@anthropic-ai/sdk';
import { Redis } from 'ioredis';
import OpenAI from 'openai';
import { hashApiKey } from '@openrouter/ingress';
import { Money } from '@openrouter/usage';
import { queryRows } from '../support/infra/clickhouse';
import { sharedRedisUrl } from '../support/infra/shared-infra';
import { waitFor } from '../support/infra/wait-for';
import { TEST_ADMIN_KEY } from '../support/test-config';
import { startTestGateway, type TestGateway } from '../support/test-gateway';
import { CLEAR_OF_UTC_MIDNIGHT_MS, clearOfUtcMidnight } from '../support/utc-day';

const SECRET = 'response-cache-e2e-hash-secret';
/** Keys of the `search` project (the suite's client, a second one, one that may use the embeddings model only) and of the `ads` project. */
const SEARCH_KEY = 'sk-or-test-search-project-a-000000';
const SEARCH_SECOND_KEY = 'sk-or-test-search-project-b-000000';
const EMBEDDINGS_ONLY_KEY = 'sk-or-test-embeddings-only-0000000';
const ADS_KEY = 'sk-or-test-ads-project-0000000000';

interface Row {
  request_id: string;
  cache_hit: boolean;
  cost: string;
  cache_saved_cost: string;
  prompt_tokens: number;
  completion_tokens: number;
  served_model: string;
  stream: boolean;
  status: string;
}

// Spend and reads on the day's (and month's) periods, in real time: not across midnight.
beforeAll(() => clearOfUtcMidnight(), CLEAR_OF_UTC_MIDNIGHT_MS);

describe('the response cache end to end, through the official openai SDK', () => {
  let gw: TestGateway;
  let client: OpenAI;
  const use = { 'x-openrouter-cache': 'use' };

  beforeAll(async () => {
    gw = await startTestGateway({
      configure: (doc) => {
        doc['access'] = {
          keyHashSecret: SECRET,
          admin: { devKey: TEST_ADMIN_KEY },
          orgs: [{ id: 'default', teams: [{ id: 'default', projects: [{ id: 'default' }, { id: 'search' }, { id: 'ads' }] }] }],
          keys: [
            { id: 'search-a', hash: hashApiKey(SECRET, SEARCH_KEY), org: 'default', project: 'search' },
            { id: 'search-b', hash: hashApiKey(SECRET, SEARCH_SECOND_KEY), org: 'default', project: 'search' },
            { id: 'search-embeddings-only', hash: hashApiKey(SECRET, EMBEDDINGS_ONLY_KEY), org: 'default', project: 'search', allowedModels: ['text-embedding-3-small'] },
            { id: 'ads', hash: hashApiKey(SECRET, ADS_KEY), org: 'default', project: 'ads' },
          ],
        };
        doc['cache'] = { enabled: true, defaultTtlSeconds: 60, maxTtlSeconds: 600 };
        // An A/B experiment on the alias `trial`: which arm answers depends on who asks.
        doc['routing'] = {
          ...(doc['routing'] as Record<string, unknown>),
          aliases: { trial: { models: ['gpt-4o-mini'] } },
          experiments: [{ id: 'trial-split', target: 'trial', stickiness: 'key', arms: [{ name: 'a', model: 'gpt-4o-mini', weight: 1 }, { name: 'b', model: 'gpt-4o-mini', weight: 1 }] }],
        };
      },
    });
    client = gw.client({ apiKey: SEARCH_KEY });
  }, 120_000);
  afterAll(async () => gw?.close());
  beforeEach(() => gw.sim.reset());

  const upstreamChats = (): number => gw.sim.requests().filter((r) => r.path.endsWith('/chat/completions')).length;

  /** The usage rows of the requests sent with these ids, once every one is stored. */
  function rowsOf(ids: string[]): Promise<Map<string, Row>> {
    return waitFor(
      async () => {
        const rows = await queryRows<Row>(
          gw.gateway.billing.usage.store,
          `SELECT request_id, cache_hit, toString(cost) AS cost, toString(cache_saved_cost) AS cache_saved_cost, prompt_tokens, completion_tokens, served_model, stream, status
           FROM {db:Identifier}.usage_events FINAL WHERE has({ids:Array(String)}, request_id)`,
          { ids },
        );
        return rows.length === ids.length ? new Map(rows.map((r) => [r.request_id, r])) : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200, what: `the usage rows of ${ids.join(', ')}` },
    );
  }

  it('answers the same request a second time from the cache, streamed or whole, with no provider call and a cost of 0, recorded as a hit', async () => {
    const body = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'Name three colours of the rainbow.' }] };
    const first = await client.chat.completions.create(body, { headers: { ...use, 'x-request-id': 'cache-first' } }).withResponse();
    expect(first.response.headers.get('x-openrouter-cache')).toBe('miss');
    const firstCost = first.response.headers.get('x-openrouter-cost') ?? '';
    expect(Number(firstCost)).toBeGreaterThan(0);

    const second = await client.chat.completions.create(body, { headers: { ...use, 'x-request-id': 'cache-second' } }).withResponse();
    expect(upstreamChats()).toBe(1);
    const headers = second.response.headers;
    expect(headers.get('x-openrouter-cache')).toBe('hit');
    expect(Number(headers.get('age'))).toBeGreaterThanOrEqual(0);
    expect(headers.get('x-openrouter-cost')).toBe('0');
    for (const name of ['x-openrouter-model', 'x-openrouter-provider', 'x-openrouter-deployment']) expect(headers.get(name)).toBe(first.response.headers.get(name));
    expect(second.data.choices[0]?.message.content).toBe(first.data.choices[0]?.message.content);
    expect(second.data.model).toBe(first.data.model);
    // An answer of its own: another id, so clients keying messages on it never merge the two.
    expect(second.data.id).toMatch(/^chatcmpl-/);
    expect(second.data.id).not.toBe(first.data.id);
    expect(second.data.usage).toMatchObject({ prompt_tokens: first.data.usage?.prompt_tokens, completion_tokens: first.data.usage?.completion_tokens, cost: 0 });

    // Streamed, from the whole answer's entry: read by the SDK as any stream.
    const stream = await client.chat.completions.create({ ...body, stream: true, stream_options: { include_usage: true } }, { headers: { ...use, 'x-request-id': 'cache-streamed' } }).withResponse();
    expect(stream.response.headers.get('x-openrouter-cache')).toBe('hit');
    let text = '';
    let finish: string | null | undefined;
    let usage: OpenAI.CompletionUsage | undefined;
    const ids = new Set<string>();
    for await (const chunk of stream.data) {
      ids.add(chunk.id);
      text += chunk.choices[0]?.delta.content ?? '';
      finish ??= chunk.choices[0]?.finish_reason;
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe(first.data.choices[0]?.message.content);
    expect(finish).toBe(first.data.choices[0]?.finish_reason);
    expect(ids.size).toBe(1);
    expect([...ids][0]).not.toBe(first.data.id);
    expect([...ids][0]).not.toBe(second.data.id);
    expect(usage).toMatchObject({ prompt_tokens: first.data.usage?.prompt_tokens, completion_tokens: first.data.usage?.completion_tokens, cost: 0 });
    expect(upstreamChats()).toBe(1);

    const rows = await rowsOf(['cache-first', 'cache-second', 'cache-streamed']);
    expect(rows.get('cache-first')).toMatchObject({ cache_hit: false, cost: firstCost, status: 'ok' });
    for (const id of ['cache-second', 'cache-streamed']) {
      expect(rows.get(id)).toMatchObject({ cache_hit: true, cost: '0', cache_saved_cost: firstCost, served_model: 'gpt-4o-mini', status: 'ok', prompt_tokens: first.data.usage?.prompt_tokens, completion_tokens: first.data.usage?.completion_tokens });
    }
    expect(rows.get('cache-streamed')?.stream).toBe(true);

    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    expect(metrics).toMatch(/^openrouter_cache_requests_total\{[^}]*result="hit"[^}]*\} 2$/m);
    expect(metrics).toMatch(/^openrouter_cache_requests_total\{[^}]*result="miss"[^}]*\} 1$/m);
    // The hits are no provider's requests: their latency and tokens are counted under provider "cache".
    expect(metrics).toMatch(/^openrouter_requests_total\{[^}]*provider="cache"[^}]*\} 2$/m);
    expect(metrics).toMatch(/^openrouter_requests_total\{[^}]*provider="simulated"[^}]*\} 1$/m);
  });

  it('stores a stream that completed and answers the whole request from it', async () => {
    const body = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'Count from one to five.' }] };
    let streamed = '';
    for await (const chunk of await client.chat.completions.create({ ...body, stream: true }, { headers: use })) streamed += chunk.choices[0]?.delta.content ?? '';
    const whole = await client.chat.completions.create(body, { headers: use }).withResponse();
    expect(whole.response.headers.get('x-openrouter-cache')).toBe('hit');
    expect(whole.data.choices[0]?.message.content).toBe(streamed);
    expect(upstreamChats()).toBe(1);
  });

  it('keeps an answer from the cache asked for with store true as a stored completion of its own, whole and streamed, under an id of its own', async () => {
    const body = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'Store my cached answer.' }], store: true, metadata: { run: 'cached' } };
    const first = await client.chat.completions.create(body, { headers: use }).withResponse();
    expect(first.response.headers.get('x-openrouter-cache')).toBe('miss');
    const whole = await client.chat.completions.create(body, { headers: use }).withResponse();
    expect(whole.response.headers.get('x-openrouter-cache')).toBe('hit');
    const stream = await client.chat.completions.create({ ...body, stream: true }, { headers: use }).withResponse();
    expect(stream.response.headers.get('x-openrouter-cache')).toBe('hit');
    const chunkIds = new Set<string>();
    let text = '';
    for await (const chunk of stream.data) {
      chunkIds.add(chunk.id);
      text += chunk.choices[0]?.delta.content ?? '';
    }
    expect(chunkIds.size).toBe(1);
    const ids = [first.data.id, whole.data.id, ...chunkIds];
    expect(new Set(ids).size).toBe(3);
    // Each answer kept as its own, once its keeping (after the answer went out) is written.
    const kept = await waitFor(
      async () => {
        const page = await client.chat.completions.list({ metadata: { run: 'cached' } });
        return page.data.length === 3 ? page.data : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 20, what: 'the three answers to be kept' },
    );
    expect(kept.map((completion) => completion.id).sort()).toEqual([...ids].sort());
    for (const completion of kept) expect(completion.choices[0]?.message.content).toBe(text);
    // One provider call for the three.
    expect(gw.sim.requests().filter((r) => JSON.stringify(r.body).includes('Store my cached answer.'))).toHaveLength(1);
  });

  it('shares entries within the project and nothing with another, bypasses without the header, and refreshes on request', async () => {
    const body = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'What is the capital of France?' }] };
    await client.chat.completions.create(body, { headers: use });
    const sameProject = await gw.client({ apiKey: SEARCH_SECOND_KEY }).chat.completions.create(body, { headers: use }).withResponse();
    expect(sameProject.response.headers.get('x-openrouter-cache')).toBe('hit');
    expect(upstreamChats()).toBe(1);
    const other = await gw.client({ apiKey: ADS_KEY }).chat.completions.create(body, { headers: use }).withResponse();
    expect(other.response.headers.get('x-openrouter-cache')).toBe('miss');
    expect(upstreamChats()).toBe(2);

    const bypassed = await client.chat.completions.create(body).withResponse();
    expect(bypassed.response.headers.get('x-openrouter-cache')).toBe('bypass');
    expect(upstreamChats()).toBe(3);

    const refreshed = await client.chat.completions.create(body, { headers: { 'x-openrouter-cache': 'refresh' } }).withResponse();
    expect(refreshed.response.headers.get('x-openrouter-cache')).toBe('refresh');
    expect(upstreamChats()).toBe(4);
    const after = await client.chat.completions.create(body, { headers: use }).withResponse();
    expect(after.response.headers.get('x-openrouter-cache')).toBe('hit');
    expect(after.data.choices[0]?.message.content).toBe(refreshed.data.choices[0]?.message.content);
    expect(upstreamChats()).toBe(4);
  });

  it('never answers a key from an entry of a model it may not use, even in the same project', async () => {
    const body = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'Only for keys that may use this model.' }] };
    await client.chat.completions.create(body, { headers: use });
    const refused = await gw
      .client({ apiKey: EMBEDDINGS_ONLY_KEY })
      .chat.completions.create(body, { headers: use })
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    expect(refused).toBeInstanceOf(OpenAI.APIError);
    expect((refused as InstanceType<typeof OpenAI.APIError>).status).toBeGreaterThanOrEqual(400);
    expect(upstreamChats()).toBe(1);
  });

  it('does not store an answer whose model an experiment chose: another caller of the project may be on another arm', async () => {
    const body = { model: 'trial', messages: [{ role: 'user' as const, content: 'Which arm am I on?' }] };
    const first = await client.chat.completions.create(body, { headers: use }).withResponse();
    expect(first.response.headers.get('x-openrouter-experiment')).toMatch(/^trial-split\//);
    const second = await gw.client({ apiKey: SEARCH_SECOND_KEY }).chat.completions.create(body, { headers: use }).withResponse();
    expect(second.response.headers.get('x-openrouter-cache')).toBe('miss');
    expect(second.response.headers.get('x-openrouter-experiment')).toMatch(/^trial-split\//);
    expect(upstreamChats()).toBe(2);
  });

  it('caches embeddings', async () => {
    const input = { model: 'text-embedding-3-small', input: ['cached vectors', 'twice'] };
    const first = await client.embeddings.create(input, { headers: use }).withResponse();
    const second = await client.embeddings.create(input, { headers: use }).withResponse();
    expect(second.response.headers.get('x-openrouter-cache')).toBe('hit');
    expect(second.response.headers.get('x-openrouter-cost')).toBe('0');
    expect(second.data.data.map((d) => d.embedding)).toEqual(first.data.data.map((d) => d.embedding));
    expect(second.data.usage.prompt_tokens).toBe(first.data.usage.prompt_tokens);
    expect(gw.sim.requests().filter((r) => r.path.endsWith('/embeddings'))).toHaveLength(1);
  });

  it('refuses a bad cache header as bad input naming it, in OpenAI\'s error format', async () => {
    const body = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'hi' }] };
    for (const [headers, param] of [
      [{ ...use, 'x-openrouter-cache-ttl': '0' }, 'x-openrouter-cache-ttl'],
      [{ ...use, 'x-openrouter-cache-ttl': '601' }, 'x-openrouter-cache-ttl'],
      [{ 'x-openrouter-cache': 'sometimes' }, 'x-openrouter-cache'],
    ] as const) {
      const refused = await client.chat.completions.create(body, { headers }).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(refused).toBeInstanceOf(OpenAI.BadRequestError);
      expect(refused).toMatchObject({ status: 400, param, code: 'invalid_value' });
    }
    expect(upstreamChats()).toBe(0);
  });

  it('answers a Responses API request a second time from the cache, whole and streamed, read by the openai SDK as any response', async () => {
    const body = { model: 'gpt-4o-mini', instructions: 'Be brief.', input: 'Name three rivers of Europe.' };
    const first = await client.responses.create(body, { headers: { ...use, 'x-request-id': 'responses-first' } }).withResponse();
    expect(first.response.headers.get('x-openrouter-cache')).toBe('miss');
    const firstCost = first.response.headers.get('x-openrouter-cost') ?? '';
    expect(Number(firstCost)).toBeGreaterThan(0);
    expect(first.data.output_text.length).toBeGreaterThan(0);

    const second = await client.responses.create(body, { headers: { ...use, 'x-request-id': 'responses-second' } }).withResponse();
    expect(second.response.headers.get('x-openrouter-cache')).toBe('hit');
    expect(Number(second.response.headers.get('age'))).toBeGreaterThanOrEqual(0);
    expect(second.response.headers.get('x-openrouter-cost')).toBe('0');
    expect(second.data).toMatchObject({ object: 'response', status: 'completed', model: first.data.model, instructions: 'Be brief.' });
    expect(second.data.output_text).toBe(first.data.output_text);
    expect(second.data.id).toMatch(/^resp_/);
    expect(second.data.id).not.toBe(first.data.id);
    expect(second.data.usage).toMatchObject({ input_tokens: first.data.usage?.input_tokens, output_tokens: first.data.usage?.output_tokens, cost: 0 });

    const streamed = await client.responses.create({ ...body, stream: true }, { headers: { ...use, 'x-request-id': 'responses-streamed' } }).withResponse();
    expect(streamed.response.headers.get('x-openrouter-cache')).toBe('hit');
    expect(streamed.response.headers.get('x-openrouter-cost')).toBe('0');
    let text = '';
    const types: string[] = [];
    let completed: OpenAI.Responses.Response | undefined;
    for await (const event of streamed.data) {
      types.push(event.type);
      if (event.type === 'response.output_text.delta') text += event.delta;
      if (event.type === 'response.completed') completed = event.response;
    }
    expect(types[0]).toBe('response.created');
    expect(types.at(-1)).toBe('response.completed');
    expect(text).toBe(first.data.output_text);
    expect(completed?.output_text ?? completed?.output.flatMap((o) => (o.type === 'message' ? o.content.map((c) => (c.type === 'output_text' ? c.text : '')) : [])).join('')).toBe(first.data.output_text);
    expect(completed?.id).not.toBe(first.data.id);
    expect(completed?.usage).toMatchObject({ input_tokens: first.data.usage?.input_tokens, output_tokens: first.data.usage?.output_tokens, cost: 0 });
    expect(upstreamChats()).toBe(1);

    const rows = await rowsOf(['responses-first', 'responses-second', 'responses-streamed']);
    expect(rows.get('responses-first')).toMatchObject({ cache_hit: false, cost: firstCost, status: 'ok' });
    for (const id of ['responses-second', 'responses-streamed']) expect(rows.get(id)).toMatchObject({ cache_hit: true, cost: '0', cache_saved_cost: firstCost, status: 'ok' });
  });

  it('answers a Messages API request from the entry of its stream, whole and streamed, read by @anthropic-ai/sdk as any message', async () => {
    const anthropic = new Anthropic({ baseURL: gw.url, apiKey: SEARCH_KEY, maxRetries: 0, timeout: 20_000 });
    const body = { model: 'gpt-4o-mini', max_tokens: 128, messages: [{ role: 'user' as const, content: 'Name three mountains of Asia.' }] };
    const textOf = (message: Anthropic.Message): string => message.content.flatMap((b) => (b.type === 'text' ? [b.text] : [])).join('');

    // Streamed first: the stream is gathered and stored once it completed.
    const first = anthropic.messages.stream(body, { headers: { ...use, 'x-request-id': 'messages-first' } });
    const firstMessage = await first.finalMessage();
    expect((await first.withResponse()).response.headers.get('x-openrouter-cache')).toBe('miss');
    expect(textOf(firstMessage).length).toBeGreaterThan(0);

    const whole = await anthropic.messages.create(body, { headers: { ...use, 'x-request-id': 'messages-whole' } }).withResponse();
    expect(whole.response.headers.get('x-openrouter-cache')).toBe('hit');
    expect(whole.response.headers.get('x-openrouter-cost')).toBe('0');
    expect(Number(whole.response.headers.get('age'))).toBeGreaterThanOrEqual(0);
    expect(whole.response.headers.get('request-id')).toBe('messages-whole');
    expect(whole.data).toMatchObject({ type: 'message', role: 'assistant', model: firstMessage.model, stop_reason: firstMessage.stop_reason });
    expect(textOf(whole.data)).toBe(textOf(firstMessage));
    expect(whole.data.id).toMatch(/^msg_/);
    expect(whole.data.id).not.toBe(firstMessage.id);
    expect(whole.data.usage).toMatchObject({ input_tokens: firstMessage.usage.input_tokens, output_tokens: firstMessage.usage.output_tokens });

    const stream = anthropic.messages.stream(body, { headers: { ...use, 'x-request-id': 'messages-streamed' } });
    const types: string[] = [];
    let text = '';
    stream.on('streamEvent', (event) => types.push(event.type));
    stream.on('text', (delta) => (text += delta));
    const final = await stream.finalMessage();
    expect((await stream.withResponse()).response.headers.get('x-openrouter-cache')).toBe('hit');
    expect(types[0]).toBe('message_start');
    expect(types.at(-1)).toBe('message_stop');
    expect(text).toBe(textOf(firstMessage));
    expect(textOf(final)).toBe(textOf(firstMessage));
    expect(final.id).not.toBe(firstMessage.id);
    expect(final.id).not.toBe(whole.data.id);
    expect(final.stop_reason).toBe(firstMessage.stop_reason);
    expect(final.usage.output_tokens).toBe(firstMessage.usage.output_tokens);
    expect(upstreamChats()).toBe(1);

    const rows = await rowsOf(['messages-first', 'messages-whole', 'messages-streamed']);
    const firstCost = rows.get('messages-first')?.cost ?? '';
    expect(Number(firstCost)).toBeGreaterThan(0);
    for (const id of ['messages-whole', 'messages-streamed']) expect(rows.get(id)).toMatchObject({ cache_hit: true, cost: '0', cache_saved_cost: firstCost, status: 'ok' });
  });

  it('never answers a chat completion or a Messages request from the entry of a Responses request with the same content', async () => {
    const question = 'Which API asked this question?';
    const responses = await client.responses.create({ model: 'gpt-4o-mini', input: question }, { headers: use }).withResponse();
    expect(responses.response.headers.get('x-openrouter-cache')).toBe('miss');
    const again = await client.responses.create({ model: 'gpt-4o-mini', input: question }, { headers: use }).withResponse();
    expect(again.response.headers.get('x-openrouter-cache')).toBe('hit');
    expect(upstreamChats()).toBe(1);

    const chat = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: question }] }, { headers: use }).withResponse();
    expect(chat.response.headers.get('x-openrouter-cache')).toBe('miss');
    expect(chat.data.id).toMatch(/^chatcmpl-/);
    expect(upstreamChats()).toBe(2);
  });

  it('refuses a bad cache header on the Responses API in OpenAI\'s error format and on the Messages API in Anthropic\'s', async () => {
    const refusedResponses = await client.responses.create({ model: 'gpt-4o-mini', input: 'hi' }, { headers: { 'x-openrouter-cache': 'sometimes' } }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refusedResponses).toBeInstanceOf(OpenAI.BadRequestError);
    expect(refusedResponses).toMatchObject({ status: 400, param: 'x-openrouter-cache', code: 'invalid_value' });

    const anthropic = new Anthropic({ baseURL: gw.url, apiKey: SEARCH_KEY, maxRetries: 0, timeout: 20_000 });
    const refusedMessages = await anthropic.messages.create({ model: 'gpt-4o-mini', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }, { headers: { ...use, 'x-openrouter-cache-ttl': '601' } }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refusedMessages).toBeInstanceOf(Anthropic.BadRequestError);
    expect((refusedMessages as InstanceType<typeof Anthropic.BadRequestError>).error).toMatchObject({ type: 'error', error: { type: 'invalid_request_error', message: expect.stringContaining('x-openrouter-cache-ttl') } });
    expect(upstreamChats()).toBe(0);
  });

  it('shows the hits and the spend they avoided in the admin usage report, from the raw events and from the daily rollup', async () => {
    interface UsageReport {
      source: string;
      data: Array<{ model: string; currency: string; requests: number; cost: string; cache_hits: number; cache_saved_cost: string }>;
      total: { cache_hits: number; cache_saved_cost: string | null; cache_saved_cost_by_currency: Record<string, string> };
    }
    // Embeddings of the `ads` key: a row of their own, which no other test of this suite makes.
    const ads = gw.client({ apiKey: ADS_KEY });
    const input = { model: 'text-embedding-3-small', input: [`what the cache saves ${randomBytes(4).toString('hex')}`] };
    const first = await ads.embeddings.create(input, { headers: { ...use, 'x-request-id': 'cache-report-first' } }).withResponse();
    const firstCost = first.response.headers.get('x-openrouter-cost') ?? '';
    expect(Number(firstCost)).toBeGreaterThan(0);
    for (const id of ['cache-report-hit-1', 'cache-report-hit-2']) {
      const hit = await ads.embeddings.create(input, { headers: { ...use, 'x-request-id': id } }).withResponse();
      expect(hit.response.headers.get('x-openrouter-cache')).toBe('hit');
    }
    await rowsOf(['cache-report-first', 'cache-report-hit-1', 'cache-report-hit-2']);

    const today = new Date().toISOString().slice(0, 10);
    const tomorrow = new Date(Date.parse(today) + 86_400_000).toISOString().slice(0, 10);
    const ranges = { events: `from=${new Date(Date.now() - 3_600_000).toISOString()}`, rollup: `from=${today}&to=${tomorrow}` };
    const saved = new Money(firstCost).times(2);
    for (const [source, range] of Object.entries(ranges)) {
      const response = await fetch(`${gw.url}/admin/v1/usage?${range}&group_by=model&key=ads&model=text-embedding-3-small`, { headers: { authorization: `Bearer ${TEST_ADMIN_KEY}` } });
      expect(response.status).toBe(200);
      const report = (await response.json()) as UsageReport;
      expect(report.source).toBe(source);
      // The two hits cost nothing and avoided twice what the first answer cost, to the last decimal.
      expect(report.data).toEqual([expect.objectContaining({ model: 'text-embedding-3-small', requests: 3, cost: firstCost, cache_hits: 2 })]);
      expect(new Money(report.data[0]?.cache_saved_cost ?? '').equals(saved)).toBe(true);
      expect(report.total.cache_hits).toBe(2);
      expect(new Money(report.total.cache_saved_cost ?? '').equals(saved)).toBe(true);
      expect(Object.keys(report.total.cache_saved_cost_by_currency)).toEqual([report.data[0]?.currency]);
    }
  });
});

describe('the response cache of a gateway on Redis', () => {
  let gw: TestGateway;
  let redis: Redis;
  const prefix = `cache-e2e-${randomBytes(4).toString('hex')}:`;

  beforeAll(async () => {
    gw = await startTestGateway({
      configure: (doc) => {
        doc['access'] = { ...(doc['access'] as object), redis: { url: sharedRedisUrl(), keyPrefix: prefix } };
        doc['cache'] = { enabled: true, mode: 'always' };
      },
    });
    redis = new Redis(sharedRedisUrl());
  }, 120_000);
  afterAll(async () => {
    await redis?.quit();
    await gw?.close();
  });

  it('keeps entries sealed in the shared Redis, and under mode always caches requests that send no header unless they send off', async () => {
    const client = gw.client();
    const body = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'Spell the word lighthouse backwards.' }] };
    const first = await client.chat.completions.create(body).withResponse();
    expect(first.response.headers.get('x-openrouter-cache')).toBe('miss');
    const keys = await waitFor(async () => {
      const found = await redis.keys(`${prefix}cache:*`);
      return found.length > 0 ? found : undefined;
    }, { what: 'the entry in Redis' });
    expect(keys).toHaveLength(1);
    const stored = (await redis.get(keys[0] ?? '')) ?? '';
    const content = first.data.choices[0]?.message.content ?? '';
    expect(content.length).toBeGreaterThan(0);
    for (const text of [content, 'lighthouse']) {
      expect(stored).not.toContain(text);
      expect(Buffer.from(stored, 'base64').toString('latin1')).not.toContain(text);
    }
    const ttl = await redis.pttl(keys[0] ?? '');
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(3_600_000);

    const again = await client.chat.completions.create(body).withResponse();
    expect(again.response.headers.get('x-openrouter-cache')).toBe('hit');
    expect(again.data.choices[0]?.message.content).toBe(content);
    const off = await client.chat.completions.create(body, { headers: { 'x-openrouter-cache': 'off' } }).withResponse();
    expect(off.response.headers.get('x-openrouter-cache')).toBe('bypass');
    expect(gw.sim.requests().filter((r) => r.path.endsWith('/chat/completions'))).toHaveLength(2);
  });
});
