import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseConfig, providerSchema, type GatewayConfig, type ProviderConfigOf } from '@openrouter/config';
import { adapterv1, type chatv1 } from '@openrouter/contracts';
import { callUnary, readStream } from '@openrouter/grpc';
import { createLogger, createMetricsRegistry, UpstreamInstrumentation } from '@openrouter/observability';
import { GatewayError } from '@openrouter/errors';
import { toOpenAIError, wavDurationMs } from '@openrouter/openai-wire';
import { type ObservedRequest, type RunningSimulator, SecretVolume, startSimulator, wavClip } from '@openrouter/provider-simulator';
import { credentials, Metadata } from '@grpc/grpc-js';
import { AdapterService } from '../../adapter.service';
import { startAdapter } from '../../index';
import { MAX_AUDIO_ANSWER_BYTES } from '../audio-response';
import { createAzureAdapter } from '../azure/azure.adapter';
import { failure } from '../gateway-failure.testing';
import { ImageSource } from '../image-source';
import type { ProviderAdapter } from '../provider-adapter';
import { PROVIDER_REGISTRY } from '../provider.registry';
import { countTextTokens } from '../text-tokens';
import { createOpenAIAdapter } from './openai.adapter';

const KEY = 'sk-audio-key';


/** A transcription request as ingress makes it from a client's form: a WAV's length read, any other file's left 0. */
function transcription(fields: Partial<chatv1.AudioTranscriptionRequest> = {}): chatv1.AudioTranscriptionRequest {
  const file = fields.file ?? wavClip(2_500);
  return {
    model: 'public-whisper',
    file,
    filename: 'voice.wav',
    contentType: 'audio/wav',
    translate: false,
    extraFields: [],
    durationMs: wavDurationMs(file) ?? 0,
    ...fields,
  };
}

function speech(fields: Partial<chatv1.SpeechRequest> = {}): chatv1.SpeechRequest {
  return { model: 'public-tts', input: 'Hello from the gateway.', voice: 'alloy', extraJson: '', ...fields };
}

const call = <T>(upstreamModel: string, request: T, timeoutMs = 5_000, signal: AbortSignal = new AbortController().signal) => ({ requestId: 'req-audio-1', upstreamModel, request, timeoutMs, signal });

/** What an estimate of a transcript's usage is: the prompt's tokens in, the text's out. */
const estimated = (prompt: string, text: string): chatv1.Usage => {
  const promptTokens = countTextTokens(prompt);
  const completionTokens = countTextTokens(text);
  return { promptTokens, completionTokens, totalTokens: promptTokens + completionTokens, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, estimated: true };
};

function transcribeWith(adapter: ProviderAdapter, upstreamModel: string, request: chatv1.AudioTranscriptionRequest, timeoutMs?: number, signal?: AbortSignal): Promise<chatv1.AudioTranscriptionResponse> {
  if (!adapter.transcribe) throw new Error('the adapter offers no transcription');
  return adapter.transcribe(call(upstreamModel, request, timeoutMs, signal));
}

function speechOf(adapter: ProviderAdapter, upstreamModel: string, request: chatv1.SpeechRequest, timeoutMs?: number, signal?: AbortSignal): AsyncGenerator<chatv1.SpeechResponse> {
  if (!adapter.speak) throw new Error('the adapter offers no speech');
  return adapter.speak(call(upstreamModel, request, timeoutMs, signal));
}

/** A speech answer put together from its pieces: the audio concatenated, the first piece's type, the last's usage and characters. */
interface Spoken {
  audio: Buffer;
  contentType: string;
  usage: chatv1.Usage | undefined;
  characters: number;
  pieces: chatv1.SpeechResponse[];
}

function joined(pieces: chatv1.SpeechResponse[]): Spoken {
  const last = pieces.at(-1);
  return { audio: Buffer.concat(pieces.map((p) => p.audio)), contentType: pieces[0]?.contentType ?? '', usage: last?.usage, characters: last?.characters ?? 0, pieces };
}

async function collectSpeech(pieces: AsyncIterable<chatv1.SpeechResponse>): Promise<Spoken> {
  const all: chatv1.SpeechResponse[] = [];
  for await (const piece of pieces) all.push(piece);
  return joined(all);
}

/** The pieces a speech answer gave before it failed, and its failure (undefined: it ended well). */
async function piecesUntilFailure(pieces: AsyncIterable<chatv1.SpeechResponse>): Promise<{ pieces: chatv1.SpeechResponse[]; error: unknown }> {
  const all: chatv1.SpeechResponse[] = [];
  try {
    for await (const piece of pieces) all.push(piece);
    return { pieces: all, error: undefined };
  } catch (error) {
    return { pieces: all, error };
  }
}

/** The speech pieces of a Speak call's messages. */
async function* messagesOf(stream: AsyncIterable<adapterv1.SpeakResponse>): AsyncGenerator<chatv1.SpeechResponse> {
  for await (const message of stream) if (message.response) yield message.response;
}

function speakWith(adapter: ProviderAdapter, upstreamModel: string, request: chatv1.SpeechRequest, timeoutMs?: number, signal?: AbortSignal): Promise<Spoken> {
  return collectSpeech(speechOf(adapter, upstreamModel, request, timeoutMs, signal));
}

/** The OpenAI family's and Azure OpenAI's Audio API against the simulated provider: real HTTP and multipart, real auth, real faults. */
describe('the Audio API against the simulated provider', () => {
  let sim: RunningSimulator;
  const open: ProviderAdapter[] = [];
  const images = new ImageSource();

  const adapterFor = (fields: Record<string, unknown> = {}): ProviderAdapter => {
    const config = providerSchema.parse({ type: 'openai', baseUrl: `${sim.url}/v1`, apiKey: KEY, timeoutMs: 5_000, ...fields }) as ProviderConfigOf<'openai'>;
    const adapter = createOpenAIAdapter('sim-openai', config);
    open.push(adapter);
    return adapter;
  };
  const azureFor = (fields: Record<string, unknown> = {}): ProviderAdapter => {
    const config = providerSchema.parse({ type: 'azure', baseUrl: sim.url, apiKey: KEY, timeoutMs: 5_000, ...fields }) as ProviderConfigOf<'azure'>;
    const adapter = createAzureAdapter('sim-azure', config, { images });
    open.push(adapter);
    return adapter;
  };
  const audioCalls = (): ObservedRequest[] => sim.requests().filter((r) => r.path.includes('/audio/'));
  const lastForm = (): Record<string, unknown> => (audioCalls().at(-1)?.body ?? {}) as Record<string, unknown>;

  beforeAll(async () => {
    sim = await startSimulator({ apiKey: KEY });
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((a) => a.close()));
    sim.reset();
  });
  afterAll(async () => {
    await images.close();
    await sim.close();
  });

  describe('transcriptions on the OpenAI family', () => {
    it("sends a multipart form (the upstream model, the file as the client named and typed it, the read parameters) and passes whisper-1's json on with its duration billed", async () => {
      const request = transcription({ language: 'en', prompt: 'Names: Ada, Grace.', temperature: 0.2, responseFormat: 'json' });
      const answer = await transcribeWith(adapterFor(), 'whisper-1', request);
      expect(answer.contentType).toBe('application/json');
      const body = JSON.parse(answer.body) as { text: string; usage: unknown };
      expect(body).toEqual({ text: 'Simulated transcript of voice.wav (2.5 seconds of WAV audio).', usage: { type: 'duration', seconds: 3 } });
      // Billed by the provider's seconds (rounded up to whole ones), not the file's 2.5 s.
      expect(answer.audioMs).toBe(3_000);
      expect(answer.usage).toEqual(estimated('Names: Ada, Grace.', body.text));

      expect(audioCalls()).toHaveLength(1);
      const sent = audioCalls()[0];
      expect(sent).toMatchObject({ path: '/v1/audio/transcriptions', outcome: 'completed', model: 'whisper-1', headers: expect.objectContaining({ authorization: 'present', 'content-type': expect.stringMatching(/^multipart\/form-data; boundary=/) }) });
      expect(sent?.body).toEqual({
        model: 'whisper-1',
        file: { name: 'voice.wav', type: 'audio/wav', size: request.file.length },
        language: 'en',
        prompt: 'Names: Ada, Grace.',
        response_format: 'json',
        temperature: '0.2',
      });
    });

    it("reports a token-billed model's tokens as they came (not estimated), and the file's length as its audio", async () => {
      const answer = await transcribeWith(adapterFor(), 'gpt-4o-transcribe', transcription({ prompt: 'A short memo.' }));
      const body = JSON.parse(answer.body) as { text: string; usage: { input_tokens: number; output_tokens: number; total_tokens: number } };
      expect(body.usage).toMatchObject({ type: 'tokens', input_token_details: { text_tokens: expect.any(Number), audio_tokens: 25 } });
      expect(answer.usage).toEqual({
        promptTokens: body.usage.input_tokens,
        completionTokens: body.usage.output_tokens,
        totalTokens: body.usage.total_tokens,
        cachedReadTokens: 0,
        cacheWriteTokens: 0,
        reasoningTokens: 0,
        estimated: false,
      });
      // No seconds from the provider: the length ingress read from the WAV.
      expect(answer.audioMs).toBe(2_500);
      // Unset response_format: not sent (the provider's default, json).
      expect(lastForm()).not.toHaveProperty('response_format');
    });

    it("serves `text` by asking the provider for json: the text alone as text/plain, with the provider's usage kept", async () => {
      const answer = await transcribeWith(adapterFor(), 'gpt-4o-mini-transcribe', transcription({ responseFormat: 'text' }));
      expect(answer).toMatchObject({ body: 'Simulated transcript of voice.wav (2.5 seconds of WAV audio).', contentType: 'text/plain; charset=utf-8', audioMs: 2_500 });
      expect(answer.usage).toMatchObject({ estimated: false, completionTokens: countTextTokens(answer.body) });
      expect(lastForm()['response_format']).toBe('json');

      const whisper = await transcribeWith(adapterFor(), 'whisper-1', transcription({ responseFormat: 'text' }));
      expect(whisper).toMatchObject({ body: 'Simulated transcript of voice.wav (2.5 seconds of WAV audio).', contentType: 'text/plain; charset=utf-8', audioMs: 3_000 });
      expect(whisper.usage).toEqual(estimated('', whisper.body));
    });

    it("passes verbose_json on as the provider's JSON, with the client's extra fields sent in order; its duration bills when no seconds are reported", async () => {
      const request = transcription({
        file: wavClip(7_250),
        responseFormat: 'verbose_json',
        extraFields: [
          { name: 'timestamp_granularities[]', value: 'word' },
          { name: 'timestamp_granularities[]', value: 'segment' },
          { name: 'chunking_strategy', value: 'auto' },
        ],
      });
      const answer = await transcribeWith(adapterFor(), 'whisper-1', request);
      expect(answer.contentType).toBe('application/json');
      const body = JSON.parse(answer.body) as { task: string; duration: number; segments: unknown[]; words: unknown[]; usage: unknown };
      expect(body).toMatchObject({ task: 'transcribe', language: 'english', duration: 7.25, usage: { type: 'duration', seconds: 8 } });
      expect(body.segments).toHaveLength(2);
      expect(body.words.length).toBeGreaterThan(3);
      expect(answer.audioMs).toBe(8_000);
      expect(Object.keys(lastForm())).toEqual(['model', 'file', 'response_format', 'timestamp_granularities[]', 'chunking_strategy']);
      expect(lastForm()['timestamp_granularities[]']).toEqual(['word', 'segment']);

      sim.configure({ omitUsage: true });
      const unbilled = await transcribeWith(adapterFor(), 'whisper-1', request);
      expect(JSON.parse(unbilled.body)).not.toHaveProperty('usage');
      // verbose_json's own duration, exact, before the length ingress read.
      expect(unbilled.audioMs).toBe(7_250);
      expect(unbilled.usage).toEqual(estimated('', 'Simulated transcript of voice.wav (7.25 seconds of WAV audio). Part 2 of 2.'));
    });

    it('passes srt and vtt through as text/plain, billed on the file when its length is known, else on the last cue', async () => {
      const file = wavClip(7_500);
      for (const format of ['srt', 'vtt']) {
        const known = await transcribeWith(adapterFor(), 'whisper-1', transcription({ file, responseFormat: format }));
        expect(known.contentType).toBe('text/plain; charset=utf-8');
        expect(known.audioMs).toBe(7_500);
        const separator = format === 'srt' ? ',' : '.';
        expect(known.body).toContain(`00:00:05${separator}000 --> 00:00:07${separator}500`);
        expect(known.body.startsWith(format === 'vtt' ? 'WEBVTT' : '1\n')).toBe(true);
        // The estimate counts the spoken text, not the numbering and timings.
        expect(known.usage).toEqual(estimated('', 'Simulated transcript of voice.wav (7.5 seconds of WAV audio).\nPart 2 of 2.'));
      }
      // An MP3 ingress cannot measure: the simulator takes 40000 bytes as 2.5 s, and its last cue ends there.
      const mp3 = transcription({ file: Buffer.alloc(40_000, 0xff), filename: 'memo.mp3', contentType: 'audio/mpeg', durationMs: 0 });
      await expect(transcribeWith(adapterFor(), 'whisper-1', { ...mp3, responseFormat: 'srt' })).resolves.toMatchObject({ audioMs: 2_500 });
      await expect(transcribeWith(adapterFor(), 'whisper-1', { ...mp3, responseFormat: 'vtt' })).resolves.toMatchObject({ audioMs: 2_500 });
      // json without seconds and nothing measured: nothing to bill by length.
      sim.configure({ omitUsage: true });
      await expect(transcribeWith(adapterFor(), 'whisper-1', mp3)).resolves.toMatchObject({ audioMs: 0 });
    });

    it('translates through /audio/translations; with no seconds in the answer the file it was given bills', async () => {
      const answer = await transcribeWith(adapterFor(), 'whisper-1', transcription({ translate: true, prompt: 'Bonjour', temperature: 0 }));
      expect(JSON.parse(answer.body)).toEqual({ text: 'Simulated translation of voice.wav (2.5 seconds of WAV audio).' });
      expect(answer.audioMs).toBe(2_500);
      expect(answer.usage).toEqual(estimated('Bonjour', 'Simulated translation of voice.wav (2.5 seconds of WAV audio).'));
      expect(audioCalls()[0]).toMatchObject({ path: '/v1/audio/translations', outcome: 'completed' });
      expect(lastForm()).toMatchObject({ model: 'whisper-1', prompt: 'Bonjour', temperature: '0', response_format: 'verbose_json' });
    });

    it('asks a translation in json or text as verbose_json, so a file ingress cannot measure is billed by the length the provider read', async () => {
      // An MP3: the simulator takes 40000 bytes as 2.5 s; its json translation would report no usage.
      const mp3 = transcription({ file: Buffer.alloc(40_000, 0xff), filename: 'memo.mp3', contentType: 'audio/mpeg', durationMs: 0, translate: true });
      const asJson = await transcribeWith(adapterFor(), 'whisper-1', mp3);
      expect(JSON.parse(asJson.body)).toEqual({ text: 'Simulated translation of memo.mp3.' });
      expect(asJson).toMatchObject({ contentType: 'application/json', audioMs: 2_500 });
      expect(lastForm()).toMatchObject({ response_format: 'verbose_json' });
      const asText = await transcribeWith(adapterFor(), 'whisper-1', { ...mp3, responseFormat: 'text' });
      expect(asText).toMatchObject({ body: 'Simulated translation of memo.mp3.', contentType: 'text/plain; charset=utf-8', audioMs: 2_500 });
      // verbose_json asked by the client is its own answer, passed on whole.
      const verbose = await transcribeWith(adapterFor(), 'whisper-1', { ...mp3, responseFormat: 'verbose_json' });
      expect(JSON.parse(verbose.body)).toMatchObject({ task: 'translate', duration: 2.5, text: 'Simulated translation of memo.mp3.' });
    });

    it("leaves out the provider's dropParams (a repeated field by its bare name) and never sends a field the adapter sets twice", async () => {
      const request = transcription({
        language: 'en',
        extraFields: [
          { name: 'timestamp_granularities[]', value: 'word' },
          { name: 'model', value: 'smuggled' },
          { name: 'response_format', value: 'srt' },
          { name: 'include[]', value: 'logprobs' },
        ],
      });
      await transcribeWith(adapterFor({ dropParams: ['timestamp_granularities', 'language'] }), 'whisper-1', request);
      expect(lastForm()).toEqual({ model: 'whisper-1', file: expect.objectContaining({ name: 'voice.wav' }), 'include[]': ['logprobs'] });
    });

    it("passes the provider's refusal of a request on as a 400 naming its param", async () => {
      const format = await failure(transcribeWith(adapterFor(), 'gpt-4o-transcribe', transcription({ responseFormat: 'srt' })));
      expect(format).toMatchObject({ kind: 'bad_request', param: 'response_format', upstreamStatus: 400, retryable: false });
      expect(toOpenAIError(format).status).toBe(400);
      const language = await failure(transcribeWith(adapterFor(), 'whisper-1', transcription({ language: 'english' })));
      expect(language).toMatchObject({ kind: 'bad_request', param: 'language', code: 'invalid_language_format' });
      const file = await failure(transcribeWith(adapterFor(), 'whisper-1', transcription({ filename: 'notes.txt' })));
      expect(file).toMatchObject({ kind: 'bad_request', param: 'file' });
    });

    it("maps a refused key to a failed authentication (502 to the client, the key never quoted), a 429, a 500 and a 503 as on chat", async () => {
      const refused = await failure(transcribeWith(adapterFor({ apiKey: 'sk-wrong' }), 'whisper-1', transcription()));
      expect(refused).toMatchObject({ kind: 'auth_failed', upstreamStatus: 401 });
      expect(toOpenAIError(refused).status).toBe(502);
      expect(refused.message).not.toContain('sk-wrong');

      sim.configure({
        faults: [
          { kind: 'http_error', status: 429, retryAfterSeconds: 7, path: 'audio', remaining: 1 },
          { kind: 'http_error', status: 500, path: 'audio', remaining: 1 },
          { kind: 'http_error', status: 503, path: 'audio', remaining: 1 },
        ],
      });
      const adapter = adapterFor();
      await expect(failure(transcribeWith(adapter, 'whisper-1', transcription()))).resolves.toMatchObject({ kind: 'rate_limited', retryable: true, retryAfterMs: 7_000, upstreamStatus: 429 });
      await expect(failure(transcribeWith(adapter, 'whisper-1', transcription()))).resolves.toMatchObject({ kind: 'upstream_error', retryable: true, upstreamStatus: 500 });
      await expect(failure(speakWith(adapter, 'tts-1', speech()))).resolves.toMatchObject({ kind: 'overloaded', retryable: true, upstreamStatus: 503 });
      await expect(transcribeWith(adapter, 'whisper-1', transcription())).resolves.toMatchObject({ audioMs: 3_000 });
    });

    it("gives up after the call's timeout (else the provider's), and an answer cut midway is the provider's failure", async () => {
      sim.configure({ faults: [{ kind: 'timeout', path: 'audio', remaining: 2 }] });
      await expect(failure(transcribeWith(adapterFor({ timeoutMs: 10_000 }), 'whisper-1', transcription(), 200))).resolves.toMatchObject({ kind: 'timeout', retryable: true });
      await expect(failure(speakWith(adapterFor({ timeoutMs: 200 }), 'tts-1', speech(), 0))).resolves.toMatchObject({ kind: 'timeout', retryable: true });

      sim.configure({ faults: [{ kind: 'drop_mid_stream', path: 'audio', remaining: 2 }] });
      const cut = await failure(transcribeWith(adapterFor(), 'whisper-1', transcription({ responseFormat: 'verbose_json' })));
      expect(cut).toMatchObject({ kind: 'upstream_error', retryable: true, provider: 'sim-openai' });
      const cutAudio = await failure(speakWith(adapterFor(), 'tts-1', speech({ responseFormat: 'wav' })));
      expect(cutAudio).toMatchObject({ kind: 'upstream_error', retryable: true, provider: 'sim-openai' });
      expect(cutAudio.message).toMatch(/before the answer was complete/);
    });

    it('stops the provider call when the caller cancels', async () => {
      sim.configure({ latencyMs: 10_000 });
      const adapter = adapterFor();
      for (const [path, start] of [
        ['/v1/audio/transcriptions', (signal: AbortSignal) => transcribeWith(adapter, 'whisper-1', transcription(), 20_000, signal)],
        ['/v1/audio/speech', (signal: AbortSignal) => speakWith(adapter, 'tts-1', speech(), 20_000, signal)],
      ] as const) {
        const controller = new AbortController();
        const pending = failure(start(controller.signal));
        await sim.waitForRequest((r) => r.path === path);
        controller.abort();
        await expect(pending).resolves.toMatchObject({ kind: 'cancelled' });
        // The provider saw the connection go.
        await sim.waitForRequest((r) => r.path === path && r.outcome === 'aborted');
      }
    });

    it('reads a key file again after the provider refused the old key, and sends the whole form again', async () => {
      const volume = new SecretVolume({ secret: KEY });
      try {
        const adapter = adapterFor({ apiKey: undefined, apiKeyFile: volume.path('secret'), credentialFileCheckIntervalMs: 3_600_000 });
        const request = transcription({ prompt: 'again' });
        await transcribeWith(adapter, 'whisper-1', request);
        sim.setApiKey('sk-audio-rotated');
        volume.write({ secret: 'sk-audio-rotated' });
        await expect(transcribeWith(adapter, 'whisper-1', request)).resolves.toMatchObject({ audioMs: 3_000 });
        await expect(speakWith(adapter, 'tts-1', speech())).resolves.toMatchObject({ contentType: 'audio/mpeg' });
        expect(audioCalls().map((r) => r.outcome)).toEqual(['completed', 'error', 'completed', 'completed']);
        expect(audioCalls()[2]?.body).toMatchObject({ prompt: 'again', file: { size: request.file.length } });
      } finally {
        volume.remove();
      }
    });
  });

  describe('speech on the OpenAI family', () => {
    it.each([
      ['mp3', 'audio/mpeg'],
      ['opus', 'audio/opus'],
      ['aac', 'audio/aac'],
      ['flac', 'audio/flac'],
      ['wav', 'audio/wav'],
      ['pcm', 'audio/pcm'],
    ])('answers %s as the provider made it, typed %s', async (format, contentType) => {
      const answer = await speakWith(adapterFor(), 'tts-1', speech({ responseFormat: format }));
      expect(answer.contentType).toBe(contentType);
      expect(answer.audio.length).toBeGreaterThan(1_000);
      if (format === 'wav') expect(answer.audio.subarray(0, 4).toString('ascii')).toBe('RIFF');
      if (format === 'flac') expect(answer.audio.subarray(0, 4).toString('ascii')).toBe('fLaC');
      expect(audioCalls()[0]?.body).toEqual({ model: 'tts-1', input: 'Hello from the gateway.', voice: 'alloy', response_format: format });
    });

    it("sends the upstream model, the input, the voice and the client's other parameters; counts characters in code points and estimates the input's tokens", async () => {
      const input = 'Wave 👋 to the café';
      const answer = await speakWith(adapterFor(), 'gpt-4o-mini-tts', speech({ input, voice: 'coral', user: 'u-9', extraJson: JSON.stringify({ speed: 1.25, instructions: 'Speak warmly.', model: 'smuggled' }) }));
      expect(answer.contentType).toBe('audio/mpeg');
      expect(answer.audio.subarray(0, 2)).toEqual(Buffer.from([0xff, 0xfb]));
      // 18 code points (the emoji is one), though 19 UTF-16 units.
      expect(input.length).toBe(19);
      expect(answer.characters).toBe(18);
      const tokens = countTextTokens(input);
      expect(answer.usage).toEqual({ promptTokens: tokens, completionTokens: 0, totalTokens: tokens, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, estimated: true });
      expect(audioCalls()[0]).toMatchObject({ path: '/v1/audio/speech', outcome: 'completed', model: 'gpt-4o-mini-tts' });
      expect(audioCalls()[0]?.body).toEqual({ model: 'gpt-4o-mini-tts', input, voice: 'coral', user: 'u-9', speed: 1.25, instructions: 'Speak warmly.' });
    });

    it("sends a custom voice as the object it is, and leaves out the provider's dropParams", async () => {
      await speakWith(adapterFor({ dropParams: ['instructions', 'voice'] }), 'gpt-4o-mini-tts', speech({ voice: '{"id":"voice_123"}', extraJson: JSON.stringify({ instructions: 'x', speed: 2 }) }));
      expect(audioCalls()[0]?.body).toEqual({ model: 'gpt-4o-mini-tts', input: 'Hello from the gateway.', voice: { id: 'voice_123' }, speed: 2 });
    });

    it("passes the provider's refusal on as a 400 naming its param", async () => {
      await expect(failure(speakWith(adapterFor(), 'tts-1', speech({ voice: 'nobody' })))).resolves.toMatchObject({ kind: 'bad_request', param: 'voice', upstreamStatus: 400 });
      await expect(failure(speakWith(adapterFor(), 'tts-1', speech({ extraJson: '{"speed":9}' })))).resolves.toMatchObject({ kind: 'bad_request', param: 'speed', upstreamStatus: 400 });
    });
  });

  describe('speech streamed as the provider sends it', () => {
    const speechCall = (): ObservedRequest | undefined => audioCalls().find((r) => r.path.endsWith('/audio/speech'));

    it.each([
      ['the OpenAI family', () => adapterFor(), 'tts-1'],
      ['Azure OpenAI', () => azureFor(), 'tts-hd'],
    ] as const)('on %s, passes the first piece on while the provider is still sending the rest, the whole audio as it made it', async (_family, adapterOf, model) => {
      const whole = await speakWith(adapterOf(), model, speech({ responseFormat: 'wav' }));
      sim.reset();
      // The simulator sends the audio in 8 KiB pieces, 20 a second.
      sim.configure({ tokensPerSecond: 20 });
      const pieces = speechOf(adapterOf(), model, speech({ responseFormat: 'wav' }));
      const first = await pieces.next();
      expect(first.done).toBe(false);
      const piece = first.value as chatv1.SpeechResponse;
      expect(piece).toMatchObject({ contentType: 'audio/wav', characters: 0 });
      expect(piece.usage).toBeUndefined();
      expect(piece.audio.subarray(0, 4).toString('ascii')).toBe('RIFF');
      expect(piece.audio.length).toBeLessThan(whole.audio.length);
      // The provider has not finished its answer: the first piece came while the rest was being made.
      expect(speechCall()?.outcome).toBe('pending');

      const rest = await collectSpeech(pieces);
      const streamed = joined([piece, ...rest.pieces]);
      expect(streamed.pieces.length).toBeGreaterThan(2);
      expect(streamed.audio).toEqual(whole.audio);
      expect(streamed.pieces.slice(1).every((p) => p.contentType === '')).toBe(true);
      expect(streamed.pieces.slice(0, -1).every((p) => p.usage === undefined && p.characters === 0)).toBe(true);
      expect(streamed).toMatchObject({ characters: 23, usage: whole.usage });
      expect(speechCall()?.outcome).toBe('completed');
    });

    it('fails with an upstream error after the pieces that came when the provider cuts the audio mid-way', async () => {
      sim.configure({ faults: [{ kind: 'drop_mid_stream', path: 'audio', afterTokens: 2 }] });
      const { pieces, error } = await piecesUntilFailure(speechOf(adapterFor(), 'tts-1', speech({ responseFormat: 'pcm' })));
      expect(pieces.length).toBeGreaterThan(0);
      expect(pieces[0]?.contentType).toBe('audio/pcm');
      expect(joined(pieces).audio.length).toBe(2 * 8192);
      // No piece claims the answer ended.
      expect(pieces.every((p) => p.usage === undefined)).toBe(true);
      expect(error).toBeInstanceOf(GatewayError);
      expect(error).toMatchObject({ kind: 'upstream_error', retryable: true, provider: 'sim-openai', message: 'The provider "sim-openai" closed the connection before the answer was complete.' });
    });

    it("times out when the provider stalls mid-audio longer than the call's timeout, after the pieces that came", async () => {
      // A piece every 2 s against a 300 ms timeout.
      sim.configure({ tokensPerSecond: 0.5 });
      const { pieces, error } = await piecesUntilFailure(speechOf(adapterFor(), 'tts-1', speech({ responseFormat: 'wav' }), 300));
      expect(pieces).toHaveLength(1);
      expect(error).toMatchObject({ kind: 'timeout', retryable: true, provider: 'sim-openai' });
      await sim.waitForRequest((r) => r.path === '/v1/audio/speech' && r.outcome === 'aborted');
    });

    it('stops the provider call when the caller cancels mid-audio', async () => {
      sim.configure({ tokensPerSecond: 2 });
      const controller = new AbortController();
      const pieces = speechOf(adapterFor(), 'tts-1', speech({ responseFormat: 'wav' }), 20_000, controller.signal);
      await expect(pieces.next()).resolves.toMatchObject({ done: false, value: { contentType: 'audio/wav' } });
      controller.abort();
      await expect(failure(pieces.next())).resolves.toMatchObject({ kind: 'cancelled' });
      // The provider saw the connection go before it had sent its answer.
      await expect(sim.waitForRequest((r) => r.path === '/v1/audio/speech' && r.outcome === 'aborted')).resolves.toBeDefined();
    });

    it('stops the provider call when the caller stops reading', async () => {
      sim.configure({ tokensPerSecond: 2 });
      const pieces = speechOf(adapterFor(), 'tts-1', speech({ responseFormat: 'wav' }));
      await expect(pieces.next()).resolves.toMatchObject({ done: false });
      await pieces.return(undefined);
      await expect(sim.waitForRequest((r) => r.path === '/v1/audio/speech' && r.outcome === 'aborted')).resolves.toBeDefined();
    });
  });

  describe('Azure OpenAI', () => {
    it('transcribes, translates and speaks through the deployment paths with its api-version and api-key', async () => {
      const azure = azureFor({ apiVersion: '2025-03-01-preview' });
      const transcript = await transcribeWith(azure, 'whisper', transcription({ responseFormat: 'verbose_json' }));
      expect(JSON.parse(transcript.body)).toMatchObject({ task: 'transcribe', duration: 2.5 });
      expect(transcript.audioMs).toBe(3_000);
      const translated = await transcribeWith(azure, 'whisper', transcription({ translate: true, responseFormat: 'text' }));
      expect(translated).toMatchObject({ body: 'Simulated translation of voice.wav (2.5 seconds of WAV audio).', contentType: 'text/plain; charset=utf-8', audioMs: 2_500 });
      const spoken = await speakWith(azure, 'tts-hd', speech({ responseFormat: 'opus' }));
      expect(spoken).toMatchObject({ contentType: 'audio/opus', characters: 23 });

      expect(audioCalls().map((r) => [r.path, r.outcome, r.headers['api-key']])).toEqual([
        ['/openai/deployments/whisper/audio/transcriptions', 'completed', 'present'],
        ['/openai/deployments/whisper/audio/translations', 'completed', 'present'],
        ['/openai/deployments/tts-hd/audio/speech', 'completed', 'present'],
      ]);
      expect(audioCalls()[0]?.body).toMatchObject({ model: 'whisper', response_format: 'verbose_json' });
      expect(audioCalls()[2]?.body).toMatchObject({ model: 'tts-hd', response_format: 'opus' });
    });

    it('keeps offering audio when its key comes from a file, and maps a 429 as on the OpenAI family', async () => {
      const volume = new SecretVolume({ secret: KEY });
      try {
        const adapter = azureFor({ apiKey: undefined, apiKeyFile: volume.path('secret') });
        expect(adapter.transcribe).toBeDefined();
        expect(adapter.speak).toBeDefined();
        await expect(speakWith(adapter, 'tts', speech())).resolves.toMatchObject({ contentType: 'audio/mpeg' });
        sim.configure({ faults: [{ kind: 'http_error', status: 429, retryAfterSeconds: 2, path: 'audio' }] });
        await expect(failure(transcribeWith(adapter, 'whisper', transcription()))).resolves.toMatchObject({ kind: 'rate_limited', retryAfterMs: 2_000, provider: 'sim-azure' });
      } finally {
        volume.remove();
      }
    });
  });

  describe('through the adapter service', () => {
    let service: AdapterService;
    const registry = createMetricsRegistry('adapter', { processMetrics: false });
    const config = (): GatewayConfig =>
      parseConfig(
        {
          version: 1,
          ingress: { http: { port: 8080 }, router: '127.0.0.1:1' },
          router: { grpc: { port: 1 }, http: { port: 0 }, adapters: { default: '127.0.0.1:2' } },
          adapter: { grpc: { port: 0 }, http: { port: 0 } },
          billing: { http: { port: 0 } },
          alerting: { http: { port: 0 } },
          providers: {
            openai: { type: 'openai', baseUrl: `${sim.url}/v1`, apiKey: KEY },
            azure: { type: 'azure', baseUrl: sim.url, apiKey: KEY },
            anthropic: { type: 'anthropic', baseUrl: sim.url, apiKey: KEY },
          },
          models: [{ id: 'm', deployments: [{ provider: 'openai', model: 'up' }] }],
        },
        {},
      );

    beforeAll(() => {
      service = new AdapterService(config(), PROVIDER_REGISTRY, new UpstreamInstrumentation(registry));
    });
    afterAll(() => service.close());

    const transcribeCall = (provider: string, request = transcription()) => ({ requestId: 'r', provider, upstreamModel: 'whisper-1', request, timeoutMs: 0 });
    const speakCall = (provider: string) => ({ requestId: 'r', provider, upstreamModel: 'tts-1', request: speech(), timeoutMs: 0 });

    it.each(['openai', 'azure'])('dispatches to the %s provider, timed as transcription, translation and speech', async (provider) => {
      await expect(service.transcribe(transcribeCall(provider), new AbortController().signal)).resolves.toMatchObject({ audioMs: 3_000 });
      await expect(service.transcribe(transcribeCall(provider, transcription({ translate: true })), new AbortController().signal)).resolves.toMatchObject({ audioMs: 2_500 });
      await expect(collectSpeech(service.speak(speakCall(provider), new AbortController().signal))).resolves.toMatchObject({ contentType: 'audio/mpeg', characters: 23 });
      const text = await registry.metrics();
      for (const operation of ['transcription', 'translation', 'speech']) {
        expect(text).toContain(`openrouter_upstream_requests_total{provider="${provider}",operation="${operation}",outcome="ok",service="adapter"} 1`);
      }
      // Speech is timed as a stream: to its first piece as well as to its end.
      expect(text).toContain(`openrouter_upstream_first_event_seconds_count{service="adapter",provider="${provider}",operation="speech"} 1`);
    });

    it('refuses audio on a family without it (Anthropic) as unsupported (400, not retried) before any call', async () => {
      const transcribe = await failure(Promise.resolve().then(() => service.transcribe(transcribeCall('anthropic'), new AbortController().signal)));
      expect(transcribe).toMatchObject({ kind: 'bad_request', code: 'model_not_supported', param: 'model', provider: 'anthropic', retryable: false });
      expect(transcribe.message).toBe('The provider "anthropic" offers no audio transcription API.');
      expect(toOpenAIError(transcribe).status).toBe(400);
      const speak = await failure(Promise.resolve().then(() => service.speak(speakCall('anthropic'), new AbortController().signal)));
      expect(speak).toMatchObject({ kind: 'bad_request', code: 'model_not_supported', param: 'model', retryable: false });
      expect(speak.message).toBe('The provider "anthropic" offers no speech API.');
      expect(sim.requests()).toEqual([]);
    });

    it('refuses a call without a request, and one for a provider this instance does not serve', async () => {
      await expect(failure(Promise.resolve().then(() => service.speak({ ...speakCall('openai'), request: undefined }, new AbortController().signal)))).resolves.toMatchObject({ kind: 'bad_request' });
      await expect(failure(Promise.resolve().then(() => service.transcribe(transcribeCall('other'), new AbortController().signal)))).resolves.toMatchObject({ kind: 'unavailable' });
    });

    it('serves Transcribe and Speak over gRPC and in process, the file and the audio as bytes', async () => {
      const adapter = await startAdapter(config(), createLogger('adapter', 'silent'));
      const client = new adapterv1.AdapterServiceClient(`127.0.0.1:${adapter.grpcPort}`, credentials.createInsecure());
      try {
        const request = transcription({ responseFormat: 'text' });
        const overGrpc = await callUnary<adapterv1.TranscribeRequest, adapterv1.TranscribeResponse>(client.transcribe.bind(client), { ...transcribeCall('openai', request) }, new Metadata(), new AbortController().signal);
        expect(overGrpc.response).toMatchObject({ body: 'Simulated transcript of voice.wav (2.5 seconds of WAV audio).', contentType: 'text/plain; charset=utf-8', audioMs: 3_000 });
        expect(audioCalls()[0]?.body).toMatchObject({ file: { name: 'voice.wav', type: 'audio/wav', size: request.file.length } });

        const messages = (stream: AsyncIterable<adapterv1.SpeakResponse>): Promise<Spoken> => collectSpeech(messagesOf(stream));
        const spoken = await messages(readStream(client.speak({ ...speakCall('azure'), request: speech({ responseFormat: 'wav' }) })));
        expect(spoken.contentType).toBe('audio/wav');
        expect(spoken.audio.subarray(0, 4).toString('ascii')).toBe('RIFF');
        expect(spoken.characters).toBe(23);
        const inProcess = await messages(adapter.inProcess.speak({ ...speakCall('azure'), request: speech({ responseFormat: 'wav' }) }, new AbortController().signal));
        expect(inProcess.audio).toEqual(spoken.audio);
        expect(inProcess.characters).toBe(23);

        // A provider without speech: the stream fails before any piece.
        const noSpeech = await piecesUntilFailure(messagesOf(readStream(client.speak(speakCall('anthropic')))));
        expect(noSpeech.pieces).toEqual([]);
        expect(noSpeech.error).toMatchObject({ kind: 'bad_request', code: 'model_not_supported', param: 'model' });

        const refused = await callUnary<adapterv1.TranscribeRequest, adapterv1.TranscribeResponse>(client.transcribe.bind(client), transcribeCall('anthropic'), new Metadata(), new AbortController().signal).then(
          () => undefined,
          (error: unknown) => error,
        );
        expect(refused).toMatchObject({ kind: 'bad_request', code: 'model_not_supported', param: 'model' });
      } finally {
        client.close();
        await adapter.close();
      }
    });
  });
});

/** Answers the simulator never gives: a compatible server's malformed, odd or oversized audio answers. */
describe('audio answers of other servers', () => {
  let server: Server;
  let base: string;
  const open: ProviderAdapter[] = [];
  const seen: { path: string; contentType: string | undefined }[] = [];

  const json = (res: ServerResponse, body: unknown, type = 'application/json'): void => {
    res.writeHead(200, { 'content-type': type });
    res.end(typeof body === 'string' ? body : JSON.stringify(body));
  };
  /** Each answer is picked by the first segment of the path (`/not-json/audio/transcriptions`). */
  const answers: Record<string, (res: ServerResponse) => void> = {
    'not-json': (res) => json(res, '{"text": "cut'),
    'no-text': (res) => json(res, { usage: { type: 'duration', seconds: 3 } }),
    'bad-tokens': (res) => json(res, { text: 'hi', usage: { type: 'tokens', input_tokens: 'many' } }),
    'bad-seconds': (res) => json(res, { text: 'hi', usage: { type: 'duration', seconds: -1 } }),
    'other-usage': (res) => json(res, { text: 'hello there', usage: { type: 'credits', credits: 2 }, x_groq: { id: 'req_1' } }),
    'plain-text': (res) => json(res, 'hello there\n', 'text/plain'),
    'own-format': (res) => json(res, { text: 'hello there', speakers: ['A'], duration: 1.5 }),
    // gpt-4o-transcribe-diarize's shape, sent by a server that labels it as text.
    diarized: (res) =>
      json(
        res,
        {
          task: 'transcribe',
          duration: 4.2,
          text: 'Hi. Hello.',
          segments: [
            { type: 'transcript.text.segment', id: 'seg_0', start: 0, end: 1.1, text: 'Hi.', speaker: 'A' },
            { type: 'transcript.text.segment', id: 'seg_1', start: 1.4, end: 4.2, text: 'Hello.', speaker: 'B' },
          ],
          usage: { type: 'tokens', input_tokens: 70, output_tokens: 4, total_tokens: 74 },
        },
        'text/plain',
      ),
    'hours-vtt': (res) => json(res, 'WEBVTT\n\n01:02:03.450 --> 01:02:04.5\nlate words\n', 'text/plain'),
    'speech-json': (res) => json(res, { id: 'not audio' }),
    'speech-empty': (res) => {
      res.writeHead(200, { 'content-type': 'audio/mpeg' });
      res.end();
    },
    'speech-untyped': (res) => {
      res.writeHead(200);
      res.end(Buffer.from([1, 2, 3]));
    },
    'speech-declared-huge': (res) => {
      res.writeHead(200, { 'content-type': 'audio/wav', 'content-length': String(MAX_AUDIO_ANSWER_BYTES + 1) });
      res.write(Buffer.alloc(1024));
      // The rest never comes: the adapter must not wait for it.
    },
    'speech-streamed-huge': (res) => {
      res.writeHead(200, { 'content-type': 'audio/pcm' });
      const chunk = Buffer.alloc(1024 * 1024);
      let sent = 0;
      const more = (): void => {
        while (sent <= MAX_AUDIO_ANSWER_BYTES / chunk.length && !res.destroyed) {
          sent++;
          if (!res.write(chunk)) return void res.once('drain', more);
        }
        res.end();
      };
      res.on('close', () => {
        sent = Number.POSITIVE_INFINITY;
      });
      more();
    },
  };

  beforeAll(async () => {
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      req.resume();
      req.on('end', () => {
        const name = /^\/([a-z-]+)\/audio\//.exec(req.url ?? '')?.[1] ?? '';
        seen.push({ path: req.url ?? '', contentType: req.headers['content-type'] });
        const answer = answers[name];
        if (answer) answer(res);
        else json(res, null);
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await Promise.all(open.map((a) => a.close()));
    server.closeAllConnections();
    server.close();
  });

  const adapterAt = (name: string): ProviderAdapter => {
    const adapter = createOpenAIAdapter('compat', { type: 'openai', baseUrl: `${base}/${name}`, apiKey: 'k', outputLimit: undefined, dropParams: [], headers: {}, timeoutMs: 5_000 });
    open.push(adapter);
    return adapter;
  };
  const transcribe = (name: string, request = transcription()): Promise<chatv1.AudioTranscriptionResponse> => transcribeWith(adapterAt(name), 'some-asr', request);
  const speak = (name: string, request = speech()): Promise<Spoken> => speakWith(adapterAt(name), 'some-tts', request);

  it.each([
    ['not-json', 'json', /malformed transcription \(not JSON\)/],
    ['no-text', 'json', /malformed transcription \(text: /],
    ['bad-tokens', 'verbose_json', /malformed transcription \(usage\.input_tokens: /],
    ['bad-seconds', 'json', /malformed transcription \(usage\.seconds: /],
    ['plain-text', 'text', /malformed transcription \(not JSON\)/],
  ])('refuses a malformed transcript (%s, asked %s) as a retryable upstream error', async (name, responseFormat, message) => {
    const error = await failure(transcribe(name, transcription({ responseFormat })));
    expect(error).toMatchObject({ kind: 'upstream_error', retryable: true, provider: 'compat' });
    expect(error.message).toMatch(message);
  });

  it("reads a usage of a type it does not know as none, passing the server's own fields on", async () => {
    const answer = await transcribe('other-usage', transcription({ prompt: 'p' }));
    expect(JSON.parse(answer.body)).toMatchObject({ x_groq: { id: 'req_1' } });
    expect(answer.usage).toEqual(estimated('p', 'hello there'));
    expect(answer.audioMs).toBe(2_500);
  });

  it('reads a diarized_json answer as JSON whatever its media type: its tokens, its length, its speakers passed on', async () => {
    const answer = await transcribe('diarized', transcription({ responseFormat: 'diarized_json', durationMs: 0 }));
    expect(answer).toMatchObject({ contentType: 'application/json', audioMs: 4_200 });
    expect(answer.usage).toMatchObject({ promptTokens: 70, completionTokens: 4, totalTokens: 74, estimated: false });
    expect(JSON.parse(answer.body)).toMatchObject({ segments: [{ speaker: 'A' }, { speaker: 'B' }] });
    expect(seen.at(-1)?.path).toBe('/diarized/audio/transcriptions');
  });

  it("takes a format it does not know as what the answer's media type says", async () => {
    const own = await transcribe('own-format', transcription({ responseFormat: 'speaker_json', durationMs: 0 }));
    expect(own).toMatchObject({ contentType: 'application/json', audioMs: 1_500 });
    const vtt = await transcribe('hours-vtt', transcription({ responseFormat: 'custom_vtt', durationMs: 0 }));
    expect(vtt).toMatchObject({ contentType: 'text/plain; charset=utf-8', audioMs: 3_724_500 });
    expect(vtt.usage).toEqual(estimated('', 'late words'));
  });

  it('sends the file as multipart form data whatever the client named it', async () => {
    await transcribe('other-usage', transcription({ filename: '', contentType: '' }));
    expect(seen.at(-1)).toMatchObject({ path: '/other-usage/audio/transcriptions', contentType: expect.stringMatching(/^multipart\/form-data; boundary=/) });
  });

  it.each([
    ['speech-json', /malformed speech answer \(application\/json instead of audio\)/],
    ['speech-empty', /malformed speech answer \(no audio\)/],
  ])('refuses a speech answer that is not audio (%s) as a retryable upstream error, before any piece', async (name, message) => {
    const { pieces, error } = await piecesUntilFailure(speechOf(adapterAt(name), 'some-tts', speech()));
    expect(pieces).toEqual([]);
    expect(error).toMatchObject({ kind: 'upstream_error', retryable: true });
    expect((error as GatewayError).message).toMatch(message);
  });

  it("types an untyped speech answer by the format asked for (mp3 when none was)", async () => {
    await expect(speak('speech-untyped')).resolves.toMatchObject({ contentType: 'audio/mpeg', audio: Buffer.from([1, 2, 3]) });
    await expect(speak('speech-untyped', speech({ responseFormat: 'flac' }))).resolves.toMatchObject({ contentType: 'audio/flac' });
  });

  it.each([
    ['speech-declared-huge', 'before any piece'],
    ['speech-streamed-huge', 'after the pieces within it'],
  ])('refuses a speech answer over 64 MiB (%s) as an upstream error %s, without reading it all', async (name) => {
    const { pieces, error } = await piecesUntilFailure(speechOf(adapterAt(name), 'some-tts', speech()));
    expect(error).toMatchObject({ kind: 'upstream_error', retryable: true, message: `The provider "compat" answered more than ${MAX_AUDIO_ANSWER_BYTES} bytes, the most the gateway reads.` });
    const passed = joined(pieces).audio.length;
    expect(passed).toBeLessThanOrEqual(MAX_AUDIO_ANSWER_BYTES);
    if (name === 'speech-declared-huge') expect(pieces).toEqual([]);
    else {
      // The bound is counted over the whole answer: the pieces within it went on before the one that crossed it.
      expect(pieces[0]?.contentType).toBe('audio/pcm');
      expect(passed).toBeGreaterThan(MAX_AUDIO_ANSWER_BYTES - 2 * 1024 * 1024);
      expect(pieces.every((p) => p.usage === undefined)).toBe(true);
    }
  });
});
