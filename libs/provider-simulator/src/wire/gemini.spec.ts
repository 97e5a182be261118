import { request } from 'undici';
import { type RunningSimulator, startSimulator } from '../index';

const API_KEY = 'AIza-simulated-key';
const MODEL = 'gemini-2.5-flash';
const USER = { role: 'user', parts: [{ text: 'Hello there' }] };
const WEATHER = { name: 'get_weather', parameters: { type: 'OBJECT', properties: { city: { type: 'STRING' } }, required: ['city'] } };

interface GoogleError {
  code: number;
  message: string;
  status: string;
  details?: Record<string, unknown>[];
}

/** Gemini's wire format over raw HTTP, including the checks Google applies before answering. */
describe('Gemini API wire format over HTTP', () => {
  let sim: RunningSimulator;

  beforeAll(async () => {
    sim = await startSimulator({ apiKey: API_KEY });
  });
  afterEach(() => sim.reset());
  afterAll(() => sim.close());

  const post = async (method: string, body: unknown, headers: Record<string, string> = { 'x-goog-api-key': API_KEY }, query = '', model = MODEL) => {
    const response = await request(`${sim.url}/v1beta/models/${model}:${method}${query}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await response.body.text();
    return { status: response.statusCode, headers: response.headers, text, json: () => JSON.parse(text) as Record<string, unknown> };
  };
  const generate = (body: Record<string, unknown> = {}, headers?: Record<string, string>) => post('generateContent', { contents: [USER], ...body }, headers);
  const errorOf = (json: Record<string, unknown>) => json['error'] as GoogleError;
  const events = (text: string): Record<string, unknown>[] => {
    expect(text.endsWith('\r\n\r\n')).toBe(true);
    return text
      .split('\r\n\r\n')
      .filter((block) => block !== '')
      .map((block) => {
        expect(block.startsWith('data: ')).toBe(true);
        return JSON.parse(block.slice('data: '.length)) as Record<string, unknown>;
      });
  };

  describe('authentication', () => {
    it('answers 403 PERMISSION_DENIED without a key and 400 API_KEY_INVALID with a wrong one', async () => {
      const missing = await generate({}, {});
      expect(missing.status).toBe(403);
      expect(errorOf(missing.json())).toMatchObject({ code: 403, status: 'PERMISSION_DENIED', message: expect.stringContaining('unregistered callers') });
      const wrong = await generate({}, { 'x-goog-api-key': 'AIza-wrong' });
      expect(wrong.status).toBe(400);
      expect(errorOf(wrong.json())).toMatchObject({ code: 400, status: 'INVALID_ARGUMENT', message: 'API key not valid. Please pass a valid API key.', details: [{ reason: 'API_KEY_INVALID' }] });
      const bearer = await generate({}, { authorization: `Bearer ${API_KEY}` });
      expect(bearer.status).toBe(403);
    });

    it('accepts the key as the `key` query parameter, and never logs it', async () => {
      const answer = await post('generateContent', { contents: [USER] }, {}, `?key=${API_KEY}`);
      expect(answer.status).toBe(200);
      expect(JSON.stringify(sim.requests())).not.toContain(API_KEY);
    });
  });

  describe('generateContent', () => {
    it('answers with a candidate, finishReason STOP and usage', async () => {
      const answer = await generate({ systemInstruction: { parts: [{ text: 'Be brief.' }] } });
      expect(answer.status).toBe(200);
      const json = answer.json();
      expect(json).toMatchObject({ candidates: [{ content: { role: 'model', parts: [{ text: expect.stringMatching(/\w+/) }] }, finishReason: 'STOP', index: 0 }], modelVersion: MODEL, responseId: expect.any(String) });
      const usage = json['usageMetadata'] as Record<string, number>;
      expect(usage['candidatesTokenCount']).toBe(16);
      expect(usage['totalTokenCount']).toBe((usage['promptTokenCount'] ?? 0) + 16);
    });

    it('honours maxOutputTokens, stopSequences and candidateCount', async () => {
      const json = (await generate({ generationConfig: { maxOutputTokens: 2, candidateCount: 2 } })).json();
      expect(json['candidates']).toEqual([expect.objectContaining({ finishReason: 'MAX_TOKENS', index: 0 }), expect.objectContaining({ finishReason: 'MAX_TOKENS', index: 1 })]);
      expect((json['usageMetadata'] as Record<string, number>)['candidatesTokenCount']).toBe(4);
    });

    it('calls a function when mode is ANY, and answers a function response in text', async () => {
      const forced = (await generate({ tools: [{ functionDeclarations: [WEATHER] }], toolConfig: { functionCallingConfig: { mode: 'ANY', allowedFunctionNames: ['get_weather'] } } })).json();
      expect(forced['candidates']).toEqual([{ content: { role: 'model', parts: [{ functionCall: { name: 'get_weather', args: { city: 'sample' } } }] }, finishReason: 'STOP', index: 0 }]);
      const answered = await generate({
        contents: [USER, { role: 'model', parts: [{ functionCall: { name: 'get_weather', args: { city: 'Rome' } } }] }, { role: 'user', parts: [{ functionResponse: { name: 'get_weather', response: { sky: 'clear' } } }] }],
        tools: [{ functionDeclarations: [WEATHER] }],
        toolConfig: { functionCallingConfig: { mode: 'ANY' } },
      });
      expect(answered.json()).toMatchObject({ candidates: [{ content: { parts: [{ text: expect.stringMatching(/^Tool result received\./) }] } }] });
    });

    it('answers JSON for responseMimeType application/json, following responseSchema or responseJsonSchema', async () => {
      const plain = (await generate({ generationConfig: { responseMimeType: 'application/json' } })).json();
      const text = (c: Record<string, unknown>) => ((c['candidates'] as { content: { parts: { text: string }[] } }[])[0]?.content.parts[0]?.text ?? '');
      expect(JSON.parse(text(plain))).toEqual({ reply: expect.any(String) });
      const typed = (await generate({ generationConfig: { responseMimeType: 'application/json', responseSchema: { type: 'OBJECT', properties: { n: { type: 'INTEGER' } }, required: ['n'] } } })).json();
      expect(JSON.parse(text(typed))).toEqual({ n: 1 });
      const json = (await generate({ generationConfig: { responseMimeType: 'application/json', responseJsonSchema: { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] } } })).json();
      expect(JSON.parse(text(json))).toEqual({ ok: true });
    });

    it.each([
      [{ contents: [] }, 'contents is not specified'],
      [{ generationConfig: { maxTokens: 5 } }, 'Unknown name "maxTokens" at \'generation_config\': Cannot find field.'],
      [{ contents: [{ role: 'assistant', parts: [{ text: 'x' }] }] }, 'contents[0].role'],
      [{ contents: [USER, { role: 'user', parts: [{ functionResponse: { name: 'f', response: {} } }] }] }, 'function response turn comes immediately after a function call turn'],
      [
        {
          contents: [USER, { role: 'model', parts: [{ functionCall: { name: 'f' } }, { functionCall: { name: 'f' } }] }, { role: 'user', parts: [{ functionResponse: { name: 'f', response: {} } }] }],
        },
        'number of function response parts is equal to the number of function call parts',
      ],
      [{ tools: [{ functionDeclarations: [WEATHER] }], toolConfig: { functionCallingConfig: { mode: 'AUTO', allowedFunctionNames: ['get_weather'] } } }, 'only be set when the Function calling mode is ANY'],
    ])('answers 400 INVALID_ARGUMENT for %j', async (body, message) => {
      const answer = await post('generateContent', { contents: [USER], ...body });
      expect(answer.status).toBe(400);
      expect(errorOf(answer.json())).toMatchObject({ status: 'INVALID_ARGUMENT', message: expect.stringContaining(message) });
    });

    it('refuses function declarations next to the JSON mime type before Gemini 3, unless function calling is off', async () => {
      const body = { contents: [USER], tools: [{ functionDeclarations: [WEATHER] }], generationConfig: { responseMimeType: 'application/json' } };
      const refused = await post('generateContent', body, undefined, '', 'gemini-2.5-flash');
      expect(refused.status).toBe(400);
      expect(errorOf(refused.json())).toMatchObject({ status: 'INVALID_ARGUMENT', message: "Function calling with a response mime type: 'application/json' is unsupported" });
      expect((await post('generateContent', { ...body, toolConfig: { functionCallingConfig: { mode: 'NONE' } } }, undefined, '', 'gemini-2.5-flash')).status).toBe(200);
      expect((await post('generateContent', body, undefined, '', 'gemini-3-pro-preview')).status).toBe(200);
    });

    it('rejects prompts over the context window with Google\'s token-limit message', async () => {
      sim.configure({ contextWindow: 5 });
      const answer = await generate({ contents: [{ role: 'user', parts: [{ text: 'word '.repeat(20) }] }] });
      expect(answer.status).toBe(400);
      expect(errorOf(answer.json()).message).toMatch(/^The input token count \(\d+\) exceeds the maximum number of tokens allowed \(5\)\.$/);
    });
  });

  describe('streamGenerateContent', () => {
    it('streams the same text as SSE events, the last with finishReason and full usage', async () => {
      const whole = (await generate()).json();
      const streamed = await post('streamGenerateContent', { contents: [USER] }, undefined, '?alt=sse');
      expect(streamed.headers['content-type']).toBe('text/event-stream');
      const list = events(streamed.text);
      const text = list.map((e) => ((e['candidates'] as { content: { parts: { text?: string }[] } }[])[0]?.content.parts[0]?.text ?? '')).join('');
      const wholeCandidate = (whole['candidates'] as { content: { parts: { text: string }[] } }[])[0];
      expect(text).toBe(wholeCandidate?.content.parts[0]?.text);
      const last = list[list.length - 1];
      expect(last).toMatchObject({ candidates: [{ finishReason: 'STOP' }], usageMetadata: whole['usageMetadata'] });
    });

    it('sends a forced function call whole in one event', async () => {
      const streamed = await post('streamGenerateContent', { contents: [USER], tools: [{ functionDeclarations: [WEATHER] }], toolConfig: { functionCallingConfig: { mode: 'ANY' } } }, undefined, '?alt=sse');
      const calls = events(streamed.text).flatMap((e) => (e['candidates'] as { content: { parts: Record<string, unknown>[] } }[]).flatMap((c) => c.content.parts.filter((p) => p['functionCall'])));
      expect(calls).toEqual([{ functionCall: { name: 'get_weather', args: { city: 'sample' } } }]);
    });

    it('drops the connection mid-stream when told to', async () => {
      sim.configure({ faults: [{ kind: 'drop_mid_stream', afterTokens: 2 }] });
      const error = await post('streamGenerateContent', { contents: [USER] }, undefined, '?alt=sse').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(Error);
      await sim.waitForRequest((r) => r.outcome === 'dropped');
    });
  });

  describe('faults', () => {
    it.each([
      [429, 'RESOURCE_EXHAUSTED'],
      [500, 'INTERNAL'],
      [503, 'UNAVAILABLE'],
      [504, 'DEADLINE_EXCEEDED'],
    ])('answers an injected %i in Google\'s error format', async (status, googleStatus) => {
      sim.configure({ faults: [{ kind: 'http_error', status, retryAfterSeconds: status === 429 ? 3 : undefined }] });
      const answer = await generate();
      expect(answer.status).toBe(status);
      const error = errorOf(answer.json());
      expect(error).toMatchObject({ code: status, status: googleStatus });
      if (status === 429) expect(error.details).toEqual([{ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '3s' }]);
    });
  });

  describe('embeddings', () => {
    it('embeds a batch with outputDimensionality, deterministically', async () => {
      const body = { requests: ['a', 'b'].map((text) => ({ model: 'models/gemini-embedding-001', content: { parts: [{ text }] }, outputDimensionality: 8 })) };
      const first = (await post('batchEmbedContents', body, undefined, '', 'gemini-embedding-001')).json() as { embeddings: { values: number[] }[] };
      const again = (await post('batchEmbedContents', body, undefined, '', 'gemini-embedding-001')).json() as { embeddings: { values: number[] }[] };
      expect(first.embeddings.map((e) => e.values.length)).toEqual([8, 8]);
      expect(first).toEqual(again);
      expect(Math.hypot(...(first.embeddings[0]?.values ?? []))).toBeCloseTo(1, 5);
    });

    it('embeds one content with embedContent, the same vector as in a batch', async () => {
      const single = (await post('embedContent', { content: { parts: [{ text: 'a' }] }, outputDimensionality: 8 }, undefined, '', 'gemini-embedding-001')).json() as { embedding: { values: number[] } };
      const batch = (await post('batchEmbedContents', { requests: [{ model: 'models/gemini-embedding-001', content: { parts: [{ text: 'a' }] }, outputDimensionality: 8 }] }, undefined, '', 'gemini-embedding-001')).json() as { embeddings: { values: number[] }[] };
      expect(single.embedding.values).toEqual(batch.embeddings[0]?.values);
    });

    it('refuses a batch whose requests name another model', async () => {
      const answer = await post('batchEmbedContents', { requests: [{ model: 'models/other', content: { parts: [{ text: 'a' }] } }] }, undefined, '', 'gemini-embedding-001');
      expect(answer.status).toBe(400);
      expect(errorOf(answer.json()).status).toBe('INVALID_ARGUMENT');
    });
  });
});
