import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import type { adapterv1, chatv1 } from '@openrouter/contracts';
import { carriesAnswer, parseChatRequest, parseEmbeddingRequest, parseOpenAIChunk } from '@openrouter/openai-wire';
import { type Fault, type RunningSimulator, startSimulator } from '@openrouter/provider-simulator';
import { failure } from '../gateway-failure.testing';
import type { ProviderAdapter } from '../provider-adapter';
import { createOpenAIAdapter } from './openai.adapter';

/** Recorded streams, served as they were sent: `fixtures/<name>.sse` at `/<name>/chat/completions`. */
const fixture = (name: string): string => readFileSync(join(__dirname, 'fixtures', `${name}.sse`), 'utf8');
const events = (name: string): unknown[] =>
  fixture(name)
    .split('\n')
    .filter((line) => line.startsWith('data: ') && line !== 'data: [DONE]')
    .map((line) => JSON.parse(line.slice('data: '.length)) as unknown);

describe('OpenAI adapter streaming usage', () => {
  let server: Server;
  let base: string;
  const adapters: ProviderAdapter[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      const name = /^\/([a-z-]+)\/chat\/completions$/.exec(req.url ?? '')?.[1] ?? '';
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(fixture(name));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await Promise.all(adapters.map((a) => a.close()));
    server.close();
  });

  async function stream(name: string): Promise<chatv1.ChatChunk[]> {
    const adapter = createOpenAIAdapter('compat', { type: 'openai', baseUrl: `${base}/${name}`, apiKey: 'k', outputLimit: 'max_tokens', dropParams: [], headers: {}, timeoutMs: 5_000 });
    adapters.push(adapter);
    const request = parseChatRequest({ model: 'm', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'hi' }] });
    const chunks: chatv1.ChatChunk[] = [];
    for await (const event of adapter.chat({ requestId: 'r', upstreamModel: 'm', request, timeoutMs: 5_000, signal: new AbortController().signal })) {
      if (event.chunk) chunks.push(event.chunk);
    }
    return chunks;
  }

  /** Like `stream`, keeping the chunks received before the adapter threw. */
  async function streamUntilError(name: string, into: chatv1.ChatChunk[]): Promise<chatv1.ChatChunk[]> {
    const adapter = createOpenAIAdapter('compat', { type: 'openai', baseUrl: `${base}/${name}`, apiKey: 'k', outputLimit: 'max_tokens', dropParams: [], headers: {}, timeoutMs: 5_000 });
    adapters.push(adapter);
    const request = parseChatRequest({ model: 'm', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'hi' }] });
    for await (const event of adapter.chat({ requestId: 'r', upstreamModel: 'm', request, timeoutMs: 5_000, signal: new AbortController().signal })) {
      if (event.chunk) into.push(event.chunk);
    }
    return into;
  }

  /** What the ingress meters: the usage of every chunk added up. */
  const metered = (chunks: chatv1.ChatChunk[]) =>
    chunks.reduce((sum, c) => ({ prompt: sum.prompt + (c.usage?.promptTokens ?? 0), completion: sum.completion + (c.usage?.completionTokens ?? 0) }), { prompt: 0, completion: 0 });

  it.each([
    // Google's OpenAI-compatible endpoint: the running total on every chunk, no usage-only chunk.
    ['stream-cumulative-usage', { prompt: 100, completion: 3 }, 'Hello world'],
    // vLLM with continuous_usage_stats: the running total on every chunk, then a usage-only chunk.
    ['stream-continuous-usage-stats', { prompt: 12, completion: 3 }, 'Hi there!'],
  ])('passes %s on with the usage once, last, in a chunk without choices', async (name, usage, text) => {
    const chunks = await stream(name);
    expect(metered(chunks)).toEqual(usage);
    const last = chunks[chunks.length - 1] as chatv1.ChatChunk;
    expect(last.choices).toEqual([]);
    expect(last.usage).toMatchObject({ promptTokens: usage.prompt, completionTokens: usage.completion, totalTokens: usage.prompt + usage.completion });
    expect(chunks.slice(0, -1).every((c) => c.usage === undefined && c.choices.length > 0)).toBe(true);
    expect(chunks.flatMap((c) => c.choices.map((ch) => ch.delta?.content ?? '')).join('')).toBe(text);
    expect(chunks.flatMap((c) => c.choices.map((ch) => ch.finishReason).filter(Boolean))).toEqual(['stop']);
  });

  it('passes on the usage a stream reported before it was cut short of [DONE], then fails', async () => {
    const chunks: chatv1.ChatChunk[] = [];
    const failure = await (async () => {
      try {
        for (const chunk of await streamUntilError('stream-cut-after-usage', chunks)) void chunk;
      } catch (error) {
        return error;
      }
      return undefined;
    })();
    expect(failure).toMatchObject({ kind: 'upstream_error' });
    // The reasoning the provider billed is metered, not estimated from the visible text.
    expect(metered(chunks)).toEqual({ prompt: 20, completion: 4000 });
  });

  it.each([
    // vLLM's reasoning parser: the reasoning streams as `reasoning_content`, the running usage on every chunk.
    ['stream-reasoning-cut', { prompt: 30, completion: 870 }],
    // A refusal streams as `refusal` deltas, with no content.
    ['stream-refusal-cut', { prompt: 15, completion: 3 }],
  ])('passes on the usage of %s, whose answer had begun with reasoning or a refusal only, when it is cut before [DONE]', async (name, usage) => {
    const chunks: chatv1.ChatChunk[] = [];
    expect(await failure(streamUntilError(name, chunks))).toMatchObject({ kind: 'upstream_error' });
    // The router committed the request to this deployment at those deltas: what the provider billed for them is metered.
    expect(chunks.some((c) => c.usage === undefined && carriesAnswer({ chunk: c }))).toBe(true);
    expect(metered(chunks)).toEqual(usage);
    expect(chunks[chunks.length - 1]?.choices).toEqual([]);
  });

  it('reads an error event by its own status (vLLM: a 500) and passes on the usage reported before it once the answer had begun', async () => {
    const chunks: chatv1.ChatChunk[] = [];
    expect(await failure(streamUntilError('stream-reasoning-then-error', chunks))).toMatchObject({ kind: 'upstream_error', upstreamStatus: 500, retryable: true });
    expect(metered(chunks)).toEqual({ prompt: 40, completion: 500 });
  });

  it('passes an OpenAI stream (usage only on its last, choice-less chunk) on unchanged', async () => {
    const chunks = await stream('stream-openai-usage-last');
    expect(chunks).toEqual(events('stream-openai-usage-last').map(parseOpenAIChunk));
    expect(metered(chunks)).toEqual({ prompt: 9, completion: 2 });
  });
});

describe('OpenAI adapter streams cut by the connection', () => {
  let server: Server;
  let base: string;
  const adapters: ProviderAdapter[] = [];
  /** The answer being sent, held open until the test cuts its connection. */
  let held: ServerResponse | undefined;

  beforeAll(async () => {
    // vLLM with continuous_usage_stats: the running usage on every chunk. The answer stops after its
    // third chunk and stays open; the test then cuts the connection.
    const lines = fixture('stream-continuous-usage-stats').split('\n\n').slice(0, 3);
    server = createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      for (const line of lines) res.write(`${line}\n\n`);
      held = res;
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await Promise.all(adapters.map((a) => a.close()));
    server.close();
  });

  const metered = (chunks: chatv1.ChatChunk[]) =>
    chunks.reduce((sum, c) => ({ prompt: sum.prompt + (c.usage?.promptTokens ?? 0), completion: sum.completion + (c.usage?.completionTokens ?? 0) }), { prompt: 0, completion: 0 });

  it.each<[string, (socket: Socket) => void]>([
    ['reset', (socket) => socket.resetAndDestroy()],
    ['closed before its chunked body ended', (socket) => socket.destroy()],
  ])('passes on the usage reported before a stream whose connection was %s, then fails', async (_name, cut) => {
    const adapter = createOpenAIAdapter('vllm', { type: 'openai', baseUrl: base, apiKey: 'k', outputLimit: 'max_tokens', dropParams: [], headers: {}, timeoutMs: 5_000 });
    adapters.push(adapter);
    const request = parseChatRequest({ model: 'm', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'hi' }] });
    const chunks: chatv1.ChatChunk[] = [];
    const read = async (): Promise<void> => {
      for await (const event of adapter.chat({ requestId: 'r', upstreamModel: 'm', request, timeoutMs: 5_000, signal: new AbortController().signal })) {
        if (!event.chunk) continue;
        chunks.push(event.chunk);
        // The answer has begun and its last sent chunk arrived: the connection goes now.
        if (event.chunk.choices[0]?.delta?.content === ' there') cut(held?.socket as Socket);
      }
    };
    expect(await failure(read())).toMatchObject({ kind: 'upstream_error', provider: 'vllm', message: 'The provider "vllm" closed the stream unexpectedly.' });
    expect(chunks.flatMap((c) => c.choices.map((ch) => ch.delta?.content ?? '')).join('')).toBe('Hi there');
    // What the provider reported by then, once, in a last chunk without choices: billed, not estimated.
    expect(metered(chunks)).toEqual({ prompt: 12, completion: 2 });
    expect(chunks[chunks.length - 1]?.choices).toEqual([]);
  });
});

describe('OpenAI adapter request body', () => {
  let server: Server;
  let base: string;
  const received: unknown[] = [];
  const adapters: ProviderAdapter[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      let text = '';
      req.on('data', (chunk: Buffer) => (text += chunk.toString()));
      req.on('end', () => {
        received.push(JSON.parse(text));
        res.writeHead(200, { 'content-type': 'application/json' });
        const completion = { id: 'c', object: 'chat.completion', created: 1, model: 'm', choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }] };
        const embedding = { object: 'list', model: 'e', data: [{ object: 'embedding', index: 0, embedding: [1, 0] }], usage: { prompt_tokens: 1, total_tokens: 1 } };
        res.end(JSON.stringify(req.url?.endsWith('/embeddings') ? embedding : completion));
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await Promise.all(adapters.map((a) => a.close()));
    server.close();
  });

  function adapter(): ProviderAdapter {
    const created = createOpenAIAdapter('compat', { type: 'openai', baseUrl: base, apiKey: 'k', outputLimit: undefined, dropParams: [], headers: {}, timeoutMs: 5_000 });
    adapters.push(created);
    return created;
  }

  it('leaves out top-level parameters sent as null, which strict servers refuse, and keeps nulls inside messages', async () => {
    const request = parseChatRequest({
      model: 'm',
      messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{}' } }] }, { role: 'tool', tool_call_id: 'c1', content: 'x' }],
      tools: null,
      tool_choice: null,
      response_format: null,
      temperature: null,
      stop: null,
      max_tokens: null,
      seed: null,
      user: null,
      stream_options: null,
      metadata: null,
      vendor_knob: null,
      safe_prompt: true,
    });
    for await (const event of adapter().chat({ requestId: 'r', upstreamModel: 'm', request, timeoutMs: 5_000, signal: new AbortController().signal })) void event;
    const body = received.pop() as Record<string, unknown>;
    expect(Object.values(body)).not.toContain(null);
    expect(Object.keys(body).sort()).toEqual(['messages', 'model', 'safe_prompt']);
    expect((body['messages'] as Array<Record<string, unknown>>)[1]).toMatchObject({ role: 'assistant', content: null });
  });

  it('leaves out top-level embedding parameters sent as null', async () => {
    const { request } = parseEmbeddingRequest({ model: 'e', input: 'hi', dimensions: null, user: null, vendor_knob: null });
    await adapter().embed({ requestId: 'r', upstreamModel: 'e', request, timeoutMs: 5_000, signal: new AbortController().signal });
    expect(received.pop()).toEqual({ model: 'e', input: ['hi'], encoding_format: 'base64' });
  });
});

describe('OpenAI adapter embeddings answers', () => {
  let server: Server;
  let base: string;
  const adapters: ProviderAdapter[] = [];
  const vector = (values: readonly number[]): string => {
    const bytes = Buffer.alloc(values.length * 4);
    values.forEach((v, i) => bytes.writeFloatLE(v, i * 4));
    return bytes.toString('base64');
  };
  const floats = (bytes: Uint8Array): number[] => Array.from({ length: bytes.byteLength / 4 }, (_, i) => Buffer.from(bytes).readFloatLE(i * 4));
  /** Answers as compatible servers do: `/no-usage` without usage, `/reversed` in another order than the inputs, `/fixed-size` ignoring `dimensions`. */
  const answers: Record<string, (inputs: number) => unknown> = {
    'no-usage': (n) => ({ object: 'list', model: 'e', data: Array.from({ length: n }, (_, i) => ({ object: 'embedding', index: i, embedding: vector([i, 0]) })) }),
    'zero-usage': (n) => ({ object: 'list', model: 'e', data: Array.from({ length: n }, (_, i) => ({ object: 'embedding', index: i, embedding: vector([i, 0]) })), usage: { prompt_tokens: 0, total_tokens: 0 } }),
    reversed: (n) => ({ object: 'list', model: 'e', data: Array.from({ length: n }, (_, i) => ({ object: 'embedding', index: n - 1 - i, embedding: vector([n - 1 - i, 0]) })), usage: { prompt_tokens: n, total_tokens: n } }),
    'fixed-size': (n) => ({ object: 'list', model: 'e', data: Array.from({ length: n }, (_, i) => ({ object: 'embedding', index: i, embedding: vector([i, 0, 0, 0]) })), usage: { prompt_tokens: n, total_tokens: n } }),
  };

  beforeAll(async () => {
    server = createServer((req, res) => {
      let text = '';
      req.on('data', (chunk: Buffer) => (text += chunk.toString()));
      req.on('end', () => {
        const body = JSON.parse(text) as { input: unknown[] };
        const answer = answers[/^\/([a-z-]+)\/embeddings$/.exec(req.url ?? '')?.[1] ?? ''];
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(answer?.(body.input.length)));
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await Promise.all(adapters.map((a) => a.close()));
    server.close();
  });

  function embed(name: string, body: Record<string, unknown>): Promise<chatv1.EmbeddingResponse> {
    const adapter = createOpenAIAdapter('compat', { type: 'openai', baseUrl: `${base}/${name}`, apiKey: 'k', outputLimit: undefined, dropParams: [], headers: {}, timeoutMs: 5_000 });
    adapters.push(adapter);
    const { request } = parseEmbeddingRequest({ model: 'e', ...body });
    return adapter.embed({ requestId: 'r', upstreamModel: 'e', request, timeoutMs: 5_000, signal: new AbortController().signal });
  }

  it.each(['no-usage', 'zero-usage'])('counts the input itself, marked estimated, when the server reports no usage (%s), so the request is billed', async (name) => {
    const text = await embed(name, { input: ['hello world', 'one more sentence'] });
    expect(text.usage).toMatchObject({ completionTokens: 0, estimated: true });
    expect(text.usage?.promptTokens).toBeGreaterThan(3);
    expect(text.usage?.totalTokens).toBe(text.usage?.promptTokens);
    // Token ids count exactly.
    expect((await embed(name, { input: [[1, 2, 3], [4, 5]] })).usage).toMatchObject({ promptTokens: 5, totalTokens: 5, estimated: true });
  });

  it('puts the vectors in input order whatever order the server listed them in', async () => {
    const answer = await embed('reversed', { input: ['a', 'b', 'c'] });
    expect(answer.data.map((d) => d.index)).toEqual([0, 1, 2]);
    expect(answer.data.map((d) => floats(d.vectorF32le)[0])).toEqual([0, 1, 2]);
  });

  it('refuses `dimensions` as unsupported when the server ignored it, rather than hand back vectors of another length', async () => {
    await expect(embed('fixed-size', { input: ['a'], dimensions: 2 })).rejects.toMatchObject({ kind: 'bad_request', param: 'dimensions', code: 'unsupported_parameter' });
    expect((await embed('fixed-size', { input: ['a'], dimensions: 4 })).data[0]?.vectorF32le.byteLength).toBe(16);
  });
});

describe('OpenAI adapter errors from the simulated provider', () => {
  let sim: RunningSimulator;
  const adapters: ProviderAdapter[] = [];

  beforeAll(async () => {
    sim = await startSimulator();
  });
  afterEach(() => sim.reset());
  afterAll(async () => {
    await Promise.all(adapters.map((a) => a.close()));
    await sim.close();
  });

  function adapter(): ProviderAdapter {
    const created = createOpenAIAdapter('sim', { type: 'openai', baseUrl: sim.baseUrl, apiKey: 'k', outputLimit: undefined, dropParams: [], headers: {}, timeoutMs: 5_000 });
    adapters.push(created);
    return created;
  }

  async function chat(body: Record<string, unknown>, into: adapterv1.ChatResponse[] = []): Promise<adapterv1.ChatResponse[]> {
    const request = parseChatRequest({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }], ...body });
    for await (const event of adapter().chat({ requestId: 'r', upstreamModel: 'gpt-4o', request, timeoutMs: 5_000, signal: new AbortController().signal })) into.push(event);
    return into;
  }

  it.each<[string, string, boolean, Partial<Fault>]>([
    ['context_length_exceeded', 'context_length_exceeded', false, { status: 400, code: 'context_length_exceeded', message: "This model's maximum context length is 128000 tokens." }],
    ['content_filter', 'content_filtered', false, { status: 400, code: 'content_filter', message: 'The response was filtered due to the prompt triggering content management policy.' }],
    ['invalid_request_error', 'bad_request', false, { status: 400 }],
    ["LiteLLM's code \"400\" on a server_error", 'bad_request', false, { status: 500, code: '400', message: 'litellm.BadRequestError: invalid tools' }],
    ['rate_limit_exceeded', 'rate_limited', true, { status: 429 }],
    ['server_error', 'upstream_error', true, { status: 500 }],
  ])('reads an error event sent after the 200 (%s) as %s, retryable %s: not always as a provider failure', async (_name, kind, retryable, fault) => {
    sim.configure({ faults: [{ kind: 'http_error', afterTokens: 0, ...fault }] });
    expect(await failure(chat({ stream: true }))).toMatchObject({ kind, retryable, provider: 'sim' });
  });

  it('reads an error event after part of the answer the same way, the part passed on first', async () => {
    sim.configure({ faults: [{ kind: 'http_error', status: 400, code: 'content_filter', afterTokens: 2 }] });
    const events: adapterv1.ChatResponse[] = [];
    expect(await failure(chat({ stream: true }, events))).toMatchObject({ kind: 'content_filtered', code: 'content_filter', retryable: false });
    expect(events.flatMap((e) => e.chunk?.choices.map((c) => c.delta?.content ?? '') ?? []).filter(Boolean)).toHaveLength(2);
  });

  it("reads OpenAI's insufficient_quota inside a stream as the account's quota, which another deployment may not share", async () => {
    sim.configure({ faults: [{ kind: 'http_error', status: 429, code: 'insufficient_quota', afterTokens: 0 }] });
    expect(await failure(chat({ stream: true }))).toMatchObject({ kind: 'upstream_error', code: 'upstream_quota_exceeded', retryable: true });
  });

  it('reads a whole answer cut mid-body as the provider failing, not as a provider that could not be reached', async () => {
    sim.configure({ faults: [{ kind: 'drop_mid_stream', path: 'chat' }] });
    const cut = await failure(chat({}));
    expect(cut).toMatchObject({ kind: 'upstream_error', retryable: true });
    expect(cut.message).toBe('The provider "sim" closed the connection before the answer was complete.');
    sim.configure({ faults: [{ kind: 'drop_mid_stream', path: 'embeddings' }] });
    const { request } = parseEmbeddingRequest({ model: 'text-embedding-3-small', input: 'hi' });
    const embedding = await failure(adapter().embed({ requestId: 'r', upstreamModel: 'text-embedding-3-small', request, timeoutMs: 5_000, signal: new AbortController().signal }));
    expect(embedding).toMatchObject({ kind: 'upstream_error', message: 'The provider "sim" closed the connection before the answer was complete.' });
  });
});
