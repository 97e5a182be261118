import { request } from 'undici';
import { countTokens } from '../core/token-counter';
import { type RunningSimulator, startSimulator } from '../index';

/** Wire-level contract checks over raw HTTP (the SDK-level checks live in simulator.int-spec.ts). */
describe('OpenAI wire format over HTTP', () => {
  let sim: RunningSimulator;

  beforeAll(async () => {
    sim = await startSimulator();
  });
  afterEach(() => sim.reset());
  afterAll(() => sim.close());

  const post = async (path: string, body: unknown, headers: Record<string, string> = {}) => {
    const response = await request(`${sim.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    return { status: response.statusCode, headers: response.headers, text: await response.body.text() };
  };
  const chat = (body: Record<string, unknown>) => post('/v1/chat/completions', { model: 'gpt-4o', messages: [{ role: 'user', content: 'Hi' }], ...body });
  const sseEvents = (text: string): string[] => {
    expect(text.endsWith('\n\n')).toBe(true);
    return text
      .slice(0, -2)
      .split('\n\n')
      .map((event) => {
        expect(event.startsWith('data: ')).toBe(true);
        return event.slice('data: '.length);
      });
  };

  it('accepts requests without credentials when no apiKey is configured', async () => {
    const response = await chat({});
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toBe('application/json');
    expect(response.headers['x-request-id']).toMatch(/^req_/);
    expect(sim.requests()[0]?.headers['authorization']).toBe('absent');
  });

  it('streams well-formed SSE that agrees with the non-stream answer', async () => {
    const plain = JSON.parse((await chat({})).text);
    const streamed = await chat({ stream: true });
    expect(streamed.headers['content-type']).toBe('text/event-stream');
    const events = sseEvents(streamed.text);
    expect(events[events.length - 1]).toBe('[DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
    expect(chunks[0]).toEqual({
      id: expect.stringMatching(/^chatcmpl-/),
      object: 'chat.completion.chunk',
      created: expect.any(Number),
      model: 'gpt-4o',
      system_fingerprint: plain.system_fingerprint,
      choices: [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }],
    });
    expect(chunks.every((c) => !('usage' in c))).toBe(true);
    expect(chunks.slice(1, -1).map((c) => c.choices[0].delta.content).join('')).toBe(plain.choices[0].message.content);
    expect(chunks[chunks.length - 1].choices).toEqual([{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }]);
  });

  it('interleaves n choices per token and ends each with its finish_reason', async () => {
    const events = sseEvents((await chat({ stream: true, n: 2, max_tokens: 3 })).text);
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
    expect(chunks.map((c) => c.choices[0].index)).toEqual([0, 1, 0, 1, 0, 1, 0, 1, 0, 1]);
    expect(chunks.slice(-2).map((c) => c.choices[0].finish_reason)).toEqual(['length', 'length']);
  });

  it('answers malformed JSON and missing parameters in the OpenAI error shape', async () => {
    const malformed = await post('/v1/chat/completions', '{"model": ');
    expect(malformed.status).toBe(400);
    expect(JSON.parse(malformed.text)).toEqual({ error: { message: expect.stringContaining('parse the JSON body'), type: 'invalid_request_error', param: null, code: null } });

    const noMessages = await post('/v1/chat/completions', { model: 'gpt-4o' });
    expect(JSON.parse(noMessages.text)).toEqual({
      error: { message: "Missing required parameter: 'messages'.", type: 'invalid_request_error', param: 'messages', code: 'missing_required_parameter' },
    });
    const noModel = await post('/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }] });
    expect(JSON.parse(noModel.text).error).toMatchObject({ param: 'model', code: 'missing_required_parameter' });
    const badRole = await chat({ messages: [{ role: 'robot', content: 'x' }] });
    expect(badRole.status).toBe(400);
    expect(JSON.parse(badRole.text).error.param).toBe('messages[0].role');
    expect(sim.requests().map((r) => r.outcome)).toEqual(['error', 'error', 'error', 'error']);
  });

  it('rejects a prompt above the context window', async () => {
    sim.configure({ contextWindow: 20 });
    const response = await chat({ messages: [{ role: 'user', content: 'many words '.repeat(30) }] });
    expect(response.status).toBe(400);
    expect(JSON.parse(response.text).error).toMatchObject({ code: 'context_length_exceeded', param: 'messages', type: 'invalid_request_error' });
  });

  it("refuses an image in a tool message with OpenAI's 400: images go in user messages only", async () => {
    const image = { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } };
    const messages = [
      { role: 'user', content: 'Take a screenshot' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'screenshot', arguments: '{}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: [{ type: 'text', text: 'done' }, image] },
    ];
    const refused = await chat({ messages });
    expect(refused.status).toBe(400);
    expect(JSON.parse(refused.text)).toEqual({
      error: {
        message: "Invalid 'messages[2]'. Image URLs are only allowed for messages with role 'user', but this message with role 'tool' contains an image URL.",
        type: 'invalid_request_error',
        param: 'messages[2]',
        code: 'invalid_value',
      },
    });
    const moved = [...messages.slice(0, 2), { role: 'tool', tool_call_id: 'call_1', content: [{ type: 'text', text: 'done' }] }, { role: 'user', content: [image] }];
    expect((await chat({ messages: moved })).status).toBe(200);
  });

  it('answers without usage for a server that reports none (omitUsage)', async () => {
    sim.configure({ omitUsage: true });
    const body = JSON.parse((await chat({})).text);
    expect(body).not.toHaveProperty('usage');
    expect(body.choices[0].message.content.length).toBeGreaterThan(0);
  });

  it('serves models and 404s unknown routes', async () => {
    const model = await request(`${sim.baseUrl}/models/my-custom-model`);
    expect(await model.body.json()).toEqual({ id: 'my-custom-model', object: 'model', created: expect.any(Number), owned_by: 'simulator' });
    const missing = await request(`${sim.baseUrl}/nope`);
    expect(missing.statusCode).toBe(404);
    expect(await missing.body.json()).toEqual({ error: { message: 'Invalid URL (GET /v1/nope)', type: 'invalid_request_error', param: null, code: null } });
  });

  it('embeds token-id input and honours dimensions', async () => {
    const response = await post('/v1/embeddings', { model: 'text-embedding-3-small', input: [[1, 2, 3], [4, 5]], dimensions: 8 });
    const body = JSON.parse(response.text);
    expect(body.data).toHaveLength(2);
    expect(body.data[1].embedding).toHaveLength(8);
    expect(body.usage).toEqual({ prompt_tokens: 5, total_tokens: 5 });
    const single = JSON.parse((await post('/v1/embeddings', { model: 'm', input: [1, 2, 3] })).text);
    expect(single.data).toHaveLength(1);
    expect(single.data[0].embedding).toHaveLength(1536);
    expect((await post('/v1/embeddings', { model: 'm', input: [] })).status).toBe(400);
  });

  describe('moderations', () => {
    const moderate = (body: unknown, headers: Record<string, string> = {}) => post('/v1/moderations', body, headers);

    it("judges each text on its own in OpenAI's shape, with the input kinds for an omni model", async () => {
      const response = await moderate({ model: 'omni-moderation-latest', input: ['I will kill you', 'Nice weather'] });
      expect(response.status).toBe(200);
      const body = JSON.parse(response.text);
      expect(body).toEqual({ id: expect.stringMatching(/^modr-/), model: 'omni-moderation-latest', results: [expect.any(Object), expect.any(Object)] });
      const [violent, calm] = body.results;
      expect(violent).toMatchObject({ flagged: true, categories: { violence: true, hate: false } });
      expect(violent.category_scores.violence).toBeGreaterThanOrEqual(0.9);
      expect(violent.category_applied_input_types.violence).toEqual(['text']);
      expect(calm.flagged).toBe(false);
      expect(Object.keys(calm.categories)).toHaveLength(13);
      expect(sim.requests()[0]).toMatchObject({ path: '/v1/moderations', model: 'omni-moderation-latest', outcome: 'completed' });
    });

    it('judges a list of parts as one input, images included, and defaults the model to omni-moderation-latest', async () => {
      const body = JSON.parse(
        (
          await moderate({
            input: [
              { type: 'text', text: 'look at this' },
              { type: 'image_url', image_url: { url: 'https://example.com/gore.png' } },
            ],
          })
        ).text,
      );
      expect(body.model).toBe('omni-moderation-latest');
      expect(body.results).toHaveLength(1);
      expect(body.results[0]).toMatchObject({ flagged: true, categories: { 'violence/graphic': true } });
      expect(body.results[0].category_applied_input_types).toMatchObject({ violence: ['text', 'image'], hate: ['text'] });
    });

    it('answers a text-moderation model without input kinds and with no illicit verdict, and refuses it images', async () => {
      const body = JSON.parse((await moderate({ model: 'text-moderation-latest', input: 'how to steal a car' })).text);
      expect(body.results[0]).not.toHaveProperty('category_applied_input_types');
      expect(body.results[0].categories.illicit).toBeNull();
      expect(body.results[0].category_scores.illicit).toBeNull();
      const image = await moderate({ model: 'text-moderation-latest', input: [{ type: 'image_url', image_url: { url: 'https://example.com/a.png' } }] });
      expect(image.status).toBe(400);
      expect(JSON.parse(image.text).error).toMatchObject({ param: 'input', type: 'invalid_request_error' });
    });

    it("refuses a request without input, or with an input of the wrong shape, in OpenAI's error shape", async () => {
      const missing = await moderate({ model: 'omni-moderation-latest' });
      expect(missing.status).toBe(400);
      expect(JSON.parse(missing.text)).toEqual({ error: { message: "Missing required parameter: 'input'.", type: 'invalid_request_error', param: 'input', code: 'missing_required_parameter' } });
      expect((await moderate({ input: [] })).status).toBe(400);
      expect((await moderate({ input: [{ type: 'audio' }] })).status).toBe(400);
      expect((await moderate('{"input": ')).status).toBe(400);
    });

    it('checks the API key, applies faults aimed at moderations, and their retry-after', async () => {
      sim.setApiKey('sk-mod');
      expect((await moderate({ input: 'x' })).status).toBe(401);
      expect((await moderate({ input: 'x' }, { authorization: 'Bearer sk-mod' })).status).toBe(200);
      sim.setApiKey(undefined);
      sim.configure({ faults: [{ kind: 'http_error', status: 429, retryAfterSeconds: 3, path: 'moderations' }] });
      const limited = await moderate({ input: 'x' });
      expect(limited.status).toBe(429);
      expect(limited.headers['retry-after']).toBe('3');
      expect(JSON.parse(limited.text).error).toMatchObject({ type: 'requests', code: 'rate_limit_exceeded' });
      expect((await chat({})).status).toBe(200);
      sim.configure({ faults: [{ kind: 'http_error', status: 500, path: 'embeddings' }] });
      expect((await moderate({ input: 'x' })).status).toBe(200);
    });
  });

  describe('image generations', () => {
    const generate = (body: unknown, headers: Record<string, string> = {}) => post('/v1/images/generations', body, headers);
    const json = async (body: unknown) => {
      const response = await generate(body);
      expect(response.status).toBe(200);
      return JSON.parse(response.text);
    };
    const fetchImage = async (url: string) => {
      const response = await request(url);
      return { status: response.statusCode, type: response.headers['content-type'], bytes: Buffer.from(await response.body.arrayBuffer()) };
    };

    it("answers DALL·E 2 (the default model) with URLs to images the simulator serves, in OpenAI's shape", async () => {
      const body = await json({ prompt: 'a red fox', n: 2 });
      expect(body).toEqual({ created: expect.any(Number), data: [{ url: expect.any(String) }, { url: expect.any(String) }] });
      expect(body.data[0].url).toMatch(new RegExp(`^${sim.url}/_sim/images/[A-Za-z0-9]+-[0-9a-f]{6}\\.png$`));
      expect(body.data[0].url).not.toBe(body.data[1].url);
      const image = await fetchImage(body.data[0].url);
      expect(image.status).toBe(200);
      expect(image.type).toBe('image/png');
      expect(image.bytes.subarray(1, 4).toString('ascii')).toBe('PNG');
      expect(sim.requests()).toHaveLength(1);
      expect(sim.requests()[0]).toMatchObject({ path: '/v1/images/generations', model: undefined, outcome: 'completed' });
    });

    it('answers b64_json when asked, the same image the URL serves for the same prompt', async () => {
      const inline = await json({ model: 'dall-e-2', prompt: 'a red fox', response_format: 'b64_json' });
      const linked = await json({ model: 'dall-e-2', prompt: 'a red fox' });
      const bytes = Buffer.from(inline.data[0].b64_json, 'base64');
      expect(bytes.subarray(1, 4).toString('ascii')).toBe('PNG');
      expect((await fetchImage(linked.data[0].url)).bytes).toEqual(bytes);
      expect((await json({ model: 'dall-e-2', prompt: 'a blue fox', response_format: 'b64_json' })).data[0].b64_json).not.toBe(inline.data[0].b64_json);
    });

    it('gives DALL·E 3 a revised prompt', async () => {
      const body = await json({ model: 'dall-e-3', prompt: 'a lighthouse', size: '1792x1024', quality: 'hd', style: 'natural' });
      expect(body.data).toEqual([{ url: expect.any(String), revised_prompt: 'A natural, true-to-life image of: a lighthouse' }]);
      expect(body).not.toHaveProperty('usage');
    });

    it('answers GPT Image with b64_json, what it made and its token usage by quality and size', async () => {
      const prompt = 'a watercolour of a harbour at dawn';
      const body = await json({ model: 'gpt-image-1', prompt, n: 2, quality: 'low', size: '1024x1536', background: 'transparent' });
      expect(body).toEqual({
        created: expect.any(Number),
        background: 'transparent',
        data: [{ b64_json: expect.any(String) }, { b64_json: expect.any(String) }],
        output_format: 'png',
        quality: 'low',
        size: '1024x1536',
        usage: {
          input_tokens: countTokens(prompt),
          input_tokens_details: { image_tokens: 0, text_tokens: countTokens(prompt) },
          output_tokens: 2 * 408,
          total_tokens: countTokens(prompt) + 816,
        },
      });
      const auto = await json({ model: 'gpt-image-1', prompt: 'x' });
      expect(auto).toMatchObject({ quality: 'medium', size: '1024x1024', background: 'opaque', usage: { output_tokens: 1056 } });
      sim.configure({ omitUsage: true });
      expect(await json({ model: 'gpt-image-1', prompt: 'x' })).not.toHaveProperty('usage');
    });

    it.each([
      ['no prompt', { model: 'dall-e-2' }, 'prompt', 'missing_required_parameter'],
      ['an empty prompt', { prompt: '' }, 'prompt', 'invalid_value'],
      ['a DALL·E 2 prompt over 1000 characters', { prompt: 'a'.repeat(1001) }, 'prompt', 'string_above_max_length'],
      ['n above 10', { prompt: 'x', n: 11 }, 'n', 'invalid_value'],
      ['n of 2 for DALL·E 3', { model: 'dall-e-3', prompt: 'x', n: 2 }, 'n', 'invalid_value'],
      ['a DALL·E 3 size for DALL·E 2', { prompt: 'x', size: '1792x1024' }, 'size', 'invalid_value'],
      ['a GPT Image size for DALL·E 3', { model: 'dall-e-3', prompt: 'x', size: '1536x1024' }, 'size', 'invalid_value'],
      ['a custom size for gpt-image-1', { model: 'gpt-image-1', prompt: 'x', size: '1536x864' }, 'size', 'invalid_value'],
      ['a DALL·E quality for GPT Image', { model: 'gpt-image-1', prompt: 'x', quality: 'hd' }, 'quality', 'invalid_value'],
      ['response_format for GPT Image', { model: 'gpt-image-1', prompt: 'x', response_format: 'b64_json' }, 'response_format', 'unknown_parameter'],
      ['a stream', { model: 'gpt-image-1', prompt: 'x', stream: true }, 'stream', 'unsupported_parameter'],
    ])("refuses %s with OpenAI's 400", async (_name, body, param, code) => {
      const response = await generate(body);
      expect(response.status).toBe(400);
      expect(JSON.parse(response.text).error).toMatchObject({ type: 'invalid_request_error', param, code });
    });

    it("takes gpt-image-2's own sizes and bills them by their pixels", async () => {
      const body = await json({ model: 'gpt-image-2', prompt: 'x', size: '2048x1152', quality: 'high' });
      expect(body.size).toBe('2048x1152');
      expect(body.usage.output_tokens).toBe(Math.ceil((4160 * 2048 * 1152) / (1024 * 1024)));
      expect((await generate({ model: 'gpt-image-2', prompt: 'x', size: '1000x1000' })).status).toBe(400);
    });

    it("answers an Azure deployment, the deployment's name telling the model, under Azure's auth", async () => {
      sim.setApiKey('sk-azure');
      const path = (deployment: string) => `/openai/deployments/${deployment}/images/generations?api-version=2024-10-21`;
      expect((await post(path('dalle3'), { prompt: 'x' })).status).toBe(401);
      const dalle = JSON.parse((await post(path('dall-e-3-prod'), { prompt: 'x' }, { 'api-key': 'sk-azure' })).text);
      expect(dalle.data[0]).toMatchObject({ url: expect.any(String), revised_prompt: expect.any(String) });
      const gpt = JSON.parse((await post(path('gpt-image-1'), { prompt: 'x' }, { 'api-key': 'sk-azure' })).text);
      expect(gpt.data[0].b64_json).toEqual(expect.any(String));
      expect(sim.requests().map((r) => r.path)).toEqual(['dalle3', 'dall-e-3-prod', 'gpt-image-1'].map((d) => `/openai/deployments/${d}/images/generations`));
    });

    it('checks the API key, applies faults aimed at images, and serves no image it did not make', async () => {
      sim.setApiKey('sk-img');
      expect((await generate({ prompt: 'x' })).status).toBe(401);
      expect((await generate({ prompt: 'x' }, { authorization: 'Bearer sk-img' })).status).toBe(200);
      sim.setApiKey(undefined);
      sim.configure({ faults: [{ kind: 'http_error', status: 429, retryAfterSeconds: 4, path: 'images' }] });
      const limited = await generate({ prompt: 'x' });
      expect(limited.status).toBe(429);
      expect(limited.headers['retry-after']).toBe('4');
      expect((await chat({})).status).toBe(200);
      sim.configure({ faults: [{ kind: 'http_error', status: 500, path: 'moderations' }] });
      expect((await generate({ prompt: 'x' })).status).toBe(200);
      expect((await fetchImage(`${sim.url}/_sim/images/abc-zzzzzz.png`)).status).toBe(404);
      expect((await fetchImage(`${sim.url}/_sim/images/abc-00ff00.gif`)).status).toBe(404);
    });
  });

  describe('control endpoints', () => {
    it('sets behaviour, rejects bad input, lists and resets requests', async () => {
      const ok = await post('/_sim/behaviour', { completionTokens: 5 });
      expect(ok.status).toBe(200);
      expect(JSON.parse(ok.text).behaviour.completionTokens).toBe(5);
      expect(JSON.parse((await chat({})).text).usage.completion_tokens).toBe(5);

      expect((await post('/_sim/behaviour', { completionTokens: -1 })).status).toBe(400);
      expect((await post('/_sim/behaviour', { faults: [{ kind: 'nonsense' }] })).status).toBe(400);
      expect((await post('/_sim/behaviour', 'not json')).status).toBe(400);

      const listed = await request(`${sim.url}/_sim/requests`);
      const log = (await listed.body.json()) as { object: string; data: { path: string }[] };
      expect(log.data.map((r) => r.path)).toEqual(['/v1/chat/completions']);

      await post('/_sim/reset', {});
      expect(sim.requests()).toEqual([]);
      expect(JSON.parse((await chat({})).text).usage.completion_tokens).toBe(16);
    });
  });

  describe('a key changed at run time', () => {
    const withKey = (key: string) => post('/v1/chat/completions', { model: 'gpt-4o', messages: [{ role: 'user', content: 'Hi' }] }, { authorization: `Bearer ${key}` });

    it('is the only one taken from the next request on, as a provider takes a rotated key; reset() restores the start-up one', async () => {
      sim.setApiKey('sk-rotated-1');
      expect((await withKey('sk-rotated-1')).status).toBe(200);
      sim.setApiKey('sk-rotated-2');
      const refused = await withKey('sk-rotated-1');
      expect(refused.status).toBe(401);
      expect(JSON.parse(refused.text).error.code).toBe('invalid_api_key');
      expect((await withKey('sk-rotated-2')).status).toBe(200);
      sim.reset();
      // Started without a key: any key again.
      expect((await withKey('anything')).status).toBe(200);
    });

    it('is set through POST /_sim/api-key too, which does not echo it', async () => {
      const set = await post('/_sim/api-key', { apiKey: 'sk-from-control' });
      expect(set.status).toBe(200);
      expect(set.text).not.toContain('sk-from-control');
      expect((await withKey('sk-other')).status).toBe(401);
      expect((await withKey('sk-from-control')).status).toBe(200);
      expect((await post('/_sim/api-key', { apiKey: 42 })).status).toBe(400);
      expect((await post('/_sim/api-key', { apiKey: null })).status).toBe(200);
      expect((await withKey('sk-other')).status).toBe(200);
    });
  });

  describe('faults', () => {
    it('returns 5xx bodies in the OpenAI error shape, only for the targeted model and path', async () => {
      sim.configure({ faults: [{ kind: 'http_error', status: 503, model: 'gpt-4o', path: 'chat' }] });
      const failed = await chat({});
      expect(failed.status).toBe(503);
      expect(JSON.parse(failed.text)).toEqual({ error: { message: expect.any(String), type: 'server_error', param: null, code: null } });
      expect((await chat({ model: 'gpt-4o-mini' })).status).toBe(200);
      expect((await post('/v1/embeddings', { model: 'gpt-4o', input: 'x' })).status).toBe(200);
    });

    it('uses the fault’s code and message', async () => {
      sim.configure({ faults: [{ kind: 'http_error', status: 400, code: 'content_filter', message: 'Blocked.' }] });
      expect(JSON.parse((await chat({})).text)).toEqual({ error: { message: 'Blocked.', type: 'invalid_request_error', param: null, code: 'content_filter' } });
    });

    it('drops the connection before any response', async () => {
      sim.configure({ faults: [{ kind: 'drop_before_response' }] });
      await expect(chat({})).rejects.toThrow();
      expect(sim.requests()[0]?.outcome).toBe('dropped');
    });

    it('drops a stream after the given number of content tokens', async () => {
      sim.configure({ faults: [{ kind: 'drop_mid_stream', afterTokens: 3 }] });
      const response = await request(`${sim.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Hi' }], stream: true }),
      });
      expect(response.statusCode).toBe(200);
      let received = '';
      await expect(
        (async () => {
          for await (const part of response.body) received += (part as Buffer).toString('utf8');
        })(),
      ).rejects.toThrow();
      const chunks = received.split('\n\n').filter((e) => e.startsWith('data: {'));
      expect(chunks).toHaveLength(4);
      expect(received).not.toContain('[DONE]');
      expect(sim.requests()[0]?.outcome).toBe('dropped');
    });

    it('truncates a non-stream body for drop_mid_stream', async () => {
      sim.configure({ faults: [{ kind: 'drop_mid_stream' }] });
      await expect(chat({})).rejects.toThrow();
      expect(sim.requests()[0]?.outcome).toBe('dropped');
    });

    it('fails a chat stream after its 200 with an error event after the given number of content tokens, as LiteLLM and vLLM do', async () => {
      sim.configure({ faults: [{ kind: 'http_error', status: 400, code: 'context_length_exceeded', message: 'Too long.', afterTokens: 2 }] });
      const streamed = await chat({ stream: true, stream_options: { include_usage: true } });
      expect(streamed.status).toBe(200);
      const events = sseEvents(streamed.text);
      expect(events).not.toContain('[DONE]');
      // The opening chunk, two content tokens, then the error in OpenAI's shape.
      expect(events.slice(1, -1).map((e) => JSON.parse(e).choices[0].delta.content)).toHaveLength(2);
      expect(JSON.parse(events[events.length - 1] ?? '')).toEqual({ error: { message: 'Too long.', type: 'invalid_request_error', param: null, code: 'context_length_exceeded' } });
      // Without a stream, or without afterTokens, the same fault is the HTTP answer.
      sim.configure({ faults: [{ kind: 'http_error', status: 400, afterTokens: 2 }] });
      expect((await chat({})).status).toBe(400);
      sim.configure({ faults: [{ kind: 'http_error', status: 400 }] });
      expect((await chat({ stream: true })).status).toBe(400);
    });

    it("answers an Azure deployment's 429 in Azure's own shape, with retry-after and retry-after-ms", async () => {
      sim.configure({ faults: [{ kind: 'http_error', status: 429, retryAfterSeconds: 6 }] });
      const limited = await post('/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21', { messages: [{ role: 'user', content: 'Hi' }] });
      expect(limited.status).toBe(429);
      expect(limited.headers).toMatchObject({ 'retry-after': '6', 'retry-after-ms': '6000' });
      expect(JSON.parse(limited.text)).toEqual({
        error: {
          code: '429',
          message:
            'Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 6 seconds. Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit.',
        },
      });
      // OpenAI's own routes keep OpenAI's shape.
      expect(JSON.parse((await chat({})).text).error).toMatchObject({ type: 'requests', code: 'rate_limit_exceeded' });
    });

    it('never answers a timeout fault until the client gives up', async () => {
      sim.configure({ faults: [{ kind: 'timeout', remaining: 1 }] });
      const controller = new AbortController();
      const pending = request(`${sim.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Hi' }] }),
        signal: controller.signal,
      });
      await sim.waitForRequest((r) => r.model === 'gpt-4o' && r.outcome === 'pending');
      controller.abort();
      await expect(pending).rejects.toThrow();
      await expect(sim.waitForRequest((r) => r.outcome === 'aborted')).resolves.toMatchObject({ path: '/v1/chat/completions' });
      expect((await chat({})).status).toBe(200);
    });
  });

  it('delays by latencyMs and paces tokens by ttft / tokensPerSecond', async () => {
    // How long the simulator took over a request, from the times it recorded: received, and answered.
    const answeredIn = async (stream: boolean): Promise<number> => {
      const answered = await sim.waitForRequest((r) => r.stream === stream && r.outcome !== 'pending', 5_000);
      return (answered.endedAt ?? 0) - answered.receivedAt;
    };
    sim.configure({ latencyMs: 30 });
    await chat({});
    expect(await answeredIn(false)).toBeGreaterThanOrEqual(25);

    sim.configure({ latencyMs: 0, ttftMs: 40, tokensPerSecond: 200, completionTokens: 5 });
    const streamed = await chat({ stream: true });
    expect(await answeredIn(true)).toBeGreaterThanOrEqual(40 + 4 * 5 - 5);
    expect(sseEvents(streamed.text)).toHaveLength(1 + 5 + 1 + 1);
  });
});
