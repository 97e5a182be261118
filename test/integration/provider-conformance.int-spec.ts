import { PROVIDER_TYPES, type ProviderType } from '@openrouter/config';
import type { adapterv1, chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { PROVIDER_REGISTRY, createProviderAdapter, type ProviderAdapter } from '@openrouter/adapter';
import { parseChatRequest, parseEmbeddingRequest } from '@openrouter/openai-wire';
import { startSimulator, type RunningSimulator } from '@openrouter/provider-simulator';
import { SIMULATED_PROVIDERS } from '../support/simulated-providers';

/**
 * The same checks for every provider family in the registry, against the simulated provider
 * speaking that family's wire format. A new family gets them by registering and declaring how
 * its simulator is reached in SIMULATED_PROVIDERS.
 */
const KEY = 'conformance-secret';
/** A call's headers and body timeout: far above a slow answer on a loaded machine (only the timeout test sets a short one). */
const CALL_MS = 10_000;
const PIXEL = 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';
const weather = {
  type: 'function',
  function: { name: 'get_weather', description: 'Weather for a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
};

async function collect(events: AsyncGenerator<adapterv1.ChatResponse>): Promise<adapterv1.ChatResponse[]> {
  const out: adapterv1.ChatResponse[] = [];
  for await (const event of events) out.push(event);
  return out;
}

async function failure(run: () => Promise<unknown>): Promise<GatewayError> {
  try {
    await run();
  } catch (error) {
    expect(error).toBeInstanceOf(GatewayError);
    return error as GatewayError;
  }
  throw new Error('expected a GatewayError');
}

describe.each(PROVIDER_TYPES.map((type) => [type] as const))('provider family %s conforms', (type: ProviderType) => {
  const profile = SIMULATED_PROVIDERS[type];
  let sim: RunningSimulator;
  let adapter: ProviderAdapter;
  let wrongKey: ProviderAdapter;

  beforeAll(async () => {
    sim = await startSimulator({ apiKey: KEY, seed: 11 });
    adapter = createProviderAdapter(PROVIDER_REGISTRY, type, profile.config(sim.url, KEY));
    wrongKey = createProviderAdapter(PROVIDER_REGISTRY, type, profile.config(sim.url, 'not-the-key'));
  });
  afterAll(async () => {
    await adapter?.close();
    await wrongKey?.close();
    await sim?.close();
  });
  beforeEach(() => sim.reset());

  const call = <T>(request: T) => ({ requestId: 'req-conformance', upstreamModel: profile.chatModel, request, timeoutMs: CALL_MS, signal: new AbortController().signal });
  const chat = (body: Record<string, unknown>, on: ProviderAdapter = adapter) =>
    collect(on.chat(call(parseChatRequest({ model: 'public-id', messages: [{ role: 'user', content: 'Say hello' }], ...body }))));

  it('answers a plain chat with content, a finish reason and exact usage', async () => {
    const [only, ...rest] = await chat({ max_tokens: 32 });
    expect(rest).toEqual([]);
    const completion = only?.completion as chatv1.ChatCompletion;
    expect(completion.choices[0]?.message?.content).toEqual(expect.any(String));
    expect(completion.choices[0]?.message?.content?.length).toBeGreaterThan(0);
    expect(['stop', 'length']).toContain(completion.choices[0]?.finishReason);
    expect(completion.usage?.promptTokens).toBeGreaterThan(0);
    expect(completion.usage?.completionTokens).toBeGreaterThan(0);
    expect(completion.usage?.totalTokens).toBe((completion.usage?.promptTokens ?? 0) + (completion.usage?.completionTokens ?? 0));
  });

  it('streams text deltas, one finish reason and the usage last', async () => {
    const events = await chat({ stream: true, stream_options: { include_usage: true }, max_tokens: 32 });
    const chunks = events.map((e) => e.chunk as chatv1.ChatChunk);
    expect(chunks.every(Boolean)).toBe(true);
    const text = chunks.flatMap((c) => c.choices.map((ch) => ch.delta?.content ?? '')).join('');
    expect(text.length).toBeGreaterThan(0);
    expect(chunks.flatMap((c) => c.choices.map((ch) => ch.finishReason).filter(Boolean))).toHaveLength(1);
    const last = chunks[chunks.length - 1];
    expect(last?.usage?.completionTokens).toBeGreaterThan(0);
  });

  it.each([false, true])('makes a forced tool call with JSON arguments (stream: %s)', async (stream) => {
    const events = await chat({ stream, tools: [weather], tool_choice: { type: 'function', function: { name: 'get_weather' } }, messages: [{ role: 'user', content: 'Weather in Paris?' }] });
    let name = '';
    let args = '';
    let finish = '';
    for (const event of events) {
      for (const choice of event.completion?.choices ?? []) {
        for (const toolCall of choice.message?.toolCalls ?? []) {
          name += toolCall.function?.name ?? '';
          args += toolCall.function?.arguments ?? '';
        }
        finish = choice.finishReason ?? finish;
      }
      for (const choice of event.chunk?.choices ?? []) {
        for (const toolCall of choice.delta?.toolCalls ?? []) {
          name += toolCall.name ?? '';
          args += toolCall.arguments ?? '';
        }
        finish = choice.finishReason || finish;
      }
    }
    expect(name).toBe('get_weather');
    expect(JSON.parse(args)).toEqual(expect.objectContaining({ city: expect.any(String) }));
    expect(finish).toBe('tool_calls');
  });

  it('takes a tool result back and answers it', async () => {
    const [only] = await chat({
      tools: [weather],
      messages: [
        { role: 'user', content: 'Weather in Paris?' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: '{"celsius":21}' },
      ],
    });
    expect(only?.completion?.choices[0]?.message?.content?.length).toBeGreaterThan(0);
  });

  it('accepts text parts that carry cache_control, as prompt-caching clients send them', async () => {
    const cached = (text: string) => ({ type: 'text', text, cache_control: { type: 'ephemeral' } });
    const [only] = await chat({
      messages: [
        { role: 'system', content: [cached('You answer questions about the weather.')] },
        { role: 'user', content: [cached('A long shared document.'), { type: 'text', text: 'Weather in Paris?' }] },
      ],
    });
    expect(only?.completion?.choices[0]?.message?.content?.length).toBeGreaterThan(0);
  });

  it('accepts blank text, a final assistant message ending in whitespace and tool ids from another provider', async () => {
    const id = 'functions.get_weather:0';
    const [only] = await chat({
      tools: [weather],
      messages: [
        { role: 'user', content: 'Weather in Paris?' },
        { role: 'user', content: [{ type: 'text', text: ' \n' }] },
        { role: 'assistant', content: '  ', tool_calls: [{ id, type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
        { role: 'tool', tool_call_id: id, content: '{"celsius":21}' },
        { role: 'assistant', content: 'It is ' },
      ],
    });
    expect(only?.completion?.choices[0]?.message?.content).toEqual(expect.any(String));
  });

  it.each([false, true])('answers in text when a tool-call history comes without tools, as a summarising step sends it (stream: %s)', async (stream) => {
    const events = await chat({
      stream,
      messages: [
        { role: 'user', content: 'Weather in Paris?' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: '{"celsius":21}' },
        { role: 'user', content: 'Summarise this conversation in one sentence.' },
      ],
    });
    const text = events.map((e) => e.completion?.choices[0]?.message?.content ?? e.chunk?.choices.map((c) => c.delta?.content ?? '').join('') ?? '').join('');
    expect(text.length).toBeGreaterThan(0);
  });

  it('accepts an image part', async () => {
    const [only] = await chat({ messages: [{ role: 'user', content: [{ type: 'text', text: 'What is this?' }, { type: 'image_url', image_url: { url: PIXEL } }] }] });
    expect(only?.completion?.usage?.promptTokens).toBeGreaterThan(0);
  });

  it('answers JSON mode with a JSON object', async () => {
    const [only] = await chat({ response_format: { type: 'json_object' }, messages: [{ role: 'user', content: 'Give me a JSON object about cats' }] });
    const text = only?.completion?.choices[0]?.message?.content ?? '';
    expect(typeof JSON.parse(text)).toBe('object');
  });

  it('answers a request whose user is an email address and whose stop sequences include a newline', async () => {
    const [only] = await chat({ user: 'ada@example.com', stop: ['\n', 'END'], max_tokens: 32 });
    expect(only?.completion?.choices[0]?.message?.content).toEqual(expect.any(String));
  });

  const report = { type: 'json_schema', json_schema: { name: 'report', schema: { type: 'object', properties: { city: { type: 'string' }, celsius: { type: 'number' } }, required: ['city', 'celsius'] } } };

  it.each([false, true])('answers JSON mode next to tools it may not call in JSON (stream: %s)', async (stream) => {
    const events = await chat({ stream, tools: [weather], tool_choice: 'none', response_format: report, messages: [{ role: 'user', content: 'Report the weather in Paris.' }] });
    const text = events.map((e) => e.completion?.choices[0]?.message?.content ?? e.chunk?.choices.map((c) => c.delta?.content ?? '').join('') ?? '').join('');
    expect(JSON.parse(text)).toEqual(expect.objectContaining({ city: expect.any(String) }));
    const finish = events.flatMap((e) => [...(e.completion?.choices ?? []), ...(e.chunk?.choices ?? [])].map((c) => c.finishReason).filter(Boolean));
    expect(finish).toEqual(['stop']);
  });

  it('answers JSON mode next to tools it may call with a tool call or JSON', async () => {
    const [only] = await chat({ tools: [weather], response_format: report, messages: [{ role: 'user', content: 'Report the weather in Paris.' }] });
    const message = only?.completion?.choices[0]?.message;
    if (message?.toolCalls.length) expect(message.toolCalls[0]?.function?.name).toBe('get_weather');
    else expect(JSON.parse(message?.content ?? '')).toEqual(expect.any(Object));
  });

  it.each([
    [429, 'rate_limited', true],
    [500, 'upstream_error', true],
    [503, undefined, true],
  ] as const)('maps a provider %i to a canonical, retryable error', async (status, kind, retryable) => {
    sim.configure({ faults: [{ kind: 'http_error', status, retryAfterSeconds: status === 429 ? 2 : undefined }] });
    const error = await failure(() => chat({}));
    if (kind) expect(error.kind).toBe(kind);
    else expect(['unavailable', 'overloaded']).toContain(error.kind);
    expect(error.retryable).toBe(retryable);
    if (status === 429) expect(error.retryAfterMs).toBe(2_000);
  });

  it('maps a wrong credential to auth_failed', async () => {
    const error = await failure(() => chat({}, wrongKey));
    expect(error.kind).toBe('auth_failed');
  });

  it('maps a prompt over the context window to context_length_exceeded', async () => {
    sim.configure({ contextWindow: 50 });
    const error = await failure(() => chat({ messages: [{ role: 'user', content: 'many words '.repeat(200) }] }));
    expect(error.kind).toBe('context_length_exceeded');
  });

  it('ends a stream cut by the provider with an error, never a hang', async () => {
    sim.configure({ faults: [{ kind: 'drop_mid_stream', afterTokens: 2 }] });
    const error = await failure(() => chat({ stream: true, max_tokens: 32 }));
    expect(error.retryable).toBe(true);
  });

  it('times out a provider that does not answer', async () => {
    sim.configure({ faults: [{ kind: 'timeout' }] });
    const error = await failure(() => collect(adapter.chat({ ...call(parseChatRequest({ model: 'x', messages: [{ role: 'user', content: 'hi' }] })), timeoutMs: 300 })));
    expect(error.kind).toBe('timeout');
  });

  const embeddings = profile.embeddingModel;
  if (embeddings) {
    it(`embeds text with ${embeddings}`, async () => {
      const { request } = parseEmbeddingRequest({ model: 'public-id', input: ['first text', 'second text'], dimensions: 256 });
      const response = await adapter.embed({ requestId: 'req-e', upstreamModel: embeddings, request, timeoutMs: CALL_MS, signal: new AbortController().signal });
      expect(response.data).toHaveLength(2);
      expect(response.data[0]?.vectorF32le.length).toBe(256 * 4);
      expect(response.usage?.promptTokens).toBeGreaterThan(0);
    });
  } else {
    it('refuses embeddings with a clear bad request', async () => {
      const { request } = parseEmbeddingRequest({ model: 'public-id', input: 'text' });
      const error = await failure(() => adapter.embed({ requestId: 'req-e', upstreamModel: profile.chatModel, request, timeoutMs: CALL_MS, signal: new AbortController().signal }));
      expect(error.kind).toBe('bad_request');
    });
  }
});
