import { anthropicProvider } from '@openrouter/config';
import type { adapterv1, chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { parseChatRequest } from '@openrouter/openai-wire';
import { type RunningSimulator, startSimulator } from '@openrouter/provider-simulator';
import { ImageSource } from '../image-source';
import { countTextTokens } from '../text-tokens';
import type { ProviderAdapter } from '../provider-adapter';
import { createAnthropicAdapter } from './anthropic.adapter';

const API_KEY = 'sk-ant-int-spec';
const MODEL = 'claude-sonnet-4-5';
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';
const weatherTool = {
  type: 'function',
  function: { name: 'get_weather', description: 'Weather for a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
};

/** The adapter against the simulated Anthropic API: real HTTP, real SSE, real faults. */
describe('Anthropic adapter against the simulated provider', () => {
  let sim: RunningSimulator;
  let adapter: ProviderAdapter;

  const adapterFor = (apiKey: string, timeoutMs = 5_000): ProviderAdapter =>
    createAnthropicAdapter('anthropic', anthropicProvider.parse({ type: 'anthropic', baseUrl: sim.url, apiKey, defaultMaxTokens: 512, timeoutMs, headers: { 'anthropic-beta': 'test-beta' } }), { images: new ImageSource() });

  beforeAll(async () => {
    sim = await startSimulator({ apiKey: API_KEY });
    adapter = adapterFor(API_KEY);
  });
  afterEach(() => sim.reset());
  afterAll(async () => {
    await adapter.close();
    await sim.close();
  });

  const request = (body: Record<string, unknown>): chatv1.ChatRequest => parseChatRequest({ model: 'claude', messages: [{ role: 'user', content: 'Hello there' }], ...body });

  async function run(body: Record<string, unknown>, options: { using?: ProviderAdapter; signal?: AbortSignal } = {}): Promise<adapterv1.ChatResponse[]> {
    const out: adapterv1.ChatResponse[] = [];
    const call = { requestId: 'req-1', upstreamModel: MODEL, request: request(body), timeoutMs: 0, signal: options.signal ?? new AbortController().signal };
    for await (const response of (options.using ?? adapter).chat(call)) out.push(response);
    return out;
  }
  const completion = async (body: Record<string, unknown>): Promise<chatv1.ChatCompletion> => {
    const [only, ...rest] = await run(body);
    expect(rest).toEqual([]);
    if (!only?.completion) throw new Error('expected a completion');
    return only.completion;
  };
  const chunks = async (body: Record<string, unknown>): Promise<chatv1.ChatChunk[]> =>
    (await run({ stream: true, stream_options: { include_usage: true }, ...body })).map((r) => {
      if (!r.chunk) throw new Error('expected chunks');
      return r.chunk;
    });
  const textOf = (list: chatv1.ChatChunk[]): string => list.map((c) => c.choices[0]?.delta?.content ?? '').join('');
  async function failure(body: Record<string, unknown>, using?: ProviderAdapter): Promise<GatewayError> {
    try {
      await run(body, { using });
    } catch (error) {
      if (error instanceof GatewayError) return error;
      throw error;
    }
    throw new Error('expected a GatewayError');
  }

  it('answers a plain chat with usage, sending key, version, custom headers and the default max_tokens', async () => {
    const c = await completion({});
    expect(c.id).toMatch(/^msg_01/);
    expect(c.model).toBe(MODEL);
    expect(c.choices).toHaveLength(1);
    expect(c.choices[0]?.message?.content).toMatch(/\w+/);
    expect(c.choices[0]?.finishReason).toBe('stop');
    expect(c.usage).toMatchObject({ completionTokens: 16, cachedReadTokens: 0, cacheWriteTokens: 0, estimated: false });
    expect(c.usage?.promptTokens).toBeGreaterThan(0);
    expect(c.usage?.totalTokens).toBe((c.usage?.promptTokens ?? 0) + 16);
    const seen = sim.requests()[0];
    expect(seen?.path).toBe('/v1/messages');
    expect(seen?.headers).toMatchObject({ 'x-api-key': 'present', 'anthropic-version': '2023-06-01', 'anthropic-beta': 'test-beta' });
    expect(seen?.body).toMatchObject({ model: MODEL, max_tokens: 512 });
  });

  it('streams the same answer with a role chunk first, a finish chunk and a closing usage chunk', async () => {
    const plain = await completion({ max_tokens: 20 });
    const list = await chunks({ max_tokens: 20 });
    expect(list[0]?.choices[0]?.delta).toMatchObject({ role: 'assistant', content: '' });
    expect(textOf(list)).toBe(plain.choices[0]?.message?.content);
    const finish = list[list.length - 2];
    expect(finish?.choices[0]?.finishReason).toBe('stop');
    const usage = list[list.length - 1];
    expect(usage?.choices).toEqual([]);
    expect(usage?.usage).toEqual(plain.usage);
    expect(list.slice(0, -1).every((c) => c.usage === undefined)).toBe(true);
  });

  it('reports max_tokens as finish_reason length', async () => {
    const c = await completion({ max_completion_tokens: 4 });
    expect(c.choices[0]?.finishReason).toBe('length');
    expect(c.usage?.completionTokens).toBe(4);
  });

  it('makes a forced tool call, whole and streamed', async () => {
    const body = { tools: [weatherTool], tool_choice: { type: 'function', function: { name: 'get_weather' } } };
    const c = await completion(body);
    const call = c.choices[0]?.message?.toolCalls[0];
    expect(c.choices[0]?.finishReason).toBe('tool_calls');
    expect(c.choices[0]?.message?.content).toBeUndefined();
    expect(call).toMatchObject({ id: expect.stringMatching(/^toolu_01/), type: 'function', function: { name: 'get_weather' } });
    expect(JSON.parse(call?.function?.arguments ?? '')).toEqual({ city: 'sample' });

    const list = await chunks(body);
    const deltas = list.flatMap((x) => x.choices[0]?.delta?.toolCalls ?? []);
    expect(deltas[0]).toMatchObject({ index: 0, id: expect.stringMatching(/^toolu_01/), type: 'function', name: 'get_weather', arguments: '' });
    expect(deltas.slice(1).every((d) => d.index === 0 && d.id === undefined && d.name === undefined)).toBe(true);
    expect(JSON.parse(deltas.map((d) => d.arguments ?? '').join(''))).toEqual({ city: 'sample' });
    expect(list[list.length - 2]?.choices[0]?.finishReason).toBe('tool_calls');
    expect(list[list.length - 1]?.usage?.completionTokens).toBeGreaterThan(0);
  });

  it('completes a tool round trip: the call, then the result answered in text', async () => {
    const first = await completion({ messages: [{ role: 'user', content: 'Weather in Oslo?' }], tools: [weatherTool], tool_choice: 'required' });
    const call = first.choices[0]?.message?.toolCalls[0];
    if (!call) throw new Error('expected a tool call');
    const answer = await completion({
      messages: [
        { role: 'user', content: 'Weather in Oslo?' },
        { role: 'assistant', content: null, tool_calls: [{ id: call.id, type: 'function', function: { name: call.function?.name, arguments: call.function?.arguments } }] },
        { role: 'tool', tool_call_id: call.id, content: 'Oslo: 4°C, snow ❄️' },
      ],
      tools: [weatherTool],
    });
    expect(answer.choices[0]?.finishReason).toBe('stop');
    expect(answer.choices[0]?.message?.content).toMatch(/^Tool result received\./);
    const sent = sim.requests()[1]?.body as { messages: { role: string; content: { type: string }[] }[] };
    expect(sent.messages.map((m) => m.role)).toEqual(['user', 'assistant', 'user']);
    expect(sent.messages[2]?.content[0]).toEqual({ type: 'tool_result', tool_use_id: call.id, content: 'Oslo: 4°C, snow ❄️' });
  });

  it('gets an answer for a whitespace-only tool result, which the provider refuses as a blank text block', async () => {
    const answer = await completion({
      messages: [
        { role: 'user', content: 'Weather in Oslo?' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'toolu_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } }] },
        { role: 'tool', tool_call_id: 'toolu_1', content: '\n' },
      ],
      tools: [weatherTool],
    });
    expect(answer.choices[0]?.message?.content).toMatch(/^Tool result received\./);
  });

  it('gets an answer for a prefill with reasoning_effort, thinking left off as the provider refuses a prefill with thinking on', async () => {
    const answer = await completion({ reasoning_effort: 'high', messages: [{ role: 'user', content: 'Name a colour.' }, { role: 'assistant', content: 'Sure, here is' }] });
    expect(answer.choices[0]?.finishReason).toBe('stop');
    expect(sim.requests()[0]?.body).not.toHaveProperty('thinking');
  });

  it('sends a data URL image inline as base64', async () => {
    const c = await completion({
      messages: [{ role: 'user', content: [{ type: 'text', text: 'What is in this picture?' }, { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } }] }],
    });
    expect(c.choices[0]?.finishReason).toBe('stop');
    const sent = sim.requests()[0]?.body as { messages: { content: unknown[] }[] };
    expect(sent.messages[0]?.content[1]).toEqual({ type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG } });
  });

  it('answers JSON mode with the schema-complete object as content, whole and streamed', async () => {
    const schema = { type: 'object', properties: { name: { type: 'string' }, age: { type: 'integer', minimum: 18 } }, required: ['name', 'age'] };
    const body = { response_format: { type: 'json_schema', json_schema: { name: 'person', schema } } };
    const c = await completion(body);
    expect(c.choices[0]?.finishReason).toBe('stop');
    expect(c.choices[0]?.message?.toolCalls).toEqual([]);
    expect(JSON.parse(c.choices[0]?.message?.content ?? '')).toEqual({ name: 'sample', age: 18 });

    const list = await chunks(body);
    expect(JSON.parse(textOf(list))).toEqual({ name: 'sample', age: 18 });
    expect(list.every((x) => (x.choices[0]?.delta?.toolCalls ?? []).length === 0)).toBe(true);
    expect(list[list.length - 2]?.choices[0]?.finishReason).toBe('stop');

    const loose = await completion({ response_format: { type: 'json_object' } });
    expect(typeof JSON.parse(loose.choices[0]?.message?.content ?? '')).toBe('object');
  });

  it.each([
    [429, 'rate_limited', 1000],
    [529, 'overloaded', undefined],
    [500, 'upstream_error', undefined],
  ])('maps an injected HTTP %i to %s', async (status, kind, retryAfterMs) => {
    sim.configure({ faults: [{ kind: 'http_error', status }] });
    const error = await failure({});
    expect(error).toMatchObject({ kind, retryable: true, upstreamStatus: status, provider: 'anthropic', retryAfterMs });
    const streamed = await failure({ stream: true });
    expect(streamed.kind).toBe(kind);
  });

  it('maps a rejected key to auth_failed without echoing the provider text', async () => {
    const wrong = adapterFor('sk-ant-wrong-key');
    try {
      const error = await failure({}, wrong);
      expect(error).toMatchObject({ kind: 'auth_failed', upstreamStatus: 401 });
      expect(error.message).not.toContain('sk-ant');
    } finally {
      await wrong.close();
    }
  });

  it('maps a prompt over the context window to context_length_exceeded', async () => {
    sim.configure({ contextWindow: 10 });
    const error = await failure({ messages: [{ role: 'user', content: 'A prompt that is clearly longer than ten tokens in total, by some margin.' }] });
    expect(error).toMatchObject({ kind: 'context_length_exceeded', retryable: false, code: 'context_length_exceeded' });
  });

  it('turns a stream dropped mid-way into a thrown GatewayError after the chunks that arrived', async () => {
    sim.configure({ faults: [{ kind: 'drop_mid_stream', afterTokens: 3 }] });
    const seen: adapterv1.ChatResponse[] = [];
    let thrown: unknown;
    try {
      const call = { requestId: 'r', upstreamModel: MODEL, request: request({ stream: true }), timeoutMs: 0, signal: new AbortController().signal };
      for await (const response of adapter.chat(call)) seen.push(response);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(GatewayError);
    expect(thrown).toMatchObject({ kind: 'upstream_error', retryable: true });
    expect(seen.filter((r) => r.chunk?.choices[0]?.delta?.content)).toHaveLength(3);
  });

  /** The responses a streamed call yielded before it failed, and the failure. */
  async function failedStream(body: Record<string, unknown>): Promise<{ seen: adapterv1.ChatResponse[]; thrown: unknown }> {
    const seen: adapterv1.ChatResponse[] = [];
    try {
      for await (const response of adapter.chat({ requestId: 'r', upstreamModel: MODEL, request: request({ stream: true, stream_options: { include_usage: true }, ...body }), timeoutMs: 0, signal: new AbortController().signal })) {
        seen.push(response);
      }
    } catch (error) {
      return { seen, thrown: error };
    }
    throw new Error('expected the stream to fail');
  }

  it('passes on the usage Anthropic bills, cache reads apart, before the error event that ends a stream once its answer has begun', async () => {
    const long = 'The quarterly report covers revenue, costs and the outlook for every region. '.repeat(120);
    const cached = { messages: [{ role: 'system', content: [{ type: 'text', text: long, cache_control: { type: 'ephemeral' } }] }, { role: 'user', content: 'Summarise.' }] };
    const written = (await completion(cached)).usage?.cacheWriteTokens ?? 0;
    expect(written).toBeGreaterThanOrEqual(1024);
    sim.configure({ faults: [{ kind: 'http_error', status: 529, afterTokens: 3 }] });
    const { seen, thrown } = await failedStream(cached);
    expect(thrown).toMatchObject({ kind: 'overloaded', upstreamStatus: 529, retryable: true });
    const streamed = seen.map((r) => r.chunk?.choices[0]?.delta?.content ?? '').join('');
    expect(seen.filter((r) => r.chunk?.choices[0]?.delta?.content)).toHaveLength(3);
    const last = seen[seen.length - 1]?.chunk;
    expect(last?.choices).toEqual([]);
    expect(last?.usage).toMatchObject({ cachedReadTokens: written, cacheWriteTokens: 0, completionTokens: countTextTokens(streamed), estimated: true });
    expect(last?.usage?.promptTokens).toBeGreaterThan(written);
  });

  it('passes on no usage when the error event comes before the answer began, so the router may fail over', async () => {
    sim.configure({ faults: [{ kind: 'http_error', status: 529, afterTokens: 0 }] });
    const { seen, thrown } = await failedStream({});
    expect(thrown).toMatchObject({ kind: 'overloaded', retryable: true });
    expect(seen.some((r) => r.chunk?.usage)).toBe(false);
  });

  it('passes on the usage so far when the connection drops mid-stream, then fails', async () => {
    sim.configure({ faults: [{ kind: 'drop_mid_stream', afterTokens: 2 }] });
    const { seen, thrown } = await failedStream({});
    expect(thrown).toMatchObject({ kind: 'upstream_error', retryable: true });
    const streamed = seen.map((r) => r.chunk?.choices[0]?.delta?.content ?? '').join('');
    expect(seen[seen.length - 1]?.chunk?.usage).toMatchObject({ cachedReadTokens: 0, completionTokens: countTextTokens(streamed), estimated: true });
  });

  it('turns a truncated JSON answer and a dropped connection into GatewayErrors', async () => {
    sim.configure({ faults: [{ kind: 'drop_mid_stream', remaining: 1 }, { kind: 'drop_before_response', remaining: 1 }] });
    expect(await failure({})).toMatchObject({ kind: 'upstream_error', retryable: true, message: expect.stringContaining('before the answer was complete') });
    expect((await failure({})).kind).toBe('unavailable');
  });

  it('times out a provider that never answers', async () => {
    const impatient = adapterFor(API_KEY, 300);
    sim.configure({ faults: [{ kind: 'timeout' }] });
    try {
      expect(await failure({}, impatient)).toMatchObject({ kind: 'timeout', retryable: true });
    } finally {
      await impatient.close();
    }
  });

  it('stops the upstream stream when the caller cancels', async () => {
    sim.configure({ tokensPerSecond: 50, completionTokens: 200 });
    const controller = new AbortController();
    let thrown: unknown;
    let received = 0;
    try {
      const call = { requestId: 'r', upstreamModel: MODEL, request: request({ stream: true }), timeoutMs: 0, signal: controller.signal };
      for await (const response of adapter.chat(call)) {
        if (response.chunk?.choices[0]?.delta?.content) received++;
        if (received === 2) controller.abort();
      }
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toMatchObject({ kind: 'cancelled' });
    await sim.waitForRequest((r) => r.outcome === 'aborted');
  });

  it('refuses embeddings: Anthropic has none', async () => {
    await expect(
      adapter.embed({ requestId: 'r', upstreamModel: MODEL, request: { model: 'claude', texts: ['x'], tokenInputs: [], extraJson: '' }, timeoutMs: 0, signal: new AbortController().signal }),
    ).rejects.toMatchObject({ kind: 'bad_request', message: expect.stringContaining('does not support embeddings') });
  });
});
