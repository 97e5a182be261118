import OpenAI, { toFile } from 'openai';
import { encode } from 'gpt-tokenizer/cjs/encoding/o200k_base';
import { solidPng } from './core/png-image';
import { type RunningSimulator, readWavInfo, startSimulator } from './index';

const API_KEY = 'sk-sim-test';

const weatherTool: OpenAI.Chat.Completions.ChatCompletionTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather for a city',
    parameters: {
      type: 'object',
      properties: {
        city: { type: 'string' },
        unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
        days: { type: 'integer' },
        detailed: { type: 'boolean' },
        note: { type: 'string' },
      },
      required: ['city', 'unit', 'days', 'detailed'],
    },
  },
};

describe('provider simulator driven by the official openai SDK', () => {
  let sim: RunningSimulator;
  let client: OpenAI;

  beforeAll(async () => {
    sim = await startSimulator({ apiKey: API_KEY, seed: 7 });
    client = new OpenAI({ baseURL: sim.baseUrl, apiKey: API_KEY, maxRetries: 0 });
  });

  afterEach(() => sim.reset());

  afterAll(async () => {
    await sim.close();
  });

  it('listens on 127.0.0.1 and exposes /v1 as the base URL', async () => {
    expect(sim.url).toBe(`http://127.0.0.1:${sim.port}`);
    expect(sim.baseUrl).toBe(`${sim.url}/v1`);
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toContain('gpt-4o-mini');
    expect(models.data[0]).toMatchObject({ object: 'model', owned_by: 'simulator' });
  });

  it('answers a chat completion deterministically with exact usage', async () => {
    const request = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'Say hello' }] };
    const first = await client.chat.completions.create(request);
    const second = await client.chat.completions.create(request);

    expect(first.id).toMatch(/^chatcmpl-/);
    expect(first.object).toBe('chat.completion');
    expect(first.model).toBe('gpt-4o-mini');
    const choice = first.choices[0];
    expect(choice?.finish_reason).toBe('stop');
    expect(choice?.message).toEqual({ role: 'assistant', content: expect.any(String), refusal: null });
    expect(choice?.message.content).toBe(second.choices[0]?.message.content);
    expect(first.usage).toEqual({
      prompt_tokens: 3 + encode('Say hello').length + 3,
      completion_tokens: 16,
      total_tokens: 3 + encode('Say hello').length + 3 + 16,
      prompt_tokens_details: { cached_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 0 },
    });
    expect(encode(choice?.message.content ?? '')).toHaveLength(16);
    expect(sim.requests()).toHaveLength(2);
    expect(sim.requests()[0]).toMatchObject({ path: '/v1/chat/completions', model: 'gpt-4o-mini', stream: false, outcome: 'completed' });
    expect(sim.requests()[0]?.headers['authorization']).toBe('present');
  });

  it('streams one token per chunk with include_usage', async () => {
    const messages = [{ role: 'user' as const, content: 'Stream please' }];
    const plain = await client.chat.completions.create({ model: 'gpt-4o', messages });
    const stream = await client.chat.completions.create({
      model: 'gpt-4o',
      messages,
      stream: true,
      stream_options: { include_usage: true },
    });

    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);

    const ids = new Set(chunks.map((c) => c.id));
    expect(ids.size).toBe(1);
    expect(chunks.every((c) => c.object === 'chat.completion.chunk')).toBe(true);
    expect(chunks[0]?.choices[0]?.delta).toEqual({ role: 'assistant', content: '' });
    const contentChunks = chunks.filter((c) => (c.choices[0]?.delta.content ?? '') !== '');
    expect(contentChunks).toHaveLength(16);
    for (const c of contentChunks) expect(encode(c.choices[0]?.delta.content ?? '')).toHaveLength(1);
    expect(contentChunks.map((c) => c.choices[0]?.delta.content).join('')).toBe(plain.choices[0]?.message.content);

    const finishChunk = chunks[chunks.length - 2];
    expect(finishChunk?.choices[0]).toMatchObject({ delta: {}, finish_reason: 'stop' });
    expect(chunks.slice(0, -1).every((c) => c.usage === null)).toBe(true);
    const usageChunk = chunks[chunks.length - 1];
    expect(usageChunk?.choices).toEqual([]);
    expect(usageChunk?.usage).toEqual(plain.usage);
    expect(sim.requests()[1]).toMatchObject({ stream: true, outcome: 'completed' });
  });

  it('returns a forced tool call with schema-complete arguments', async () => {
    const completion = await client.chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'Weather in Paris?' }],
      tools: [weatherTool],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
    });
    const choice = completion.choices[0];
    expect(choice?.finish_reason).toBe('tool_calls');
    expect(choice?.message.content).toBeNull();
    const call = choice?.message.tool_calls?.[0];
    expect(call?.id).toMatch(/^call_/);
    expect(call?.type).toBe('function');
    if (call?.type !== 'function') throw new Error('expected a function tool call');
    expect(call.function.name).toBe('get_weather');
    expect(JSON.parse(call.function.arguments)).toEqual({ city: 'sample', unit: 'celsius', days: 1, detailed: true });
    expect(completion.usage?.completion_tokens).toBe(encode(call.function.arguments).length);
  });

  it('streams a forced tool call as argument fragments', async () => {
    const stream = await client.chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'Weather in Paris?' }],
      tools: [weatherTool],
      tool_choice: 'required',
      stream: true,
    });
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);

    const first = chunks[0]?.choices[0]?.delta.tool_calls?.[0];
    expect(first).toMatchObject({ index: 0, type: 'function', function: { name: 'get_weather', arguments: '' } });
    expect(first?.id).toMatch(/^call_/);
    const fragments = chunks.slice(1).flatMap((c) => c.choices[0]?.delta.tool_calls ?? []);
    expect(fragments.length).toBeGreaterThan(3);
    for (const fragment of fragments) expect(fragment).toEqual({ index: 0, function: { arguments: expect.any(String) } });
    const args = fragments.map((f) => f.function?.arguments ?? '').join('');
    expect(JSON.parse(args)).toEqual({ city: 'sample', unit: 'celsius', days: 1, detailed: true });
    expect(chunks[chunks.length - 1]?.choices[0]?.finish_reason).toBe('tool_calls');
  });

  it('answers a tool result in text (round trip)', async () => {
    const messages: OpenAI.Chat.Completions.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Weather in Paris?' }];
    const first = await client.chat.completions.create({ model: 'gpt-4o', messages, tools: [weatherTool], tool_choice: 'required' });
    const call = first.choices[0]?.message.tool_calls?.[0];
    if (call?.type !== 'function') throw new Error('expected a function tool call');
    messages.push(first.choices[0]!.message, { role: 'tool', tool_call_id: call.id, content: '{"temperature": 21}' });

    const second = await client.chat.completions.create({ model: 'gpt-4o', messages, tools: [weatherTool], tool_choice: 'required' });
    expect(second.choices[0]?.finish_reason).toBe('stop');
    expect(second.choices[0]?.message.tool_calls).toBeUndefined();
    expect(second.choices[0]?.message.content).toMatch(/^Tool result received\./);
  });

  it('returns float and base64 embeddings that agree', async () => {
    const input = ['alpha', 'beta'];
    const floats = await client.embeddings.create({ model: 'text-embedding-3-small', input, encoding_format: 'float' });
    const base64 = await client.embeddings.create({ model: 'text-embedding-3-small', input, encoding_format: 'base64' });
    const sdkDecoded = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'alpha', dimensions: 64 });

    expect(floats.object).toBe('list');
    expect(floats.model).toBe('text-embedding-3-small');
    expect(floats.usage).toEqual({ prompt_tokens: 2 * 1, total_tokens: 2 });
    expect(floats.data.map((d) => d.index)).toEqual([0, 1]);
    const vector = floats.data[0]?.embedding ?? [];
    expect(vector).toHaveLength(1536);
    expect(Math.sqrt(vector.reduce((sum, v) => sum + v * v, 0))).toBeCloseTo(1, 5);

    const encoded = base64.data[0]?.embedding as unknown;
    expect(typeof encoded).toBe('string');
    const bytes = Buffer.from(encoded as string, 'base64');
    const decoded = Array.from({ length: bytes.length / 4 }, (_, i) => bytes.readFloatLE(i * 4));
    expect(decoded).toEqual(vector);

    expect(sdkDecoded.data[0]?.embedding).toHaveLength(64);
  });

  it('moderates texts and a multimodal input through the SDK', async () => {
    const texts = await client.moderations.create({ model: 'omni-moderation-latest', input: ['I hate you', 'Have a nice day'] });
    expect(texts.id).toMatch(/^modr-/);
    expect(texts.results.map((r) => r.flagged)).toEqual([true, false]);
    expect(texts.results[0]?.categories.hate).toBe(true);
    expect(texts.results[0]?.category_scores.hate).toBeGreaterThanOrEqual(0.9);

    const parts = await client.moderations.create({
      model: 'omni-moderation-latest',
      input: [
        { type: 'text', text: 'a picture' },
        { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
      ],
    });
    expect(parts.results).toHaveLength(1);
    expect(parts.results[0]?.flagged).toBe(false);
    expect(parts.results[0]?.category_applied_input_types.sexual).toEqual(['text', 'image']);
  });

  it('generates images through the SDK: GPT Image as b64_json with usage, DALL·E as URLs the simulator serves', async () => {
    const prompt = 'a paper boat on a pond';
    const gpt = await client.images.generate({ model: 'gpt-image-1', prompt, n: 2, quality: 'high', size: '1536x1024' });
    expect(gpt.data).toHaveLength(2);
    const png = Buffer.from(gpt.data?.[0]?.b64_json ?? '', 'base64');
    expect(png.subarray(1, 4).toString('ascii')).toBe('PNG');
    expect(gpt).toMatchObject({ quality: 'high', size: '1536x1024', output_format: 'png', background: 'opaque' });
    expect(gpt.usage).toEqual({ input_tokens: encode(prompt).length, input_tokens_details: { image_tokens: 0, text_tokens: encode(prompt).length }, output_tokens: 2 * 6208, total_tokens: encode(prompt).length + 2 * 6208 });

    const dalle = await client.images.generate({ model: 'dall-e-3', prompt, size: '1024x1792' });
    expect(dalle.usage).toBeUndefined();
    const image = dalle.data?.[0];
    expect(image?.revised_prompt).toContain(prompt);
    const fetched = await fetch(image?.url ?? '');
    expect(fetched.headers.get('content-type')).toBe('image/png');
    expect(Buffer.from(await fetched.arrayBuffer()).subarray(1, 4).toString('ascii')).toBe('PNG');

    const error: unknown = await client.images.generate({ model: 'dall-e-3', prompt, n: 2 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect((error as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('n');
    expect(sim.requests().map((r) => r.path)).toEqual(['/v1/images/generations', '/v1/images/generations', '/v1/images/generations']);
  });

  it('edits images through the SDK: one file as image, a list as image[], usage counting the inputs', async () => {
    const prompt = 'paint the boat red';
    const photo = await toFile(solidPng([30, 60, 90]), 'boat.png', { type: 'image/png' });
    const one = await client.images.edit({ model: 'gpt-image-1', image: photo, prompt, quality: 'low' });
    expect(Buffer.from(one.data?.[0]?.b64_json ?? '', 'base64').subarray(1, 4).toString('ascii')).toBe('PNG');
    expect(one.usage).toEqual({ input_tokens: encode(prompt).length + 194, input_tokens_details: { image_tokens: 194, text_tokens: encode(prompt).length }, output_tokens: 272, total_tokens: encode(prompt).length + 194 + 272 });
    const several = await client.images.edit({ model: 'gpt-image-1', image: [photo, await toFile(solidPng([1, 2, 3]), 'sky.png', { type: 'image/png' })], prompt });
    expect(several.usage?.input_tokens_details.image_tokens).toBe(2 * 194);
    const dalle = await client.images.edit({ model: 'dall-e-2', image: photo, mask: await toFile(solidPng([0, 0, 0]), 'mask.png', { type: 'image/png' }), prompt, response_format: 'url' });
    expect(dalle.data?.[0]?.url).toMatch(/\/_sim\/images\/[A-Za-z0-9]+-[0-9a-f]{6}\.png$/);

    const error: unknown = await client.images.edit({ model: 'dall-e-2', image: [photo, photo], prompt }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect((error as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('image');
    expect(sim.requests().map((r) => Object.keys(r.body as object).filter((k) => k.startsWith('image')))).toEqual([['image'], ['image[]'], ['image'], ['image[]']]);
  });

  it('speaks and transcribes through the SDK: a WAV spoken is transcribed with its length, every format typed as the SDK expects', async () => {
    const spoken = await client.audio.speech.create({ model: 'gpt-4o-mini-tts', input: 'Good morning, everyone.', voice: 'coral', response_format: 'wav' });
    expect(spoken.headers.get('content-type')).toBe('audio/wav');
    const wav = Buffer.from(await spoken.arrayBuffer());
    expect(readWavInfo(wav)).toMatchObject({ sampleRate: 24_000, channels: 1, bitsPerSample: 16, durationMs: 23 * 60 });
    const mp3 = Buffer.from(await (await client.audio.speech.create({ model: 'tts-1', input: 'Hi', voice: 'alloy' })).arrayBuffer());
    expect([...mp3.subarray(0, 2)]).toEqual([0xff, 0xfb]);

    const file = await toFile(wav, 'morning.wav', { type: 'audio/wav' });
    const text = 'Simulated transcript of morning.wav (1.38 seconds of WAV audio).';
    const json = await client.audio.transcriptions.create({ file, model: 'whisper-1' });
    expect(json).toEqual({ text, usage: { type: 'duration', seconds: 2 } });
    const tokens = await client.audio.transcriptions.create({ file, model: 'gpt-4o-transcribe', prompt: 'A greeting.' });
    expect(tokens.usage).toEqual({
      type: 'tokens',
      input_tokens: encode('A greeting.').length + 14,
      input_token_details: { text_tokens: encode('A greeting.').length, audio_tokens: 14 },
      output_tokens: encode(text).length,
      total_tokens: encode('A greeting.').length + 14 + encode(text).length,
    });
    const verbose = await client.audio.transcriptions.create({ file, model: 'whisper-1', response_format: 'verbose_json', timestamp_granularities: ['word'] });
    expect(verbose).toMatchObject({ language: 'english', duration: 1.38, text });
    expect(verbose.words?.map((w) => w.word)).toEqual(['Simulated', 'transcript', 'of', 'morning.wav', '1.38', 'seconds', 'of', 'WAV', 'audio']);
    expect(await client.audio.transcriptions.create({ file, model: 'whisper-1', response_format: 'text' })).toBe(`${text}\n`);
    expect(await client.audio.translations.create({ file, model: 'whisper-1', response_format: 'srt' })).toBe(
      '1\n00:00:00,000 --> 00:00:01,380\nSimulated translation of morning.wav (1.38 seconds of WAV audio).\n\n',
    );

    const error: unknown = await client.audio.translations.create({ file, model: 'gpt-4o-transcribe' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect((error as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('model');
    const badVoice: unknown = await client.audio.speech.create({ model: 'tts-1', input: 'x', voice: 'robot' }).catch((e: unknown) => e);
    expect((badVoice as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('voice');
    expect(sim.requests().find((r) => r.path === '/v1/audio/translations')?.body).toEqual({ file: { name: 'morning.wav', type: 'audio/wav', size: wav.length }, model: 'whisper-1', response_format: 'srt' });
  });

  it('rejects a bad API key with 401', async () => {
    const intruder = new OpenAI({ baseURL: sim.baseUrl, apiKey: 'sk-wrong', maxRetries: 0 });
    const error: unknown = await intruder.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((error as InstanceType<typeof OpenAI.AuthenticationError>).code).toBe('invalid_api_key');
    expect(sim.requests()[0]).toMatchObject({ outcome: 'error', headers: expect.objectContaining({ authorization: 'present' }) });
    expect(JSON.stringify(sim.requests())).not.toContain('sk-wrong');
  });

  it('injects a 429 with retry-after', async () => {
    sim.configure({ faults: [{ kind: 'http_error', status: 429, retryAfterSeconds: 7, remaining: 1 }] });
    const error: unknown = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    const rateLimited = error as InstanceType<typeof OpenAI.RateLimitError>;
    expect(rateLimited.status).toBe(429);
    expect(rateLimited.code).toBe('rate_limit_exceeded');
    expect(rateLimited.headers.get('retry-after')).toBe('7');

    const recovered = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] });
    expect(recovered.choices[0]?.finish_reason).toBe('stop');
  });

  it('observes a client abort mid-stream and stops generating', async () => {
    sim.configure({ tokensPerSecond: 50, completionTokens: 500 });
    const controller = new AbortController();
    const stream = await client.chat.completions.create(
      { model: 'gpt-4o', messages: [{ role: 'user', content: 'long story' }], stream: true },
      { signal: controller.signal },
    );
    let received = 0;
    // The SDK ends iteration quietly on an abort (some versions throw instead); either is fine here.
    await (async () => {
      for await (const chunk of stream) {
        if (chunk.choices[0]?.delta.content) received++;
        if (received === 3) controller.abort();
      }
    })().catch(() => undefined);
    expect(received).toBeLessThan(500);

    const aborted = await sim.waitForRequest((r) => r.outcome === 'aborted');
    expect(aborted).toMatchObject({ path: '/v1/chat/completions', stream: true });
    expect(aborted.endedAt).toBeGreaterThanOrEqual(aborted.receivedAt);
  });
});
