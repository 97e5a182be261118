import OpenAI from 'openai';
import { startTestGateway, type TestGateway } from '../support/test-gateway';

const weather = {
  type: 'function' as const,
  function: {
    name: 'get_weather',
    description: 'Weather for a city',
    parameters: { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['c', 'f'] }, days: { type: 'integer' } }, required: ['city', 'unit'] },
  },
};

async function post(gw: TestGateway, path: string, body: string, headers: Record<string, string> = {}): Promise<{ status: number; json: { error?: { message: string; type: string; param: string | null; code: string | null } }; headers: Headers }> {
  const response = await fetch(`${gw.baseURL}${path}`, { method: 'POST', headers: { authorization: `Bearer ${gw.apiKey}`, 'content-type': 'application/json', ...headers }, body });
  return { status: response.status, json: (await response.json()) as never, headers: response.headers };
}

describe('gateway end to end through the official openai SDK', () => {
  let gw: TestGateway;
  let client: OpenAI;

  beforeAll(async () => {
    gw = await startTestGateway();
    client = gw.client();
  });
  afterAll(async () => gw?.close());
  beforeEach(() => gw.sim.reset());

  it('lists and retrieves models, including ids with a slash', async () => {
    const ids: string[] = [];
    for await (const model of client.models.list()) ids.push(model.id);
    expect(ids).toEqual(['gpt-4o-mini', 'vendor/model-with-slash', 'text-embedding-3-small', 'auto']);
    // `auto` is callable, so it can be looked up like any model.
    expect(await client.models.retrieve('auto')).toMatchObject({ id: 'auto', object: 'model', owned_by: 'open-router' });
    const model = await client.models.retrieve('vendor/model-with-slash');
    expect(model).toMatchObject({ id: 'vendor/model-with-slash', object: 'model' });
    await expect(client.models.retrieve('nope')).rejects.toMatchObject({ status: 404, code: 'model_not_found' });
    // Beyond OpenAI's fields (its SDK keeps them): what each model can be asked for, and its window.
    const listed = new Map<string, Record<string, unknown>>();
    for await (const m of client.models.list()) listed.set(m.id, m as unknown as Record<string, unknown>);
    expect(listed.get('gpt-4o-mini')).toMatchObject({ capabilities: expect.arrayContaining(['chat']), context_window: expect.any(Number) });
    expect(listed.get('text-embedding-3-small')).toMatchObject({ capabilities: ['embeddings'] });
    expect(listed.get('auto')?.['capabilities']).toEqual(expect.arrayContaining(['chat']));
    expect(listed.get('auto')?.['capabilities']).not.toContain('embeddings');
  });

  it('answers a chat completion with usage and routing headers', async () => {
    const { data, response } = await client.chat.completions
      .create({ model: 'gpt-4o-mini', messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello there' }], max_tokens: 8 })
      .withResponse();
    expect(data.object).toBe('chat.completion');
    expect(data.model).toBe('gpt-4o-mini');
    expect(data.choices[0]?.message.content?.length).toBeGreaterThan(0);
    expect(data.choices[0]?.finish_reason).toBe('length');
    expect(data.usage?.completion_tokens).toBe(8);
    expect(data.usage?.total_tokens).toBe((data.usage?.prompt_tokens ?? 0) + 8);
    expect(response.headers.get('x-openrouter-model')).toBe('gpt-4o-mini');
    expect(response.headers.get('x-openrouter-provider')).toBe('simulated');
    expect(response.headers.get('x-request-id')).toBeTruthy();
    const seen = gw.sim.requests().at(-1);
    expect(seen?.model).toBe('sim-mini-upstream');
    expect(seen?.headers['x-gateway-test']).toBe('yes');
    expect(seen?.headers['authorization']).toBe('present');
  });

  it('streams a chat completion ending with a usage chunk and [DONE]', async () => {
    const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Stream please' }], stream: true, stream_options: { include_usage: true } });
    let text = '';
    let usage: OpenAI.CompletionUsage | undefined | null;
    let finish: string | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text.length).toBeGreaterThan(0);
    expect(finish).toBe('stop');
    expect(usage?.completion_tokens).toBeGreaterThan(0);
    const whole = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Stream please' }] });
    expect(text).toBe(whole.choices[0]?.message.content);
    expect(usage?.prompt_tokens).toBe(whole.usage?.prompt_tokens);
  });

  it('leaves usage out of a stream that did not ask for it', async () => {
    const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'No usage' }], stream: true });
    let chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      expect(chunk.usage ?? null).toBeNull();
      expect(chunk.choices.length).toBeGreaterThan(0);
    }
    expect(chunks).toBeGreaterThan(2);
    const upstream = gw.sim.requests().at(-1)?.body as { stream_options?: { include_usage?: boolean } };
    expect(upstream.stream_options?.include_usage).toBe(true);
  });

  it('forces a tool call, then answers the tool result', async () => {
    const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Weather in Paris?' }];
    const first = await client.chat.completions.create({ model: 'gpt-4o-mini', messages, tools: [weather], tool_choice: { type: 'function', function: { name: 'get_weather' } } });
    const choice = first.choices[0];
    expect(choice?.finish_reason).toBe('tool_calls');
    const call = choice?.message.tool_calls?.[0];
    if (call?.type !== 'function') throw new Error('expected a function call');
    expect(call.function.name).toBe('get_weather');
    const args = JSON.parse(call.function.arguments) as Record<string, unknown>;
    expect(Object.keys(args).sort()).toEqual(['city', 'unit']);
    expect(['c', 'f']).toContain(args['unit']);

    messages.push(choice!.message, { role: 'tool', tool_call_id: call.id, content: '{"temp":21}' });
    const second = await client.chat.completions.create({ model: 'gpt-4o-mini', messages, tools: [weather] });
    expect(second.choices[0]?.finish_reason).toBe('stop');
    expect(second.choices[0]?.message.content).toBeTruthy();
    const upstream = gw.sim.requests().at(-1)?.body as { messages: Array<{ role: string; tool_call_id?: string; tool_calls?: unknown[] }> };
    expect(upstream.messages.map((m) => m.role)).toEqual(['user', 'assistant', 'tool']);
    expect(upstream.messages[1]?.tool_calls).toHaveLength(1);
    expect(upstream.messages[2]?.tool_call_id).toBe(call.id);
  });

  it('streams a forced tool call', async () => {
    const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Weather?' }], tools: [weather], tool_choice: 'required', stream: true });
    let name = '';
    let args = '';
    let id = '';
    let finish: string | null | undefined;
    for await (const chunk of stream) {
      const delta = chunk.choices[0]?.delta.tool_calls?.[0];
      if (delta?.id) id = delta.id;
      name += delta?.function?.name ?? '';
      args += delta?.function?.arguments ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(id).toMatch(/^call_/);
    expect(name).toBe('get_weather');
    expect(JSON.parse(args)).toHaveProperty('city');
    expect(finish).toBe('tool_calls');
  });

  it('creates embeddings as base64 (the SDK default) and as floats', async () => {
    const b64 = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['one', 'two'] });
    expect(b64.data).toHaveLength(2);
    expect(b64.data[0]?.embedding).toHaveLength(1536);
    const floats = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'one', encoding_format: 'float', dimensions: 64 });
    expect(floats.data[0]?.embedding).toHaveLength(64);
    const norm = Math.sqrt(floats.data[0]!.embedding.reduce((s, v) => s + v * v, 0));
    expect(norm).toBeCloseTo(1, 4);
    expect(floats.usage.prompt_tokens).toBeGreaterThan(0);
    const same = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'one', encoding_format: 'float', dimensions: 64 });
    expect(same.data[0]?.embedding).toEqual(floats.data[0]?.embedding);
  });

  it('serves the legacy completions API', async () => {
    const done = await client.completions.create({ model: 'gpt-4o-mini', prompt: ['Say this', 'And that'], max_tokens: 5 });
    expect(done.object).toBe('text_completion');
    expect(done.choices.map((c) => c.index)).toEqual([0, 1]);
    expect(done.choices.every((c) => c.text.length > 0 && c.finish_reason === 'length')).toBe(true);
    const stream = await client.completions.create({ model: 'gpt-4o-mini', prompt: 'Stream this', max_tokens: 4, stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.text ?? '';
    expect(text.length).toBeGreaterThan(0);
  });

  it('rejects a missing or wrong key with 401 in OpenAI shape', async () => {
    const bad = new OpenAI({ baseURL: gw.baseURL, apiKey: 'sk-wrong', maxRetries: 0 });
    await expect(bad.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    const response = await fetch(`${gw.baseURL}/models`);
    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({ error: { type: 'authentication_error' } });
  });

  it('answers 400 naming the param for a missing field and for malformed JSON', async () => {
    const missing = client.chat.completions.create({ model: 'gpt-4o-mini' } as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming);
    await expect(missing).rejects.toBeInstanceOf(OpenAI.BadRequestError);
    await expect(missing).rejects.toMatchObject({ status: 400, param: 'messages' });
    const malformed = await post(gw, '/chat/completions', '{"model": "gpt-4o-mini", "messages": [');
    expect(malformed.status).toBe(400);
    expect(malformed.json.error).toMatchObject({ type: 'invalid_request_error', code: 'invalid_json' });
    for (const key of ['"__proto__":{"type":"string"}', '"constructor":{"prototype":{}}']) {
      const poisoned = await post(gw, '/chat/completions', `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{${key}}}}}]}`);
      expect(poisoned.status).toBe(400);
      expect(poisoned.json.error).toMatchObject({ type: 'invalid_request_error', code: 'forbidden_json_key' });
      expect(poisoned.json.error?.message).toContain('__proto__');
    }
    const wrongType = await post(gw, '/chat/completions', JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], temperature: 'hot' }));
    expect(wrongType.status).toBe(400);
    expect(wrongType.json.error?.param).toBe('temperature');
  });

  it.each([
    ['an empty body', ''],
    ['a JSON array', '[1,2]'],
    ['a JSON string', '"hello"'],
    ['deep nesting', `{"model":"gpt-4o-mini","messages":${'['.repeat(2000)}${']'.repeat(2000)}}`],
    ['invalid UTF-8', Buffer.from([0x7b, 0x22, 0x6d, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]).toString('latin1')],
    ['truncated JSON', '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x'],
  ])('answers %s with a 4xx in OpenAI shape, never a 5xx', async (_name, body) => {
    const result = await post(gw, '/chat/completions', body);
    expect(result.status).toBeGreaterThanOrEqual(400);
    expect(result.status).toBeLessThan(500);
    expect(result.json.error?.type).toBe('invalid_request_error');
    expect((await fetch(`${gw.url}/health`)).status).toBe(200);
  });

  it('answers 404 model_not_found for an unknown model and for an unknown URL', async () => {
    await expect(client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'hi' }] })).rejects.toMatchObject({ status: 404, code: 'model_not_found', param: 'model' });
    const unknownUrl = await post(gw, '/nothing-here', '{}');
    expect(unknownUrl.status).toBe(404);
    expect(unknownUrl.json.error?.type).toBe('invalid_request_error');
  });

  it('passes unknown top-level parameters through to the provider', async () => {
    await post(gw, '/chat/completions', JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], custom_knob: { depth: 2 }, top_k: 5 }));
    expect(gw.sim.requests().at(-1)?.body).toMatchObject({ custom_knob: { depth: 2 }, top_k: 5, model: 'sim-mini-upstream' });
  });

  it('maps a provider rate limit to 429 with Retry-After', async () => {
    gw.sim.configure({ faults: [{ kind: 'http_error', status: 429, retryAfterSeconds: 7, remaining: 1 }] });
    const result = await post(gw, '/chat/completions', JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] }));
    expect(result.status).toBe(429);
    expect(result.headers.get('retry-after')).toBe('7');
    expect(result.json.error).toMatchObject({ type: 'rate_limit_error', code: 'rate_limit_exceeded' });
  });

  it('maps provider failures to 502 and 503, never leaking provider internals', async () => {
    gw.sim.configure({ faults: [{ kind: 'http_error', status: 500, remaining: 1 }] });
    await expect(client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] })).rejects.toMatchObject({ status: 502 });
    gw.sim.configure({ faults: [{ kind: 'http_error', status: 503, remaining: 1 }] });
    await expect(client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] })).rejects.toMatchObject({ status: 503 });
    gw.sim.configure({ faults: [{ kind: 'drop_before_response', remaining: 1 }] });
    const dropped = await post(gw, '/chat/completions', JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] }));
    expect([502, 503]).toContain(dropped.status);
    expect(dropped.json.error?.message).not.toMatch(/127\.0\.0\.1|ECONN|sim-secret/);
    // A provider refusing the gateway's credentials, or not knowing a listed model, is the gateway's
    // fault: 502, never the 401 the SDK reports as the client's own bad key, nor a 404.
    gw.sim.configure({ faults: [{ kind: 'http_error', status: 401 }] });
    await expect(client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] })).rejects.toMatchObject({ status: 502, code: 'upstream_auth_failed' });
    gw.sim.configure({ faults: [{ kind: 'http_error', status: 404 }] });
    await expect(client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] })).rejects.toMatchObject({ status: 502, code: 'upstream_not_found' });
    gw.sim.configure({ faults: [] });
  });

  it('ends a stream the provider drops with a final error event', async () => {
    gw.sim.configure({ completionTokens: 40, faults: [{ kind: 'drop_mid_stream', afterTokens: 3, remaining: 1 }] });
    const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], stream: true });
    let received = 0;
    await expect(
      (async () => {
        for await (const chunk of stream) received += chunk.choices[0]?.delta.content ? 1 : 0;
      })(),
    ).rejects.toBeInstanceOf(OpenAI.APIError);
    expect(received).toBeGreaterThanOrEqual(1);
  });

  it('serves 50 concurrent requests, each with its own id', async () => {
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `request ${i}` }] }).withResponse()),
    );
    expect(new Set(results.map((r) => r.response.headers.get('x-request-id'))).size).toBe(50);
    expect(new Set(results.map((r) => r.data.id)).size).toBe(50);
    expect(results.every((r) => r.data.choices[0]?.message.content)).toBe(true);
  });

  it('keeps the caller request id', async () => {
    const { response } = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] }, { headers: { 'x-request-id': 'my-trace-123' } }).withResponse();
    expect(response.headers.get('x-request-id')).toBe('my-trace-123');
  });

  it('aborts the provider call when the client disconnects mid-stream', async () => {
    gw.sim.configure({ completionTokens: 500, tokensPerSecond: 50 });
    const abort = new AbortController();
    const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'long answer' }], stream: true }, { signal: abort.signal });
    let chunks = 0;
    try {
      for await (const _chunk of stream) {
        // Stop reading at once: the SDK could still hand over chunks that came in the same read.
        if (++chunks === 2) {
          abort.abort();
          break;
        }
      }
    } catch {
      // the SDK may end the iteration or raise an abort error; either way the client is gone
    }
    expect(chunks).toBe(2);
    const observed = await gw.sim.waitForRequest((r) => r.outcome === 'aborted', 10_000);
    expect(observed.stream).toBe(true);
  });

  it('reports health and readiness', async () => {
    const health = await fetch(`${gw.url}/health`);
    expect(health.status).toBe(200);
    const ready = await fetch(`${gw.url}/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready', checks: { router: 'ok' } });
  });

  // A gateway of its own with a short provider timeout, so the wait stays short while the suite's
  // gateway keeps the long one its bursts of concurrent requests need.
  describe('with a provider timeout of 1.5 s', () => {
    let impatient: TestGateway;

    beforeAll(async () => {
      impatient = await startTestGateway({
        configure: (doc) => {
          const providers = doc['providers'] as Record<string, Record<string, unknown>>;
          providers['simulated'] = { ...providers['simulated'], timeoutMs: 1_500 };
        },
      });
    });
    afterAll(async () => impatient?.close());

    it('answers 504 when the provider does not answer within its timeout, and serves the next request', async () => {
      impatient.sim.configure({ faults: [{ kind: 'timeout', remaining: 1 }] });
      const client = impatient.client();
      await expect(client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] })).rejects.toMatchObject({ status: 504, code: 'timeout' });
      const next = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] });
      expect(next.choices[0]?.message.content).toBeTruthy();
    });
  });
});
