import { synthesizeSpeech } from '../core/simulated-audio';
import { countTokens } from '../core/token-counter';
import { readWavInfo } from '../core/wav-audio';
import { SPEECH_SSE_CHUNK_BYTES } from './openai-audio-formats';
import { type RunningSimulator, startSimulator } from '../index';

/** OpenAI's Audio API over real HTTP: multipart uploads built with the platform's FormData, both dialects. */
describe('OpenAI audio wire format over HTTP', () => {
  let sim: RunningSimulator;

  beforeAll(async () => {
    sim = await startSimulator();
  });
  afterEach(() => sim.reset());
  afterAll(() => sim.close());

  interface Answer {
    status: number;
    type: string | null;
    headers: Headers;
    bytes: Buffer;
    text: string;
  }

  const answer = async (response: Response): Promise<Answer> => {
    const bytes = Buffer.from(await response.arrayBuffer());
    return { status: response.status, type: response.headers.get('content-type'), headers: response.headers, bytes, text: bytes.toString('utf8') };
  };
  const wavFile = (durationMs: number, name = 'clip.wav'): File => new File([synthesizeSpeech('wav', durationMs)], name, { type: 'audio/wav' });
  const upload = async (path: string, fields: Record<string, string | string[] | File | undefined>, headers: Record<string, string> = {}): Promise<Answer> => {
    const form = new FormData();
    for (const [name, value] of Object.entries(fields)) {
      if (value === undefined) continue;
      if (Array.isArray(value)) for (const item of value) form.append(name, item);
      else form.append(name, value);
    }
    return answer(await fetch(`${sim.url}${path}`, { method: 'POST', body: form, headers }));
  };
  const transcribe = (fields: Record<string, string | string[] | File | undefined>, headers?: Record<string, string>) =>
    upload('/v1/audio/transcriptions', { file: wavFile(2500), model: 'whisper-1', ...fields }, headers);
  const translate = (fields: Record<string, string | string[] | File | undefined>) => upload('/v1/audio/translations', { file: wavFile(2500), model: 'whisper-1', ...fields });
  const speak = async (body: unknown, headers: Record<string, string> = {}, path = '/v1/audio/speech'): Promise<Answer> =>
    answer(await fetch(`${sim.url}${path}`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } }));
  const errorOf = (response: Answer): unknown => (JSON.parse(response.text) as { error: unknown }).error;

  const WHISPER_TEXT = 'Simulated transcript of clip.wav (2.5 seconds of WAV audio).';

  describe('transcriptions', () => {
    it('answers json with the deterministic transcript and Whisper’s duration usage', async () => {
      const first = await transcribe({});
      expect(first.status).toBe(200);
      expect(first.type).toBe('application/json');
      expect(JSON.parse(first.text)).toEqual({ text: WHISPER_TEXT, usage: { type: 'duration', seconds: 3 } });
      expect((await transcribe({})).text).toBe(first.text);
    });

    it('answers gpt-4o-transcribe with token usage: the prompt, 10 audio tokens a second, the transcript', async () => {
      const prompt = 'Speakers: Ada and Grace.';
      const body = JSON.parse((await transcribe({ model: 'gpt-4o-transcribe', prompt, file: wavFile(7300) })).text);
      expect(body.text).toBe('Simulated transcript of clip.wav (7.3 seconds of WAV audio). Part 2 of 2.');
      const textTokens = countTokens(prompt);
      const outputTokens = countTokens(body.text);
      expect(body.usage).toEqual({
        type: 'tokens',
        input_tokens: textTokens + 73,
        input_token_details: { text_tokens: textTokens, audio_tokens: 73 },
        output_tokens: outputTokens,
        total_tokens: textTokens + 73 + outputTokens,
      });
      const text = await transcribe({ model: 'gpt-4o-mini-transcribe', response_format: 'text' });
      expect([text.status, text.type, text.text]).toEqual([200, 'text/plain; charset=utf-8', `${WHISPER_TEXT}\n`]);
    });

    it('answers verbose_json with segments every 5 s, words when asked, the language and usage', async () => {
      const response = await transcribe({ response_format: 'verbose_json', language: 'fr', 'timestamp_granularities[]': ['word', 'segment'], file: wavFile(6000) });
      const body = JSON.parse(response.text);
      expect(body).toMatchObject({ task: 'transcribe', language: 'french', duration: 6, text: 'Simulated transcript of clip.wav (6 seconds of WAV audio). Part 2 of 2.', usage: { type: 'duration', seconds: 6 } });
      expect(body.segments.map((s: { id: number; start: number; end: number; text: string }) => [s.id, s.start, s.end, s.text])).toEqual([
        [0, 0, 5, ' Simulated transcript of clip.wav (6 seconds of WAV audio).'],
        [1, 5, 6, ' Part 2 of 2.'],
      ]);
      expect(body.words[0]).toEqual({ word: 'Simulated', start: 0, end: expect.any(Number) });
      expect(body.words.at(-1)).toEqual({ word: '2', start: expect.any(Number), end: 6 });
      const segmentsOnly = JSON.parse((await transcribe({ response_format: 'verbose_json' })).text);
      expect(segmentsOnly).toHaveProperty('segments');
      expect(segmentsOnly).not.toHaveProperty('words');
      expect(segmentsOnly.language).toBe('english');
    });

    it('answers text, srt and vtt as text/plain in their real formats', async () => {
      const file = wavFile(6500);
      const full = 'Simulated transcript of clip.wav (6.5 seconds of WAV audio).';
      const text = await transcribe({ response_format: 'text', file });
      expect([text.type, text.text]).toEqual(['text/plain; charset=utf-8', `${full} Part 2 of 2.\n`]);
      const srt = await transcribe({ response_format: 'srt', file });
      expect([srt.type, srt.text]).toEqual(['text/plain; charset=utf-8', `1\n00:00:00,000 --> 00:00:05,000\n${full}\n\n2\n00:00:05,000 --> 00:00:06,500\nPart 2 of 2.\n\n`]);
      const vtt = await transcribe({ response_format: 'vtt', file });
      expect([vtt.type, vtt.text]).toEqual(['text/plain; charset=utf-8', `WEBVTT\n\n00:00:00.000 --> 00:00:05.000\n${full}\n\n00:00:05.000 --> 00:00:06.500\nPart 2 of 2.\n\n`]);
    });

    it('takes a file that is not a WAV at 16 kB/s', async () => {
      const mp3 = new File([new Uint8Array(16_000 * 4)], 'memo.mp3', { type: 'audio/mpeg' });
      expect(JSON.parse((await transcribe({ file: mp3 })).text)).toEqual({ text: 'Simulated transcript of memo.mp3.', usage: { type: 'duration', seconds: 4 } });
      const verbose = JSON.parse((await transcribe({ file: mp3, response_format: 'verbose_json' })).text);
      expect(verbose.duration).toBe(4);
    });

    it('logs the form fields and what the file was, never its bytes', async () => {
      await transcribe({ response_format: 'srt', 'timestamp_granularities[]': ['segment'], prompt: 'Hello' });
      const [logged] = sim.requests();
      expect(logged).toMatchObject({
        path: '/v1/audio/transcriptions',
        model: 'whisper-1',
        stream: false,
        outcome: 'completed',
        body: { file: { name: 'clip.wav', type: 'audio/wav', size: 44 + 2500 * 48 }, model: 'whisper-1', response_format: 'srt', 'timestamp_granularities[]': ['segment'], prompt: 'Hello' },
      });
      expect(JSON.stringify(logged)).not.toContain('RIFF');
      const listed = (await (await fetch(`${sim.url}/_sim/requests`)).json()) as { data: { body: unknown }[] };
      expect(listed.data[0]?.body).toEqual(logged?.body);
    });

    it.each([
      ['no file', { file: undefined }, 'file', 'missing_required_parameter'],
      ['a text field for the file', { file: 'clip.wav' }, 'file', 'invalid_type'],
      ['no model', { model: undefined }, 'model', 'missing_required_parameter'],
      ['an empty file', { file: new File([], 'clip.wav') }, 'file', 'audio_too_short'],
      ['a WAV under 0.1 s', { file: wavFile(50) }, 'file', 'audio_too_short'],
      ['a file type OpenAI does not take', { file: new File([new Uint8Array(100)], 'notes.txt') }, 'file', 'invalid_value'],
      ['an unknown response_format', { response_format: 'xml' }, 'response_format', 'invalid_value'],
      ['diarized_json', { response_format: 'diarized_json' }, 'response_format', 'invalid_value'],
      ['srt from gpt-4o-transcribe', { model: 'gpt-4o-transcribe', response_format: 'srt' }, 'response_format', 'unsupported_value'],
      ['verbose_json from gpt-4o-mini-transcribe', { model: 'gpt-4o-mini-transcribe', response_format: 'verbose_json' }, 'response_format', 'unsupported_value'],
      ['vtt from gpt-4o-transcribe', { model: 'gpt-4o-transcribe', response_format: 'vtt' }, 'response_format', 'unsupported_value'],
      ['a stream from gpt-4o-transcribe', { model: 'gpt-4o-transcribe', stream: 'true' }, 'stream', 'unsupported_parameter'],
      ['a language that is not ISO-639-1', { language: 'english' }, 'language', 'invalid_language_format'],
      ['a temperature above 1', { temperature: '2' }, 'temperature', 'decimal_above_max_value'],
      ['an unknown timestamp granularity', { response_format: 'verbose_json', 'timestamp_granularities[]': ['sentence'] }, 'timestamp_granularities[]', 'invalid_value'],
    ])("refuses %s with OpenAI's 400", async (_name, fields, param, code) => {
      const response = await transcribe(fields);
      expect(response.status).toBe(400);
      expect(errorOf(response)).toEqual({ message: expect.any(String), type: 'invalid_request_error', param, code });
      expect(sim.requests()[0]?.outcome).toBe('error');
    });

    it('refuses a body that is not a multipart form, naming the content type it got', async () => {
      const json = await answer(await fetch(`${sim.url}/v1/audio/transcriptions`, { method: 'POST', body: JSON.stringify({ model: 'whisper-1' }), headers: { 'content-type': 'application/json' } }));
      expect(json.status).toBe(400);
      expect(errorOf(json)).toEqual({ message: expect.stringContaining('Invalid Content-Type header (application/json), expected multipart/form-data'), type: 'invalid_request_error', param: null, code: null });
      const broken = await answer(await fetch(`${sim.url}/v1/audio/transcriptions`, { method: 'POST', body: 'not a form', headers: { 'content-type': 'multipart/form-data; boundary=abc' } }));
      expect(broken.status).toBe(400);
      expect(errorOf(broken)).toMatchObject({ message: 'Could not parse multipart form.' });
    });
  });

  describe('translations', () => {
    it('answers every format in English, without usage', async () => {
      const text = 'Simulated translation of clip.wav (2.5 seconds of WAV audio).';
      expect(JSON.parse((await translate({})).text)).toEqual({ text });
      expect((await translate({ response_format: 'text' })).text).toBe(`${text}\n`);
      expect((await translate({ response_format: 'srt' })).text).toBe(`1\n00:00:00,000 --> 00:00:02,500\n${text}\n\n`);
      expect((await translate({ response_format: 'vtt' })).text).toBe(`WEBVTT\n\n00:00:00.000 --> 00:00:02.500\n${text}\n\n`);
      const verbose = JSON.parse((await translate({ response_format: 'verbose_json', prompt: 'Bonjour' })).text);
      expect(verbose).toEqual({ task: 'translate', language: 'english', duration: 2.5, text, segments: [expect.objectContaining({ id: 0, start: 0, end: 2.5, text: ` ${text}` })] });
    });

    it('refuses a model other than Whisper, and what transcriptions refuse', async () => {
      const gpt = await translate({ model: 'gpt-4o-transcribe' });
      expect(gpt.status).toBe(400);
      expect(errorOf(gpt)).toMatchObject({ param: 'model', code: 'unsupported_value' });
      expect(errorOf(await translate({ file: undefined }))).toMatchObject({ param: 'file', code: 'missing_required_parameter' });
      expect(errorOf(await translate({ model: undefined }))).toMatchObject({ param: 'model', code: 'missing_required_parameter' });
      expect(errorOf(await translate({ response_format: 'csv' }))).toMatchObject({ param: 'response_format', code: 'invalid_value' });
    });
  });

  describe('speech', () => {
    const request = { model: 'gpt-4o-mini-tts', input: 'The quick brown fox.', voice: 'alloy' };

    it('answers wav as a valid 24 kHz mono 16-bit WAV, 60 ms a character, and pcm as its samples', async () => {
      const wav = await speak({ ...request, response_format: 'wav' });
      expect([wav.status, wav.type]).toEqual([200, 'audio/wav']);
      expect(readWavInfo(wav.bytes)).toMatchObject({ audioFormat: 1, sampleRate: 24_000, channels: 1, bitsPerSample: 16, durationMs: 20 * 60 });
      const longer = await speak({ ...request, input: request.input.repeat(3), response_format: 'wav' });
      expect(readWavInfo(longer.bytes)?.durationMs).toBe(3 * 20 * 60);
      const faster = await speak({ ...request, response_format: 'wav', speed: 2 });
      expect(readWavInfo(faster.bytes)?.durationMs).toBe(600);
      const pcm = await speak({ ...request, response_format: 'pcm' });
      expect([pcm.status, pcm.type]).toEqual([200, 'audio/pcm']);
      expect(pcm.bytes).toEqual(wav.bytes.subarray(44));
    });

    it.each([
      [undefined, 'audio/mpeg', [0xff, 0xfb]],
      ['mp3', 'audio/mpeg', [0xff, 0xfb]],
      ['opus', 'audio/opus', [...Buffer.from('OggS')]],
      ['aac', 'audio/aac', [0xff, 0xf1]],
      ['flac', 'audio/flac', [...Buffer.from('fLaC')]],
    ])('answers %s as %s, starting with its magic', async (format, contentType, magic) => {
      const response = await speak({ ...request, response_format: format, voice: { id: 'voice_custom' } });
      expect([response.status, response.type]).toEqual([200, contentType]);
      expect([...response.bytes.subarray(0, magic.length)]).toEqual(magic);
      // Streamed as OpenAI sends it: chunked, no length known up front.
      expect(response.headers.get('transfer-encoding')).toBe('chunked');
      expect(response.headers.get('content-length')).toBeNull();
    });

    it('sends the audio in 8 KiB pieces paced by ttftMs and tokensPerSecond: the first arrives while the rest are still to come', async () => {
      const whole = await speak({ ...request, response_format: 'wav' });
      const pieces = Math.ceil(whole.bytes.length / SPEECH_SSE_CHUNK_BYTES);
      expect(pieces).toBeGreaterThan(3);
      sim.reset();
      sim.configure({ ttftMs: 30, tokensPerSecond: 20 });
      const response = await fetch(`${sim.url}/v1/audio/speech`, { method: 'POST', body: JSON.stringify({ ...request, response_format: 'wav' }), headers: { 'content-type': 'application/json' } });
      expect(response.headers.get('content-type')).toBe('audio/wav');
      const reader = (response.body as ReadableStream<Uint8Array>).getReader();
      const received: Uint8Array[] = [];
      const first = await reader.read();
      received.push(first.value ?? new Uint8Array());
      // The first piece is here and the answer is not: the simulator is still sending.
      expect(first.value?.length).toBeGreaterThan(0);
      expect(first.value?.length).toBeLessThanOrEqual(SPEECH_SSE_CHUNK_BYTES);
      expect(sim.requests()[0]).toMatchObject({ path: '/v1/audio/speech', outcome: 'pending' });
      for (let next = await reader.read(); !next.done; next = await reader.read()) received.push(next.value);
      expect(Buffer.concat(received)).toEqual(whole.bytes);
      // ttft, then a piece every 50 ms: so long between the times the simulator recorded it received and answered it.
      const answered = await sim.waitForRequest((r) => r.outcome === 'completed');
      expect((answered.endedAt ?? 0) - answered.receivedAt).toBeGreaterThanOrEqual(30 + (pieces - 1) * 50 - 5);
    });

    it('cuts the audio after afterTokens pieces for drop_mid_stream, having sent those pieces', async () => {
      sim.configure({ faults: [{ kind: 'drop_mid_stream', path: 'audio', afterTokens: 2 }] });
      const response = await fetch(`${sim.url}/v1/audio/speech`, { method: 'POST', body: JSON.stringify({ ...request, response_format: 'pcm' }), headers: { 'content-type': 'application/json' } });
      expect(response.status).toBe(200);
      const reader = (response.body as ReadableStream<Uint8Array>).getReader();
      let received = 0;
      const failure = await (async () => {
        for (let next = await reader.read(); !next.done; next = await reader.read()) received += next.value.length;
      })().then(
        () => undefined,
        (error: unknown) => error,
      );
      // undici's own words for a body cut short.
      expect(failure).toMatchObject({ message: 'terminated' });
      expect(received).toBe(2 * SPEECH_SSE_CHUNK_BYTES);
      await sim.waitForRequest((r) => r.outcome === 'dropped');
    });

    it('stops sending when the client goes away mid-answer, logged as aborted', async () => {
      sim.configure({ ttftMs: 0, tokensPerSecond: 5 });
      const controller = new AbortController();
      const response = await fetch(`${sim.url}/v1/audio/speech`, { method: 'POST', body: JSON.stringify({ ...request, response_format: 'wav' }), headers: { 'content-type': 'application/json' }, signal: controller.signal });
      const reader = (response.body as ReadableStream<Uint8Array>).getReader();
      await reader.read();
      controller.abort();
      await expect(sim.waitForRequest((r) => r.outcome === 'aborted')).resolves.toMatchObject({ path: '/v1/audio/speech' });
    });

    it('streams speech.audio.delta events and speech.audio.done with usage for stream_format sse', async () => {
      const input = 'A'.repeat(300);
      const response = await speak({ ...request, input, response_format: 'wav', stream_format: 'sse', instructions: 'Calm.' });
      expect([response.status, response.type]).toEqual([200, 'text/event-stream']);
      const events = response.text
        .split('\n\n')
        .filter((e) => e.length > 0)
        .map((e) => JSON.parse(e.replace(/^data: /, '')) as { type: string; audio?: string; usage?: unknown });
      const deltas = events.slice(0, -1);
      expect(deltas.length).toBeGreaterThan(1);
      expect(deltas.every((e) => e.type === 'speech.audio.delta')).toBe(true);
      const audio = Buffer.concat(deltas.map((e) => Buffer.from(e.audio ?? '', 'base64')));
      expect(readWavInfo(audio)?.durationMs).toBe(300 * 60);
      expect(events.at(-1)).toEqual({ type: 'speech.audio.done', usage: { input_tokens: countTokens(input) + countTokens('Calm.'), output_tokens: 180, total_tokens: countTokens(input) + countTokens('Calm.') + 180 } });
      expect(sim.requests()[0]).toMatchObject({ stream: true, outcome: 'completed' });
    });

    it.each([
      ['no model', { model: undefined }, 'model', 'missing_required_parameter'],
      ['no input', { input: undefined }, 'input', 'missing_required_parameter'],
      ['an empty input', { input: '' }, 'input', 'string_below_min_length'],
      ['an input over 4096 characters', { input: 'a'.repeat(4097) }, 'input', 'string_above_max_length'],
      ['no voice', { voice: undefined }, 'voice', 'missing_required_parameter'],
      ['an unknown voice', { voice: 'robot' }, 'voice', 'invalid_value'],
      ['an unknown format', { response_format: 'ogg' }, 'response_format', 'invalid_value'],
      ['a speed above 4', { speed: 5 }, 'speed', 'decimal_above_max_value'],
      ['a speed below 0.25', { speed: 0.1 }, 'speed', 'decimal_below_min_value'],
      ['SSE from tts-1', { model: 'tts-1', stream_format: 'sse' }, 'stream_format', 'unsupported_value'],
    ])("refuses %s with OpenAI's 400", async (_name, patch, param, code) => {
      const response = await speak({ ...request, ...patch });
      expect(response.status).toBe(400);
      expect(errorOf(response)).toEqual({ message: expect.any(String), type: 'invalid_request_error', param, code });
    });

    it('takes 4096 characters, counted as code points, at most a minute long', async () => {
      const response = await speak({ ...request, input: '😀'.repeat(4096), response_format: 'pcm' });
      expect(response.status).toBe(200);
      expect(response.bytes).toHaveLength(60 * 24_000 * 2);
    });

    it('refuses a body that is not JSON', async () => {
      const response = await answer(await fetch(`${sim.url}/v1/audio/speech`, { method: 'POST', body: '{"input":', headers: { 'content-type': 'application/json' } }));
      expect(response.status).toBe(400);
      expect(errorOf(response)).toMatchObject({ message: expect.stringContaining('We could not parse the JSON body'), param: null });
    });
  });

  describe('Azure OpenAI deployments', () => {
    const azure = (deployment: string, route: string) => `/openai/deployments/${deployment}/audio/${route}?api-version=2024-10-21`;

    it("serves transcriptions, translations and speech under Azure's auth, the deployment's name telling the model", async () => {
      sim.setApiKey('sk-azure');
      const key = { 'api-key': 'sk-azure' };
      const file = wavFile(2500);
      expect((await upload(azure('whisper', 'transcriptions'), { file })).status).toBe(401);
      const whisper = await upload(azure('whisper', 'transcriptions'), { file }, key);
      expect(JSON.parse(whisper.text)).toEqual({ text: WHISPER_TEXT, usage: { type: 'duration', seconds: 3 } });
      const gpt = await upload(azure('gpt-4o-transcribe', 'transcriptions'), { file, model: 'whisper-1' }, key);
      expect(JSON.parse(gpt.text).usage.type).toBe('tokens');
      expect(errorOf(await upload(azure('gpt-4o-transcribe', 'transcriptions'), { file, response_format: 'srt' }, key))).toMatchObject({ param: 'response_format' });
      expect((await upload(azure('whisper', 'translations'), { file, response_format: 'vtt' }, key)).text).toMatch(/^WEBVTT\n\n00:00:00\.000 --> 00:00:02\.500\nSimulated translation of clip\.wav/);
      expect(errorOf(await upload(azure('gpt-4o-transcribe', 'translations'), { file }, key))).toMatchObject({ param: 'model' });
      const spoken = await speak({ input: 'Hello.', voice: 'nova', response_format: 'wav' }, key, azure('tts', 'speech'));
      expect([spoken.status, spoken.type, readWavInfo(spoken.bytes)?.durationMs]).toEqual([200, 'audio/wav', 360]);
      expect(errorOf(await speak({ input: 'Hello.', voice: 'nova', stream_format: 'sse' }, key, azure('tts-1-hd', 'speech')))).toMatchObject({ param: 'stream_format' });
      expect(sim.requests().map((r) => r.path)).toEqual([
        '/openai/deployments/whisper/audio/transcriptions',
        '/openai/deployments/whisper/audio/transcriptions',
        '/openai/deployments/gpt-4o-transcribe/audio/transcriptions',
        '/openai/deployments/gpt-4o-transcribe/audio/transcriptions',
        '/openai/deployments/whisper/audio/translations',
        '/openai/deployments/gpt-4o-transcribe/audio/translations',
        '/openai/deployments/tts/audio/speech',
        '/openai/deployments/tts-1-hd/audio/speech',
      ]);
    });

    it('answers a request without api-version with 404, as Azure does', async () => {
      const response = await upload('/openai/deployments/whisper/audio/transcriptions', { file: wavFile(500) });
      expect(response.status).toBe(404);
    });
  });

  describe('auth, faults, latency and usage', () => {
    it('checks the bearer key on every audio route', async () => {
      sim.setApiKey('sk-audio');
      expect((await transcribe({})).status).toBe(401);
      expect((await translate({})).status).toBe(401);
      expect((await speak({ model: 'tts-1', input: 'x', voice: 'alloy' })).status).toBe(401);
      expect((await transcribe({}, { authorization: 'Bearer sk-audio' })).status).toBe(200);
    });

    it("applies faults aimed at audio to all three routes, and no other path's", async () => {
      sim.configure({ faults: [{ kind: 'http_error', status: 429, retryAfterSeconds: 3, path: 'audio' }] });
      for (const limited of [await transcribe({}), await translate({}), await speak({ model: 'tts-1', input: 'x', voice: 'alloy' })]) {
        expect(limited.status).toBe(429);
        expect(limited.headers.get('retry-after')).toBe('3');
        expect(errorOf(limited)).toMatchObject({ type: 'requests', code: 'rate_limit_exceeded' });
      }
      sim.configure({ faults: [{ kind: 'http_error', status: 500, path: 'images' }] });
      expect((await transcribe({})).status).toBe(200);
      sim.configure({ faults: [{ kind: 'http_error', status: 503, path: 'audio', model: 'gpt-4o-transcribe' }] });
      expect((await transcribe({})).status).toBe(200);
      expect((await transcribe({ model: 'gpt-4o-transcribe' })).status).toBe(503);
    });

    it('accepts audio faults through the control route, and drops an answer midway for drop_mid_stream', async () => {
      const configured = await fetch(`${sim.url}/_sim/behaviour`, { method: 'POST', body: JSON.stringify({ faults: [{ kind: 'drop_mid_stream', path: 'audio' }] }) });
      expect(configured.status).toBe(200);
      await expect(speak({ model: 'tts-1', input: 'Hello.', voice: 'alloy', response_format: 'wav' })).rejects.toThrow();
      await expect(transcribe({})).rejects.toThrow();
      expect(sim.requests().map((r) => r.outcome)).toEqual(['dropped', 'dropped']);
    });

    it('drops a speech SSE stream after the given number of deltas', async () => {
      sim.configure({ faults: [{ kind: 'drop_mid_stream', path: 'audio', afterTokens: 1 }] });
      const response = await fetch(`${sim.url}/v1/audio/speech`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o-mini-tts', input: 'A'.repeat(500), voice: 'alloy', stream_format: 'sse', response_format: 'pcm' }),
      });
      expect(response.status).toBe(200);
      await expect(response.text()).rejects.toThrow();
      await sim.waitForRequest((r) => r.outcome === 'dropped');
    });

    it('never answers a timeout fault until the client gives up', async () => {
      sim.configure({ faults: [{ kind: 'timeout', path: 'audio', remaining: 1 }] });
      const controller = new AbortController();
      const form = new FormData();
      form.append('file', wavFile(500));
      form.append('model', 'whisper-1');
      const pending = fetch(`${sim.url}/v1/audio/transcriptions`, { method: 'POST', body: form, signal: controller.signal });
      await sim.waitForRequest((r) => r.model === 'whisper-1' && r.outcome === 'pending');
      controller.abort();
      await expect(pending).rejects.toThrow();
      await expect(sim.waitForRequest((r) => r.outcome === 'aborted')).resolves.toMatchObject({ path: '/v1/audio/transcriptions' });
    });

    it('waits latencyMs, and leaves usage out with omitUsage', async () => {
      sim.configure({ latencyMs: 40, omitUsage: true });
      const body = JSON.parse((await transcribe({ response_format: 'verbose_json' })).text);
      // Answered latencyMs after it was received, by the times the simulator recorded.
      const answered = await sim.waitForRequest((r) => r.path === '/v1/audio/transcriptions' && r.outcome !== 'pending');
      expect((answered.endedAt ?? 0) - answered.receivedAt).toBeGreaterThanOrEqual(35);
      expect(body).not.toHaveProperty('usage');
      expect(JSON.parse((await transcribe({})).text)).toEqual({ text: WHISPER_TEXT });
      const sse = await speak({ model: 'gpt-4o-mini-tts', input: 'Hi', voice: 'alloy', stream_format: 'sse' });
      expect(sse.text.trimEnd().split('\n\n').at(-1)).toBe('data: {"type":"speech.audio.done"}');
    });
  });
});
