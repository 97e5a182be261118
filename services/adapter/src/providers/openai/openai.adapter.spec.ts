import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { chatv1 } from '@openrouter/contracts';
import { parseChatRequest, parseEmbeddingRequest, parseOpenAIChunk } from '@openrouter/openai-wire';
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

  it('passes an OpenAI stream (usage only on its last, choice-less chunk) on unchanged', async () => {
    const chunks = await stream('stream-openai-usage-last');
    expect(chunks).toEqual(events('stream-openai-usage-last').map(parseOpenAIChunk));
    expect(metered(chunks)).toEqual({ prompt: 9, completion: 2 });
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
