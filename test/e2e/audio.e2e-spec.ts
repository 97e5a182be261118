import Decimal from 'decimal.js';
import { toFile } from 'openai';
import { wavClip } from '@openrouter/provider-simulator';
import { apiError } from '../support/api-error';
import { startTestGateway, type TestGateway } from '../support/test-gateway';
import { usageRowOf } from '../support/usage-rows';

/**
 * OpenAI's Audio API through the whole gateway with the official SDK: transcriptions and
 * translations uploaded as multipart forms (Whisper billed by the minute of audio, the
 * gpt-4o transcribe models by their token usage), every response format the SDK reads, speech
 * streamed as audio as the provider makes it and billed by the character, and every way they can fail.
 */


/** Whole seconds: what Whisper reports (`usage.seconds`, rounded up) is then the file's own length. */
const SECONDS = 3;
const PER_AUDIO_MINUTE = '0.006';
const PER_MILLION_CHARACTERS = '15';

function audioModels(doc: Record<string, unknown>): void {
  const models = doc['models'] as Array<Record<string, unknown>>;
  models.push(
    { id: 'whisper-1', capabilities: ['transcription'], pricing: { input: '0', output: '0', perAudioMinute: PER_AUDIO_MINUTE }, deployments: [{ id: 'sim-whisper', provider: 'simulated', model: 'whisper-1' }] },
    { id: 'gpt-4o-mini-transcribe', capabilities: ['transcription'], pricing: { input: '1.25', output: '5' }, deployments: [{ id: 'sim-4o-transcribe', provider: 'simulated', model: 'gpt-4o-mini-transcribe' }] },
    { id: 'tts-1', capabilities: ['speech'], pricing: { input: '0', output: '0', perMillionCharacters: PER_MILLION_CHARACTERS }, deployments: [{ id: 'sim-tts', provider: 'simulated', model: 'tts-1' }] },
  );
}

interface AudioRow {
  operation: string;
  served_model: string;
  status: string;
  cost: string;
  prompt_tokens: number;
  completion_tokens: number;
  tokens_estimated: boolean;
  audio_ms: number;
  characters: number;
}

const ROW_COLUMNS = 'operation, served_model, status, toString(cost) AS cost, prompt_tokens, completion_tokens, tokens_estimated, audio_ms, characters';

describe('the Audio API through the gateway', () => {
  let gw: TestGateway;
  const audio = wavClip(SECONDS * 1_000, { toneHz: 440 });
  const upload = () => toFile(audio, 'meeting.wav', { type: 'audio/wav' });

  beforeAll(async () => {
    gw = await startTestGateway({ configure: audioModels });
  });
  afterAll(async () => {
    await gw?.close();
  });
  beforeEach(() => gw.sim.reset());

  const usageRow = (id: string | null) => usageRowOf<AudioRow>(gw, ROW_COLUMNS, id ?? '');

  it("transcribes a WAV with Whisper and bills its minutes exactly: the file's length, at the model's per-minute price", async () => {
    const { data: transcription, response } = await gw.client().audio.transcriptions.create({ file: await upload(), model: 'whisper-1' }).withResponse();
    expect(transcription.text).toBe(`Simulated transcript of meeting.wav (${SECONDS} seconds of WAV audio).`);
    expect(response.headers.get('x-openrouter-model')).toBe('whisper-1');
    expect(response.headers.get('x-openrouter-provider')).toBe('simulated');
    // The provider got the file and the upstream model as a form.
    expect(gw.sim.requests().at(-1)).toMatchObject({ path: '/v1/audio/transcriptions', model: 'whisper-1' });
    const cost = new Decimal(PER_AUDIO_MINUTE).times(SECONDS * 1000).dividedBy(60_000);
    expect(response.headers.get('x-openrouter-cost')).toBe(cost.toFixed());
    // Whisper's own usage, with its cost added as on every JSON answer.
    expect(transcription.usage).toEqual({ type: 'duration', seconds: SECONDS, cost: cost.toNumber() });
    const row = await usageRow(response.headers.get('x-request-id'));
    expect(row).toMatchObject({ operation: 'transcription', served_model: 'whisper-1', status: 'ok', audio_ms: SECONDS * 1000, characters: 0 });
    expect(new Decimal(row.cost).equals(cost)).toBe(true);
  });

  it('bills a token-billed transcription model at the tokens the provider reports', async () => {
    const { data: transcription, response } = await gw.client().audio.transcriptions.create({ file: await upload(), model: 'gpt-4o-mini-transcribe', prompt: 'A meeting about budgets.' }).withResponse();
    const usage = transcription.usage;
    if (usage?.type !== 'tokens') throw new Error(`expected token usage, got ${JSON.stringify(usage)}`);
    expect(usage.input_tokens).toBeGreaterThan(0);
    expect(usage.output_tokens).toBeGreaterThan(0);
    const row = await usageRow(response.headers.get('x-request-id'));
    expect(row).toMatchObject({ operation: 'transcription', served_model: 'gpt-4o-mini-transcribe', prompt_tokens: usage.input_tokens, completion_tokens: usage.output_tokens, tokens_estimated: false, audio_ms: SECONDS * 1000 });
    const cost = new Decimal(usage.input_tokens).times('1.25').plus(new Decimal(usage.output_tokens).times(5)).dividedBy(1_000_000);
    expect(new Decimal(row.cost).equals(cost)).toBe(true);
    expect(response.headers.get('x-openrouter-cost')).toBe(cost.toFixed());
  });

  it('answers every response format the SDK reads: text, SubRip, WebVTT and verbose JSON', async () => {
    const client = gw.client();
    const text = await client.audio.transcriptions.create({ file: await upload(), model: 'whisper-1', response_format: 'text' });
    expect(typeof text).toBe('string');
    expect(text.trim()).toBe(`Simulated transcript of meeting.wav (${SECONDS} seconds of WAV audio).`);
    const srt = await client.audio.transcriptions.create({ file: await upload(), model: 'whisper-1', response_format: 'srt' });
    expect(srt).toMatch(/^1\n00:00:00,000 --> 00:00:03,000\nSimulated transcript/);
    const vtt = await client.audio.transcriptions.create({ file: await upload(), model: 'whisper-1', response_format: 'vtt' });
    expect(vtt).toMatch(/^WEBVTT\n\n00:00:00\.000 --> 00:00:03\.000\n/);
    const { data: verbose, response } = await client.audio.transcriptions
      .create({ file: await upload(), model: 'whisper-1', response_format: 'verbose_json', timestamp_granularities: ['word', 'segment'], language: 'en' })
      .withResponse();
    expect(verbose).toMatchObject({ task: 'transcribe', language: 'english', duration: SECONDS, text: expect.stringContaining('Simulated transcript') });
    expect(verbose.segments?.[0]).toMatchObject({ id: 0, start: 0, end: SECONDS });
    expect(verbose.words?.length).toBeGreaterThan(0);
    // The repeated form field reached the provider, each value.
    expect(JSON.stringify(gw.sim.requests().at(-1)?.body)).toContain('word');
    expect(await usageRow(response.headers.get('x-request-id'))).toMatchObject({ operation: 'transcription', audio_ms: SECONDS * 1000 });
  });

  it('translates speech into English, recorded as a translation', async () => {
    const { data: translation, response } = await gw.client().audio.translations.create({ file: await upload(), model: 'whisper-1' }).withResponse();
    expect(translation.text).toBe(`Simulated translation of meeting.wav (${SECONDS} seconds of WAV audio).`);
    expect(gw.sim.requests().at(-1)?.path).toBe('/v1/audio/translations');
    const row = await usageRow(response.headers.get('x-request-id'));
    expect(row).toMatchObject({ operation: 'translation', served_model: 'whisper-1', status: 'ok', audio_ms: SECONDS * 1000 });
    expect(new Decimal(row.cost).equals(new Decimal(PER_AUDIO_MINUTE).times(SECONDS).dividedBy(60))).toBe(true);
  });

  it('speaks text as a WAV the client can decode, billed per character', async () => {
    const input = 'The quarterly numbers are in. ✓';
    const response = await gw.client().audio.speech.create({ model: 'tts-1', voice: 'alloy', input, response_format: 'wav' });
    expect(response.headers.get('content-type')).toBe('audio/wav');
    const bytes = Buffer.from(await response.arrayBuffer());
    expect(bytes.subarray(0, 4).toString('latin1')).toBe('RIFF');
    expect(bytes.subarray(8, 12).toString('latin1')).toBe('WAVE');
    // The RIFF size covers the whole file but its first 8 bytes: nothing was cut or added on the way.
    expect(bytes.readUInt32LE(4) + 8).toBe(bytes.length);
    expect(gw.sim.requests().at(-1)).toMatchObject({ path: '/v1/audio/speech', body: { model: 'tts-1', voice: 'alloy', input, response_format: 'wav' } });
    const characters = [...input].length;
    const row = await usageRow(response.headers.get('x-request-id'));
    expect(row).toMatchObject({ operation: 'speech', served_model: 'tts-1', status: 'ok', characters, audio_ms: 0 });
    const cost = new Decimal(PER_MILLION_CHARACTERS).times(characters).dividedBy(1_000_000);
    expect(new Decimal(row.cost).equals(cost)).toBe(true);
    // Streamed: the cost is known only once the audio has been sent, so it is in the record, not a header.
    expect(response.headers.get('x-openrouter-cost')).toBeNull();
  });

  it('answers speech as MP3 by default, with its media type', async () => {
    const response = await gw.client().audio.speech.create({ model: 'tts-1', voice: { id: 'voice_custom_1' }, input: 'Hello.' } as never);
    expect(response.headers.get('content-type')).toBe('audio/mpeg');
    const bytes = Buffer.from(await response.arrayBuffer());
    // Frame headers every 417 bytes, as the simulator makes them: whole, in order.
    expect(bytes.length).toBeGreaterThan(417);
    expect(bytes.readUInt16BE(0)).toBe(0xfffb);
    expect(bytes.readUInt16BE(417)).toBe(0xfffb);
    expect(gw.sim.requests().at(-1)?.body).toMatchObject({ voice: { id: 'voice_custom_1' } });
  });

  it('streams speech: the client reads the start of the audio while the provider is still sending the rest', async () => {
    // 8 KiB pieces, two a second: the 24 kHz WAV of 12 characters (0.72 s, 35 KB) takes five pieces.
    gw.sim.configure({ tokensPerSecond: 2 });
    const input = 'Stream this.';
    const response = await gw.client().audio.speech.create({ model: 'tts-1', voice: 'alloy', input, response_format: 'wav' });
    expect(response.headers.get('content-type')).toBe('audio/wav');
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const first = await reader.read();
    const start = Buffer.from(first.value ?? []);
    expect(start.subarray(0, 4).toString('latin1')).toBe('RIFF');
    // The provider has not finished sending: the gateway passed on what came, without waiting for the rest.
    expect(gw.sim.requests().at(-1)).toMatchObject({ path: '/v1/audio/speech', outcome: 'pending' });
    const total = start.readUInt32LE(4) + 8;
    expect(start.length).toBeLessThan(total);
    const pieces = [start];
    for (let next = await reader.read(); !next.done; next = await reader.read()) pieces.push(Buffer.from(next.value));
    expect(Buffer.concat(pieces).length).toBe(total);
    const row = await usageRow(response.headers.get('x-request-id'));
    expect(row).toMatchObject({ operation: 'speech', status: 'ok', characters: [...input].length });
  });

  it("fails the client's download when the provider's audio is cut after it began, and records the error", async () => {
    gw.sim.configure({ tokensPerSecond: 2, faults: [{ kind: 'drop_mid_stream', path: 'audio', afterTokens: 1, remaining: 1 }] });
    const input = 'This audio will not arrive whole.';
    const response = await gw.client().audio.speech.create({ model: 'tts-1', voice: 'alloy', input, response_format: 'wav' });
    expect(response.status).toBe(200);
    // Never a shorter file that reads as complete.
    await expect(response.arrayBuffer()).rejects.toThrow();
    const row = await usageRow(response.headers.get('x-request-id'));
    expect(row).toMatchObject({ operation: 'speech', status: 'error', characters: [...input].length });
  });

  it('cancels the provider call when the client leaves mid-stream, and records it cancelled with the characters', async () => {
    gw.sim.configure({ tokensPerSecond: 2 });
    const input = 'Leave before the end of this.';
    const client = new AbortController();
    const response = await gw.client().audio.speech.create({ model: 'tts-1', voice: 'alloy', input, response_format: 'wav' }, { signal: client.signal });
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    expect((await reader.read()).done).toBe(false);
    client.abort();
    // The gateway's call to the provider is cut, not left to run on.
    expect(await gw.sim.waitForRequest((r) => r.path === '/v1/audio/speech' && r.outcome === 'aborted')).toBeDefined();
    const characters = [...input].length;
    const row = await usageRow(response.headers.get('x-request-id'));
    expect(row).toMatchObject({ operation: 'speech', served_model: 'tts-1', status: 'cancelled', characters });
    expect(new Decimal(row.cost).greaterThanOrEqualTo(new Decimal(PER_MILLION_CHARACTERS).times(characters).dividedBy(1_000_000))).toBe(true);
  });

  it('refuses bad requests with a 400 naming the field, before any provider call', async () => {
    const client = gw.client();
    expect(await apiError(async () => client.audio.transcriptions.create({ file: await upload() } as never))).toMatchObject({ status: 400, param: 'model' });
    expect(await apiError(async () => client.audio.transcriptions.create({ file: await upload(), model: 'gpt-4o-mini-transcribe', stream: true }))).toMatchObject({
      status: 400,
      param: 'stream',
      code: 'unsupported_parameter',
    });
    expect(await apiError(async () => client.audio.transcriptions.create({ file: await toFile(Buffer.alloc(0), 'empty.wav'), model: 'whisper-1' }))).toMatchObject({ status: 400, param: 'file' });
    expect(await apiError(() => client.audio.speech.create({ model: 'tts-1', voice: 'alloy', input: '' }))).toMatchObject({ status: 400, param: 'input' });
    expect(await apiError(() => client.audio.speech.create({ model: 'tts-1', voice: 'alloy', input: 'a'.repeat(4097) }))).toMatchObject({ status: 400, param: 'input' });
    expect(await apiError(() => client.audio.speech.create({ model: 'tts-1', voice: 'alloy', input: 'x', stream_format: 'sse' }))).toMatchObject({
      status: 400,
      param: 'stream_format',
      code: 'unsupported_parameter',
    });
    expect(await apiError(() => client.post('/audio/transcriptions', { body: { model: 'whisper-1', file: 'aGVsbG8=' } }))).toMatchObject({ status: 400, param: 'file' });
    expect(gw.sim.requests()).toHaveLength(0);
  });

  it('refuses a model that does not do the task, or does not exist', async () => {
    const client = gw.client();
    expect(await apiError(async () => client.audio.transcriptions.create({ file: await upload(), model: 'gpt-4o-mini' }))).toMatchObject({ status: 400, code: 'model_not_supported', param: 'model' });
    expect(await apiError(() => client.audio.speech.create({ model: 'whisper-1', voice: 'alloy', input: 'x' }))).toMatchObject({ status: 400, code: 'model_not_supported', param: 'model' });
    expect(await apiError(async () => client.audio.translations.create({ file: await upload(), model: 'no-such-model' }))).toMatchObject({ status: 404, code: 'model_not_found' });
    expect(gw.sim.requests()).toHaveLength(0);
  });

  it("maps the provider's failures as for every call, and records them at no cost", async () => {
    const client = gw.client();
    gw.sim.configure({ faults: [{ kind: 'http_error', status: 500, path: 'audio', remaining: 1 }] });
    const failed = await apiError(async () => client.audio.transcriptions.create({ file: await upload(), model: 'whisper-1' }));
    expect(failed.status).toBe(502);
    expect(await usageRow(failed.headers?.get('x-request-id') ?? '')).toMatchObject({ operation: 'transcription', status: 'error', cost: '0', audio_ms: 0 });
    gw.sim.configure({ faults: [{ kind: 'http_error', status: 503, path: 'audio', remaining: 1 }] });
    const unavailable = await apiError(() => client.audio.speech.create({ model: 'tts-1', voice: 'alloy', input: 'x' }));
    expect(unavailable.status).toBe(503);
    expect(await usageRow(unavailable.headers?.get('x-request-id') ?? '')).toMatchObject({ operation: 'speech', status: 'error', cost: '0' });
  });
});

describe('audio uploads over ingress.limits.audioBytes', () => {
  let gw: TestGateway;
  const LIMIT = 64 * 1024;

  beforeAll(async () => {
    gw = await startTestGateway({
      configure: (doc) => {
        audioModels(doc);
        doc['ingress'] = { ...(doc['ingress'] as Record<string, unknown>), limits: { audioBytes: LIMIT } };
      },
    });
  });
  afterAll(async () => {
    await gw?.close();
  });

  it('refuses an upload over the limit with a 413 before any provider call, and serves one within it', async () => {
    const client = gw.client();
    // 3 s of 16 kHz 16-bit audio: 96 KB.
    const tooLarge = await apiError(async () => client.audio.transcriptions.create({ file: await toFile(wavClip(3_000, { toneHz: 440 }), 'long.wav'), model: 'whisper-1' }));
    expect(tooLarge).toMatchObject({ status: 413, code: 'request_too_large' });
    expect(gw.sim.requests()).toHaveLength(0);
    const served = await client.audio.transcriptions.create({ file: await toFile(wavClip(1_000, { toneHz: 440 }), 'short.wav'), model: 'whisper-1' });
    expect(served.text).toContain('short.wav');
  });
});
