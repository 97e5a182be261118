import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ProviderConfigOf } from '@openrouter/config';
import type { adapterv1, chatv1 } from '@openrouter/contracts';
import { parseChatRequest } from '@openrouter/openai-wire';
import { type RunningSimulator, startSimulator } from '@openrouter/provider-simulator';
import { ImageSource } from '../image-source';
import type { ProviderAdapter } from '../provider-adapter';
import { createBedrockAdapter } from './bedrock.adapter';
import { failure } from '../gateway-failure.testing';

const SECRET = 'simulated-secret-access-key';
const MODEL = 'anthropic.claude-3-5-sonnet-20241022-v2:0';
const PNG = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000', 'hex');

function configFor(url: string, secretAccessKey = SECRET): ProviderConfigOf<'bedrock'> {
  return { type: 'bedrock', region: 'us-east-1', baseUrl: url, credentials: { accessKeyId: 'AKIDSIMULATED', secretAccessKey }, thinking: 'adaptive', claudeModels: [], headers: {}, timeoutMs: 5000 };
}

const WEATHER_TOOL = {
  type: 'function',
  function: { name: 'get_weather', description: 'Current weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
};

// The test images are served from loopback, which the default policy refuses.
const context = { images: new ImageSource({ allowPrivateNetworks: true, allowedHosts: [] }) };

describe('Bedrock adapter against the simulated Bedrock Runtime', () => {
  let sim: RunningSimulator;
  let adapter: ProviderAdapter;
  let images: Server;
  let imageUrl: string;

  beforeAll(async () => {
    sim = await startSimulator({ apiKey: SECRET });
    adapter = createBedrockAdapter('bedrock-test', configFor(sim.url), context);
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

  it('answers a plain chat with text, stop and exact usage, signed with SigV4', async () => {
    const answer = await completion({ messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello there' }] });
    expect(answer.choices[0]?.message?.content).toMatch(/\w+/);
    expect(answer.choices[0]?.finishReason).toBe('stop');
    expect(answer.model).toBe(MODEL);
    expect(answer.id).toMatch(/^chatcmpl-[0-9a-f-]{36}$/);
    expect(answer.usage).toMatchObject({ completionTokens: 16, estimated: false });
    expect(answer.usage?.totalTokens).toBe((answer.usage?.promptTokens ?? 0) + 16);
    const seen = sim.requests()[0];
    expect(seen?.path).toBe('/model/anthropic.claude-3-5-sonnet-20241022-v2%3A0/converse');
    expect(seen?.headers['authorization']).toBe('present');
    expect(seen?.body).toMatchObject({ system: [{ text: 'Be brief.' }], messages: [{ role: 'user', content: [{ text: 'Hello there' }] }] });
  });

  it('streams the same answer with a role chunk, a finish chunk and a usage chunk when asked', async () => {
    const plain = await completion({});
    const list = await chunks({ stream_options: { include_usage: true } });
    expect(list[0]?.choices[0]?.delta).toMatchObject({ role: 'assistant', content: '' });
    expect(contentOf(list)).toBe(plain.choices[0]?.message?.content);
    const finish = list[list.length - 2];
    expect(finish?.choices[0]?.finishReason).toBe('stop');
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

  it('honours max_tokens with finish_reason length', async () => {
    const answer = await completion({ max_tokens: 3 });
    expect(answer.choices[0]?.finishReason).toBe('length');
    expect(answer.usage?.completionTokens).toBe(3);
  });

  it('names the stop sequence that ended the answer: Claude says which; another model, when only one was sent', async () => {
    const full = (await completion({})).choices[0]?.message?.content ?? '';
    const [early, late] = [full.split(' ')[2] ?? '', full.split(' ')[4] ?? ''];
    const ended = async (body: Record<string, unknown>, upstreamModel: string) => {
      const request = chatRequest(body);
      const whole: adapterv1.ChatResponse[] = [];
      for await (const response of adapter.chat(call(request, upstreamModel))) whole.push(response);
      const streamed: adapterv1.ChatResponse[] = [];
      for await (const response of adapter.chat(call({ ...request, stream: true }, upstreamModel))) streamed.push(response);
      const finish = streamed.map((r) => r.chunk?.choices[0]).find((c) => c?.finishReason !== undefined);
      return { whole: whole[0]?.completion?.choices[0]?.stopSequence, streamed: finish?.stopSequence };
    };
    await expect(ended({ stop: [late, early] }, MODEL)).resolves.toEqual({ whole: early, streamed: early });
    const llama = 'meta.llama3-70b-instruct-v1:0';
    await expect(ended({ stop: [early] }, llama)).resolves.toEqual({ whole: early, streamed: early });
    await expect(ended({ stop: [late, early] }, llama)).resolves.toEqual({ whole: undefined, streamed: undefined });
  });

  it('forces a named tool call, non-streamed', async () => {
    const answer = await completion({ tools: [WEATHER_TOOL], tool_choice: { type: 'function', function: { name: 'get_weather' } } });
    const choice = answer.choices[0];
    expect(choice?.finishReason).toBe('tool_calls');
    expect(choice?.message?.content).toBeUndefined();
    expect(choice?.message?.toolCalls).toEqual([{ id: expect.stringMatching(/^tooluse_/), type: 'function', function: { name: 'get_weather', arguments: expect.any(String) } }]);
    expect(JSON.parse(choice?.message?.toolCalls[0]?.function?.arguments ?? '')).toEqual({ city: expect.any(String) });
    expect(sim.requests()[0]?.body).toMatchObject({ toolConfig: { toolChoice: { tool: { name: 'get_weather' } } } });
  });

  it('streams a forced tool call as id/name first, then argument fragments at the same index', async () => {
    const list = await chunks({ tools: [WEATHER_TOOL], tool_choice: 'required' });
    const deltas = list.flatMap((c) => c.choices[0]?.delta?.toolCalls ?? []);
    expect(deltas[0]).toEqual({ index: 0, id: expect.stringMatching(/^tooluse_/), type: 'function', name: 'get_weather', arguments: '' });
    expect(deltas.slice(1).every((d) => d.index === 0 && d.id === undefined && d.name === undefined)).toBe(true);
    expect(JSON.parse(deltas.map((d) => d.arguments ?? '').join(''))).toEqual({ city: expect.any(String) });
    expect(list[list.length - 1]?.choices[0]?.finishReason).toBe('tool_calls');
    expect(sim.requests()[0]?.body).toMatchObject({ toolConfig: { toolChoice: { any: {} } } });
  });

  it('round-trips a tool result: toolUse in the assistant turn, toolResult in a user turn, text answer', async () => {
    const answer = await completion({
      tools: [WEATHER_TOOL],
      messages: [
        { role: 'user', content: 'Weather in Paris and Rome?' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            { id: 'tooluse_a', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
            { id: 'tooluse_b', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Rome"}' } },
          ],
        },
        { role: 'tool', tool_call_id: 'tooluse_a', content: 'sunny' },
        { role: 'tool', tool_call_id: 'tooluse_b', content: 'rain' },
      ],
    });
    expect(answer.choices[0]?.finishReason).toBe('stop');
    expect(answer.choices[0]?.message?.content).toMatch(/^Tool result received\./);
    expect(sim.requests()[0]?.body).toMatchObject({
      messages: [
        { role: 'user' },
        { role: 'assistant', content: [{ toolUse: { toolUseId: 'tooluse_a', input: { city: 'Paris' } } }, { toolUse: { toolUseId: 'tooluse_b', input: { city: 'Rome' } } }] },
        { role: 'user', content: [{ toolResult: { toolUseId: 'tooluse_a', content: [{ text: 'sunny' }] } }, { toolResult: { toolUseId: 'tooluse_b', content: [{ text: 'rain' }] } }] },
      ],
    });
  });

  it('fetches an image URL and sends it inline as bytes', async () => {
    const answer = await completion({ messages: [{ role: 'user', content: [{ type: 'text', text: 'What is this?' }, { type: 'image_url', image_url: { url: imageUrl } }] }] });
    expect(answer.choices[0]?.finishReason).toBe('stop');
    expect(sim.requests()[0]?.body).toMatchObject({ messages: [{ content: [{ text: 'What is this?' }, { image: { format: 'png', source: { bytes: PNG.toString('base64') } } }] }] });
  });

  it('answers JSON mode with a JSON object, and json_schema through a forced tool as text', async () => {
    const object = await completion({ response_format: { type: 'json_object' } });
    expect(JSON.parse(object.choices[0]?.message?.content ?? '')).toEqual({ reply: expect.any(String) });

    const schema = { type: 'object', properties: { answer: { type: 'string' }, score: { type: 'integer' } }, required: ['answer', 'score'] };
    const structured = await completion({ response_format: { type: 'json_schema', json_schema: { name: 'rating', schema } } });
    expect(structured.choices[0]?.finishReason).toBe('stop');
    expect(structured.choices[0]?.message?.toolCalls).toEqual([]);
    expect(JSON.parse(structured.choices[0]?.message?.content ?? '')).toEqual({ answer: expect.any(String), score: expect.any(Number) });

    const streamed = await chunks({ response_format: { type: 'json_schema', json_schema: { name: 'rating', schema } } });
    expect(JSON.parse(contentOf(streamed))).toEqual({ answer: expect.any(String), score: expect.any(Number) });
    expect(streamed.every((c) => (c.choices[0]?.delta?.toolCalls ?? []).length === 0)).toBe(true);
    expect(streamed[streamed.length - 1]?.choices[0]?.finishReason).toBe('stop');
  });

  it('embeds with Titan v2 (one call per input, dimensions, usage from the body)', async () => {
    const answer = await adapter.embed(call({ model: 'e', texts: ['alpha', 'beta gamma'], tokenInputs: [], dimensions: 256, user: undefined, extraJson: '' }, 'amazon.titan-embed-text-v2:0'));
    expect(answer.data.map((d) => [d.index, d.vectorF32le.length])).toEqual([
      [0, 1024],
      [1, 1024],
    ]);
    expect(answer.usage?.promptTokens).toBeGreaterThanOrEqual(3);
    const bodies = sim.requests().map((r) => r.body);
    expect(bodies).toEqual(expect.arrayContaining([{ inputText: 'alpha', dimensions: 256, normalize: true }, { inputText: 'beta gamma', dimensions: 256, normalize: true }]));
  });

  it('starts no further Titan call once one failed: the request has failed, and nothing aborts the calls left', async () => {
    sim.configure({ faults: [{ kind: 'http_error', status: 429, path: 'embeddings', remaining: 1 }] });
    const texts = Array.from({ length: 24 }, (_, i) => `text ${i}`);
    // The signal of a call the gRPC server has answered is never aborted.
    await expect(adapter.embed(call({ model: 'e', texts, tokenInputs: [], dimensions: undefined, user: undefined, extraJson: '' }, 'amazon.titan-embed-text-v2:0'))).rejects.toMatchObject({ kind: 'rate_limited' });
    // 4 calls run at a time, all started before any answered: those 4, and no more.
    const ended = (): number => sim.requests().filter((r) => r.endedAt !== undefined).length;
    await sim.waitForRequest(() => ended() >= 4);
    // One more round trip on the same adapter: any call still being started would show by its end.
    await adapter.embed(call({ model: 'e', texts: ['marker'], tokenInputs: [], dimensions: undefined, user: undefined, extraJson: '' }, 'amazon.titan-embed-text-v2:0'));
    expect(sim.requests().map((r) => (r.body as { inputText: string }).inputText).filter((t) => t !== 'marker')).toHaveLength(4);
  });

  it('embeds with Cohere (one batched call, input_type, output_dimension, usage from the header)', async () => {
    const answer = await adapter.embed(call({ model: 'e', texts: ['one', 'two', 'three'], tokenInputs: [], dimensions: 512, user: undefined, extraJson: '{"input_type":"search_query"}' }, 'cohere.embed-v4:0'));
    expect(answer.data.map((d) => d.vectorF32le.length / 4)).toEqual([512, 512, 512]);
    expect(answer.usage?.promptTokens).toBe(3);
    expect(sim.requests()).toHaveLength(1);
    expect(sim.requests()[0]?.body).toEqual({ texts: ['one', 'two', 'three'], input_type: 'search_query', embedding_types: ['float'], output_dimension: 512 });
  });

  it.each([
    [429, 'rate_limited', true],
    [500, 'upstream_error', true],
    [503, 'unavailable', true],
    [400, 'bad_request', false],
    [404, 'not_found', true],
  ])('maps an HTTP %i from Bedrock to %s', async (status, kind, retryable) => {
    sim.configure({ faults: [{ kind: 'http_error', status, retryAfterSeconds: status === 429 ? 2 : undefined }] });
    const error = await failure(collect(chatRequest({})));
    expect(error).toMatchObject({ kind, retryable, upstreamStatus: status, provider: 'bedrock-test' });
    if (status === 429) expect(error.retryAfterMs).toBe(2000);
  });

  it("maps Bedrock's refusal of the deployment's model id to a retryable not_found, so another deployment may serve", async () => {
    sim.configure({ faults: [{ kind: 'http_error', status: 400, code: 'ValidationException', message: 'The provided model identifier is invalid.' }] });
    await expect(failure(collect(chatRequest({})))).resolves.toMatchObject({ kind: 'not_found', retryable: true, upstreamStatus: 400 });
  });

  it("keeps an AccessDeniedException's account and role from the error's message, streamed or not", async () => {
    const message = 'User: arn:aws:sts::123456789012:assumed-role/GatewayRole/i-0abc is not authorized to perform: bedrock:InvokeModel';
    sim.configure({ faults: [{ kind: 'http_error', status: 403, code: 'AccessDeniedException', message }] });
    const error = await failure(collect(chatRequest({})));
    expect(error).toMatchObject({ kind: 'permission_denied', retryable: true, code: 'upstream_access_denied' });
    expect(error.message).not.toContain('123456789012');
    sim.configure({ faults: [{ kind: 'http_error', status: 403, code: 'AccessDeniedException', message, afterTokens: 1 }] });
    const streamed = await failure(collect(chatRequest({ stream: true })));
    expect(streamed).toMatchObject({ kind: 'permission_denied', code: 'upstream_access_denied' });
    expect(streamed.message).not.toContain('GatewayRole');
  });

  it('reports an answer cut mid-body as the provider failing, not as unreachable', async () => {
    sim.configure({ faults: [{ kind: 'drop_mid_stream' }] });
    await expect(failure(collect(chatRequest({})))).resolves.toMatchObject({ kind: 'upstream_error', retryable: true, message: expect.stringContaining('before the answer was complete') });
  });

  it('maps a wrong secret to auth_failed without the provider text', async () => {
    const wrong = createBedrockAdapter('bedrock-test', configFor(sim.url, 'not-the-secret'), context);
    try {
      const error = await failure(collect(chatRequest({}), wrong));
      expect(error).toMatchObject({ kind: 'auth_failed', retryable: true, upstreamStatus: 403, code: 'upstream_auth_failed' });
      expect(error.message).not.toMatch(/signature/i);
    } finally {
      await wrong.close();
    }
  });

  it('maps an over-long prompt to context_length_exceeded, streamed or not', async () => {
    sim.configure({ contextWindow: 10 });
    const long = { messages: [{ role: 'user', content: 'word '.repeat(50) }] };
    await expect(failure(collect(chatRequest(long)))).resolves.toMatchObject({ kind: 'context_length_exceeded', upstreamStatus: 400 });
    await expect(failure(collect(chatRequest({ ...long, stream: true })))).resolves.toMatchObject({ kind: 'context_length_exceeded' });
  });

  it('throws a GatewayError when the connection drops mid-stream, after the chunks already sent', async () => {
    sim.configure({ faults: [{ kind: 'drop_mid_stream', afterTokens: 3 }] });
    const seen: adapterv1.ChatResponse[] = [];
    const error = await failure(
      (async () => {
        for await (const r of adapter.chat(call(chatRequest({ stream: true })))) seen.push(r);
      })(),
    );
    expect(error).toMatchObject({ kind: 'upstream_error', retryable: true });
    expect(contentOf(seen.map((r) => r.chunk as chatv1.ChatChunk))).not.toBe('');
  });

  it('throws the mapped error for an exception frame mid-stream', async () => {
    sim.configure({ faults: [{ kind: 'http_error', status: 429, afterTokens: 2 }] });
    const seen: adapterv1.ChatResponse[] = [];
    const error = await failure(
      (async () => {
        for await (const r of adapter.chat(call(chatRequest({ stream: true })))) seen.push(r);
      })(),
    );
    expect(error).toMatchObject({ kind: 'rate_limited', retryable: true });
    expect(seen.length).toBeGreaterThanOrEqual(3);
  });
});
