import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ProviderConfigOf } from '@openrouter/config';
import type { adapterv1, chatv1 } from '@openrouter/contracts';
import { parseChatRequest } from '@openrouter/openai-wire';
import { type RunningSimulator, startSimulator } from '@openrouter/provider-simulator';
import { ImageSource } from '../image-source';
import { countTextTokens } from '../text-tokens';
import type { ProviderAdapter } from '../provider-adapter';
import { createGeminiAdapter } from './gemini.adapter';
import { failure } from '../gateway-failure.testing';

const API_KEY = 'simulated-gemini-key';
const MODEL = 'gemini-2.5-flash';
const PNG = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000', 'hex');

function configFor(url: string, apiKey = API_KEY): ProviderConfigOf<'gemini'> {
  return { type: 'gemini', baseUrl: `${url}/v1beta`, apiKey, headers: { 'x-team': 'search' }, timeoutMs: 5000 };
}

const WEATHER_TOOL = {
  type: 'function',
  function: { name: 'get_weather', description: 'Current weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
};

// The test images are served from loopback, which the default policy refuses.
const context = { images: new ImageSource({ allowPrivateNetworks: true, allowedHosts: [] }) };

describe('Gemini adapter against the simulated Gemini API', () => {
  let sim: RunningSimulator;
  let adapter: ProviderAdapter;
  let images: Server;
  let imageUrl: string;

  beforeAll(async () => {
    sim = await startSimulator({ apiKey: API_KEY });
    adapter = createGeminiAdapter('gemini-test', configFor(sim.url), context);
    images = createServer((_req, res) => void res.writeHead(200, { 'content-type': 'image/png' }).end(PNG));
    await new Promise<void>((resolve) => images.listen(0, '127.0.0.1', resolve));
    imageUrl = `http://127.0.0.1:${(images.address() as AddressInfo).port}/cat.png`;
  });
  afterEach(() => sim.reset());
  afterAll(async () => {
    await adapter.close();
    await context.images.close();
    await sim.close();
    await new Promise<void>((resolve) => images.close(() => resolve()));
  });

  const call = <T>(request: T, upstreamModel = MODEL) => ({ requestId: 'req-1', upstreamModel, request, timeoutMs: 0, signal: new AbortController().signal });
  const chatRequest = (body: Record<string, unknown>): chatv1.ChatRequest => parseChatRequest({ model: 'public-model', messages: [{ role: 'user', content: 'Hello there' }], ...body });

  async function collect(request: chatv1.ChatRequest, target: ProviderAdapter = adapter): Promise<adapterv1.ChatResponse[]> {
    const out: adapterv1.ChatResponse[] = [];
    for await (const response of target.chat(call(request))) out.push(response);
    return out;
  }
  async function completion(body: Record<string, unknown>): Promise<chatv1.ChatCompletion> {
    const responses = await collect(chatRequest(body));
    expect(responses).toHaveLength(1);
    return responses[0]?.completion as chatv1.ChatCompletion;
  }
  async function chunks(body: Record<string, unknown>): Promise<chatv1.ChatChunk[]> {
    return (await collect(chatRequest({ stream: true, ...body }))).map((r) => r.chunk as chatv1.ChatChunk);
  }
  const contentOf = (list: chatv1.ChatChunk[]): string => list.map((c) => c.choices[0]?.delta?.content ?? '').join('');

  it('answers a plain chat with text, stop and exact usage, authenticated with x-goog-api-key', async () => {
    const answer = await completion({ messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello there' }], user: 'user-42' });
    expect(answer.choices[0]?.message?.content).toMatch(/\w+/);
    expect(answer.choices[0]?.finishReason).toBe('stop');
    expect(answer.model).toBe(MODEL);
    expect(answer.id).toMatch(/^chatcmpl-\w{23}$/);
    expect(answer.usage).toMatchObject({ completionTokens: 16, estimated: false, reasoningTokens: 0 });
    expect(answer.usage?.totalTokens).toBe((answer.usage?.promptTokens ?? 0) + 16);
    const seen = sim.requests()[0];
    expect(seen?.path).toBe('/v1beta/models/gemini-2.5-flash:generateContent');
    expect(seen?.headers['x-goog-api-key']).toBe('present');
    expect(seen?.headers['x-team']).toBe('search');
    expect(seen?.body).toEqual({ contents: [{ role: 'user', parts: [{ text: 'Hello there' }] }], systemInstruction: { parts: [{ text: 'Be brief.' }] } });
  });

  it('streams the same answer with a role chunk, a finish chunk and a usage chunk when asked', async () => {
    const plain = await completion({});
    const list = await chunks({ stream_options: { include_usage: true } });
    expect(sim.requests()[1]?.path).toBe('/v1beta/models/gemini-2.5-flash:streamGenerateContent');
    expect(list[0]?.choices[0]?.delta).toMatchObject({ role: 'assistant', content: '' });
    expect(contentOf(list)).toBe(plain.choices[0]?.message?.content);
    expect(list[list.length - 2]?.choices[0]?.finishReason).toBe('stop');
    const usage = list[list.length - 1];
    expect(usage?.choices).toEqual([]);
    expect(usage?.usage).toEqual(plain.usage);
    expect(new Set(list.map((c) => c.id)).size).toBe(1);
  });

  it('leaves the usage chunk out when the request did not ask for it', async () => {
    const list = await chunks({});
    expect(list.every((c) => c.choices.length === 1 && c.usage === undefined)).toBe(true);
    expect(list[list.length - 1]?.choices[0]?.finishReason).toBe('stop');
  });

  it('honours max_tokens, stop and n', async () => {
    const short = await completion({ max_tokens: 3 });
    expect(short.choices[0]?.finishReason).toBe('length');
    expect(short.usage?.completionTokens).toBe(3);
    const several = await completion({ n: 2 });
    expect(several.choices.map((c) => c.index)).toEqual([0, 1]);
    expect(sim.requests()[1]?.body).toMatchObject({ generationConfig: { candidateCount: 2 } });
  });

  it('forces a named tool call, non-streamed, with a synthesized stable call id', async () => {
    const answer = await completion({ tools: [WEATHER_TOOL], tool_choice: { type: 'function', function: { name: 'get_weather' } } });
    const choice = answer.choices[0];
    expect(choice?.finishReason).toBe('tool_calls');
    expect(choice?.message?.content).toBeUndefined();
    expect(choice?.message?.toolCalls).toEqual([{ id: expect.stringMatching(/^call_[A-Za-z0-9]{24}$/), type: 'function', function: { name: 'get_weather', arguments: expect.any(String) } }]);
    expect(JSON.parse(choice?.message?.toolCalls[0]?.function?.arguments ?? '')).toEqual({ city: expect.any(String) });
    expect(sim.requests()[0]?.body).toMatchObject({
      tools: [{ functionDeclarations: [{ name: 'get_weather', parameters: { type: 'OBJECT', properties: { city: { type: 'STRING' } }, required: ['city'] } }] }],
      toolConfig: { functionCallingConfig: { mode: 'ANY', allowedFunctionNames: ['get_weather'] } },
    });
  });

  it('streams a forced tool call as id/name first, then the arguments at the same index', async () => {
    const list = await chunks({ tools: [WEATHER_TOOL], tool_choice: 'required' });
    const deltas = list.flatMap((c) => c.choices[0]?.delta?.toolCalls ?? []);
    expect(deltas[0]).toEqual({ index: 0, id: expect.stringMatching(/^call_/), type: 'function', name: 'get_weather', arguments: '' });
    expect(deltas.slice(1).every((d) => d.index === 0 && d.id === undefined && d.name === undefined)).toBe(true);
    expect(JSON.parse(deltas.map((d) => d.arguments ?? '').join(''))).toEqual({ city: expect.any(String) });
    expect(list[list.length - 1]?.choices[0]?.finishReason).toBe('tool_calls');
    expect(sim.requests()[0]?.body).toMatchObject({ toolConfig: { functionCallingConfig: { mode: 'ANY' } } });
  });

  it('round-trips parallel tool results as one user turn of functionResponse parts, answered in text', async () => {
    const answer = await completion({
      tools: [WEATHER_TOOL],
      messages: [
        { role: 'user', content: 'Weather in Paris and Rome?' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            { id: 'call_a', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
            { id: 'call_b', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Rome"}' } },
          ],
        },
        { role: 'tool', tool_call_id: 'call_a', content: '{"sky":"sunny"}' },
        { role: 'tool', tool_call_id: 'call_b', content: 'rain' },
      ],
    });
    expect(answer.choices[0]?.finishReason).toBe('stop');
    expect(answer.choices[0]?.message?.content).toMatch(/^Tool result received\./);
    expect(sim.requests()[0]?.body).toMatchObject({
      contents: [
        { role: 'user' },
        {
          role: 'model',
          parts: [
            { functionCall: { name: 'get_weather', args: { city: 'Paris' } }, thoughtSignature: 'skip_thought_signature_validator' },
            { functionCall: { name: 'get_weather', args: { city: 'Rome' } } },
          ],
        },
        {
          role: 'user',
          parts: [{ functionResponse: { name: 'get_weather', response: { sky: 'sunny' } } }, { functionResponse: { name: 'get_weather', response: { result: 'rain' } } }],
        },
      ],
    });
  });

  it('sends images inline: a data URL decoded, a local http URL fetched', async () => {
    const dataUrl = `data:image/png;base64,${PNG.toString('base64')}`;
    const answer = await completion({
      messages: [{ role: 'user', content: [{ type: 'text', text: 'Compare these' }, { type: 'image_url', image_url: { url: dataUrl } }, { type: 'image_url', image_url: { url: imageUrl } }] }],
    });
    expect(answer.choices[0]?.finishReason).toBe('stop');
    const inline = { inlineData: { mimeType: 'image/png', data: PNG.toString('base64') } };
    expect(sim.requests()[0]?.body).toMatchObject({ contents: [{ role: 'user', parts: [{ text: 'Compare these' }, inline, inline] }] });
  });

  it('answers JSON mode with a JSON object, and json_schema with the schema sent as responseSchema', async () => {
    const object = await completion({ response_format: { type: 'json_object' } });
    expect(JSON.parse(object.choices[0]?.message?.content ?? '')).toEqual({ reply: expect.any(String) });
    expect(sim.requests()[0]?.body).toMatchObject({ generationConfig: { responseMimeType: 'application/json' } });

    const schema = { type: 'object', properties: { answer: { type: 'string' }, score: { type: 'integer' } }, required: ['answer', 'score'], additionalProperties: false };
    const list = await chunks({ response_format: { type: 'json_schema', json_schema: { name: 'rating', schema, strict: true } } });
    expect(JSON.parse(contentOf(list))).toEqual({ answer: expect.any(String), score: expect.any(Number) });
    expect(sim.requests()[1]?.body).toMatchObject({
      generationConfig: { responseMimeType: 'application/json', responseSchema: { type: 'OBJECT', properties: { answer: { type: 'STRING' }, score: { type: 'INTEGER' } }, propertyOrdering: ['answer', 'score'] } },
    });
  });

  it('sends a recursive schema as responseJsonSchema and still gets JSON back', async () => {
    const schema = { type: 'object', properties: { name: { type: 'string' }, children: { type: 'array', items: { $ref: '#' } } }, required: ['name'] };
    const answer = await completion({ response_format: { type: 'json_schema', json_schema: { name: 'tree', schema } } });
    expect(JSON.parse(answer.choices[0]?.message?.content ?? '')).toEqual({ name: expect.any(String) });
    expect(sim.requests()[0]?.body).toMatchObject({ generationConfig: { responseJsonSchema: schema } });
  });

  it('embeds in batches with outputDimensionality and estimated usage', async () => {
    const answer = await adapter.embed(call({ model: 'e', texts: ['alpha', 'beta gamma'], tokenInputs: [], dimensions: 256, user: undefined, extraJson: '' }, 'gemini-embedding-001'));
    expect(answer.data.map((d) => [d.index, d.vectorF32le.length])).toEqual([
      [0, 1024],
      [1, 1024],
    ]);
    expect(answer.model).toBe('gemini-embedding-001');
    expect(answer.usage).toMatchObject({ promptTokens: 3, totalTokens: 3, estimated: true });
    const seen = sim.requests()[0];
    expect(seen?.path).toBe('/v1beta/models/gemini-embedding-001:batchEmbedContents');
    expect(seen?.body).toEqual({
      requests: [
        { model: 'models/gemini-embedding-001', content: { parts: [{ text: 'alpha' }] }, outputDimensionality: 256 },
        { model: 'models/gemini-embedding-001', content: { parts: [{ text: 'beta gamma' }] }, outputDimensionality: 256 },
      ],
    });
    const vector = new Float32Array(answer.data[0]?.vectorF32le.buffer.slice(answer.data[0].vectorF32le.byteOffset, answer.data[0].vectorF32le.byteOffset + 1024) ?? new ArrayBuffer(0));
    expect(Math.hypot(...vector)).toBeCloseTo(1, 4);
  });

  it.each([
    [429, 'rate_limited', true],
    [500, 'upstream_error', true],
    [503, 'overloaded', true],
    [504, 'timeout', true],
    [400, 'bad_request', false],
    [404, 'not_found', true],
  ])('maps an HTTP %i from Gemini to %s', async (status, kind, retryable) => {
    sim.configure({ faults: [{ kind: 'http_error', status, retryAfterSeconds: status === 429 ? 2 : undefined }] });
    const error = await failure(collect(chatRequest({})));
    expect(error).toMatchObject({ kind, retryable, upstreamStatus: status, provider: 'gemini-test' });
    if (status === 429) expect(error.retryAfterMs).toBe(2000);
  });

  it('maps embedding failures the same way', async () => {
    sim.configure({ faults: [{ kind: 'http_error', status: 429, path: 'embeddings' }] });
    const error = await failure(adapter.embed(call({ model: 'e', texts: ['x'], tokenInputs: [], dimensions: undefined, user: undefined, extraJson: '' }, 'gemini-embedding-001')));
    expect(error).toMatchObject({ kind: 'rate_limited', retryAfterMs: 1000 });
  });

  it('maps a wrong or missing API key to auth_failed without the provider text', async () => {
    for (const key of ['not-the-key', '']) {
      const wrong = createGeminiAdapter('gemini-test', configFor(sim.url, key), context);
      try {
        const error = await failure(collect(chatRequest({}), wrong));
        expect(error).toMatchObject({ kind: 'auth_failed', retryable: true, upstreamStatus: key ? 400 : 403, code: 'upstream_auth_failed' });
        expect(error.message).not.toContain(key || 'unregistered');
      } finally {
        await wrong.close();
      }
    }
  });

  it('maps an over-long prompt to context_length_exceeded, streamed or not', async () => {
    sim.configure({ contextWindow: 10 });
    const long = { messages: [{ role: 'user', content: 'word '.repeat(50) }] };
    await expect(failure(collect(chatRequest(long)))).resolves.toMatchObject({ kind: 'context_length_exceeded', upstreamStatus: 400 });
    await expect(failure(collect(chatRequest({ ...long, stream: true })))).resolves.toMatchObject({ kind: 'context_length_exceeded' });
  });

  it('throws a GatewayError when the connection drops mid-stream, after the chunks already sent and the usage reported so far', async () => {
    sim.configure({ faults: [{ kind: 'drop_mid_stream', afterTokens: 3 }] });
    const seen: adapterv1.ChatResponse[] = [];
    const error = await failure(
      (async () => {
        for await (const r of adapter.chat(call(chatRequest({ stream: true, stream_options: { include_usage: true } })))) seen.push(r);
      })(),
    );
    expect(error).toMatchObject({ kind: 'upstream_error', retryable: true });
    const text = contentOf(seen.map((r) => r.chunk as chatv1.ChatChunk));
    expect(text).not.toBe('');
    // The provider bills what it made before the cut: its reported prompt, and (Gemini counts the
    // output only on its last event) the output streamed, estimated — not nothing.
    const usage = seen.at(-1)?.chunk?.usage;
    expect(seen.at(-1)?.chunk?.choices).toEqual([]);
    expect(usage).toMatchObject({ completionTokens: countTextTokens(text), estimated: true });
    expect(usage?.promptTokens).toBeGreaterThan(0);
  });

  it('sends no usage for a stream cut before any of its answer, so the router may still fail over', async () => {
    sim.configure({ faults: [{ kind: 'drop_mid_stream', afterTokens: 0 }] });
    const seen: adapterv1.ChatResponse[] = [];
    await failure(
      (async () => {
        for await (const r of adapter.chat(call(chatRequest({ stream: true, stream_options: { include_usage: true } })))) seen.push(r);
      })(),
    );
    // Cut before any of the answer: no usage chunk, so the router may still fail over.
    expect(seen.some((r) => r.chunk?.usage !== undefined)).toBe(false);
  });

  it('throws a GatewayError when a non-streamed body is cut short', async () => {
    sim.configure({ faults: [{ kind: 'drop_mid_stream' }] });
    await expect(failure(collect(chatRequest({})))).resolves.toMatchObject({ kind: 'upstream_error' });
  });

  it('refuses parameters it cannot honour before calling Gemini', async () => {
    await expect(failure(collect(chatRequest({ logit_bias: { '50256': -100 } })))).resolves.toMatchObject({ kind: 'bad_request', param: 'logit_bias' });
    expect(sim.requests()).toHaveLength(0);
  });
});
