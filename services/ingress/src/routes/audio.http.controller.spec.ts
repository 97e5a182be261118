import Decimal from 'decimal.js';
import { routerv1, usagev1, type chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { callStreamInProcess, callUnaryInProcess } from '@openrouter/grpc';
import { createLogger } from '@openrouter/observability';
import { wavClip } from '@openrouter/provider-simulator';
import type { UsagePublisher } from '@openrouter/usage';
import { startIngress, type IngressHandle } from '../index';
import type { RouterCalls } from '../router.port';
import { ingressTestConfig } from '../test-config.testing';

const KEY = 'sk-or-dev-audio-0123456789abcdef';
const AUDIO_BYTES = 64 * 1024;

const decision: routerv1.RouteDecision = { model: 'm', provider: 'sim', deployment: 'd', upstreamModel: 'u', attempts: 1, taskType: '', reason: '', experiment: '', experimentArm: '', attemptDetails: [], strategy: '' };
const usage = (prompt: number, completion: number, estimated: boolean): chatv1.Usage => ({ promptTokens: prompt, completionTokens: completion, totalTokens: prompt + completion, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, estimated });


/** Usage events as ingress publishes them, awaited by the request id their client saw. */
class Published implements UsagePublisher {
  private readonly events = new Map<string, usagev1.UsageEvent>();
  private readonly waiting = new Map<string, (event: usagev1.UsageEvent) => void>();

  async publish(event: usagev1.UsageEvent): Promise<void> {
    this.events.set(event.requestId, event);
    this.waiting.get(event.requestId)?.(event);
  }

  /** The event of the request answered with `response` (its `x-request-id`), once it is published. */
  of(response: { headers: Headers }): Promise<usagev1.UsageEvent> {
    const id = response.headers.get('x-request-id') ?? '';
    const event = this.events.get(id);
    return event ? Promise.resolve(event) : new Promise((resolve) => this.waiting.set(id, resolve));
  }

  status(): ReturnType<UsagePublisher['status']> {
    return { mode: 'direct', pending: 0, outboxBytes: 0 };
  }

  async close(): Promise<void> {}
}

/** A speech piece: its audio, with the media type, usage and count a piece may carry. */
const piece = (audio: string | Buffer, more: Partial<chatv1.SpeechResponse> = {}): chatv1.SpeechResponse => ({ audio: Buffer.from(audio), contentType: '', usage: undefined, characters: 0, ...more });

/** A speech stream as the router sends it: the decision with the first piece, then the rest. */
async function* spoken(first: chatv1.SpeechResponse, ...rest: chatv1.SpeechResponse[]): AsyncGenerator<routerv1.SpeakResponse> {
  yield { decision, response: first };
  for (const response of rest) yield { response };
}

/** A promise and the function that settles it, for a test to hold the router back until it says. */
function gate<T = void>(): { promise: Promise<T>; open: (value: T) => void } {
  let open!: (value: T) => void;
  const promise = new Promise<T>((resolve) => (open = resolve));
  return { promise, open };
}

/** The router in this process, answering as the test tells it and keeping what it was asked. */
class FakeRouter {
  readonly transcribed: routerv1.TranscribeRequest[] = [];
  readonly spoken: routerv1.SpeakRequest[] = [];
  transcription: () => routerv1.TranscribeResponse = () => ({ decision, response: { body: '{"text":"hello"}', contentType: 'application/json', usage: usage(0, 2, true), audioMs: 0 } });
  /** The speech stream, given the call's own signal (aborted when the call is cancelled). */
  speech: (signal: AbortSignal) => AsyncIterable<routerv1.SpeakResponse> = () => spoken(piece('ID3-audio', { contentType: 'audio/mpeg' }), piece('', { usage: usage(3, 0, true), characters: 9 }));

  calls(): RouterCalls {
    return {
      transcribe: (request, signal) =>
        callUnaryInProcess(async () => {
          this.transcribed.push(request);
          return this.transcription();
        }, signal),
      speak: (request, signal) =>
        callStreamInProcess((callee) => {
          this.spoken.push(request);
          return this.speech(callee);
        }, signal),
    } as Partial<RouterCalls> as RouterCalls;
  }
}

describe('the Audio API at ingress', () => {
  let ingress: IngressHandle;
  let router: FakeRouter;
  let published: Published;
  let base: string;

  beforeAll(async () => {
    router = new FakeRouter();
    published = new Published();
    const config = ingressTestConfig({
      ingress: { http: { host: '127.0.0.1', port: 0 }, router: '127.0.0.1:1', devKey: KEY, limits: { audioBytes: AUDIO_BYTES, bodyBytes: 32 * 1024 } },
      models: [{ id: 'm', pricing: { input: '1', output: '2', perAudioMinute: '0.006', perMillionCharacters: '15' }, deployments: [{ id: 'd', provider: 'sim', model: 'u' }] }],
    });
    ingress = await startIngress(config, createLogger('ingress', 'silent'), { router: router.calls(), usagePublisher: published });
    base = `http://127.0.0.1:${ingress.httpPort}`;
  });
  afterAll(async () => {
    await ingress?.close();
  });
  beforeEach(() => {
    router.transcribed.length = 0;
    router.spoken.length = 0;
  });

  const post = (path: string, body: FormData | string, headers: Record<string, string> = {}): Promise<Response> =>
    fetch(`${base}${path}`, { method: 'POST', headers: { authorization: `Bearer ${KEY}`, ...(typeof body === 'string' ? { 'content-type': 'application/json' } : {}), ...headers }, body });

  function form(fields: Record<string, string | string[]>, file: Buffer | null = wavClip(1_500), filename = 'hello.wav'): FormData {
    const data = new FormData();
    if (file) data.append('file', new Blob([file], { type: 'audio/wav' }), filename);
    for (const [name, value] of Object.entries(fields)) for (const v of Array.isArray(value) ? value : [value]) data.append(name, v);
    return data;
  }

  async function errorOf(response: Response): Promise<{ status: number; headers: Headers; error: { message: string; type: string; param: string | null; code: string | null } }> {
    const body = (await response.json()) as { error: { message: string; type: string; param: string | null; code: string | null } };
    return { status: response.status, headers: response.headers, error: body.error };
  }

  it('reads the uploaded form: the audio with its name, type and length, the modelled fields, and the rest in order', async () => {
    router.transcription = () => ({ decision, response: { body: '{"text":"hello","usage":{"type":"duration","seconds":2}}', contentType: 'application/json', usage: usage(0, 2, true), audioMs: 2_000 } });
    const file = wavClip(1_500);
    const response = await post(
      '/v1/audio/transcriptions',
      form({ model: 'm', language: 'en', prompt: 'Ada', response_format: 'json', temperature: '0.3', 'timestamp_granularities[]': ['word', 'segment'], chunking_strategy: 'auto' }, file),
    );
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(response.headers.get('x-openrouter-model')).toBe('m');
    expect(response.headers.get('x-request-id')).toBeTruthy();
    // 2 completion tokens at 2 per 1M, and 2 s at 0.006 a minute.
    const cost = new Decimal(4).dividedBy(1_000_000).plus(new Decimal('0.006').dividedBy(30));
    expect(response.headers.get('x-openrouter-cost')).toBe(cost.toFixed());
    expect(await response.json()).toEqual({ text: 'hello', usage: { type: 'duration', seconds: 2, cost: cost.toNumber() } });
    const [call] = router.transcribed;
    expect(call?.context?.requestId).toBe(response.headers.get('x-request-id'));
    expect(call?.request).toMatchObject({
      model: 'm',
      filename: 'hello.wav',
      contentType: 'audio/wav',
      translate: false,
      language: 'en',
      prompt: 'Ada',
      responseFormat: 'json',
      temperature: 0.3,
      extraFields: [
        { name: 'timestamp_granularities[]', value: 'word' },
        { name: 'timestamp_granularities[]', value: 'segment' },
        { name: 'chunking_strategy', value: 'auto' },
      ],
      durationMs: 1_500,
    });
    expect(Buffer.compare(call?.request?.file ?? Buffer.alloc(0), file)).toBe(0);
    expect(await published.of(response)).toMatchObject({ operation: usagev1.Operation.OPERATION_TRANSCRIPTION, requestedModel: 'm', servedModel: 'm', audioMs: 2_000, status: usagev1.Status.STATUS_OK, cost: { amount: cost.toFixed() } });
  });

  it("bills the length ingress read from the file when the answer reports none, and sends a text answer as text, the provider's body as it is", async () => {
    router.transcription = () => ({ decision, response: { body: '1\n00:00:00,000 --> 00:00:01,500\nhello\n', contentType: 'text/plain', usage: usage(0, 2, true), audioMs: 0 } });
    const response = await post('/v1/audio/transcriptions', form({ model: 'm', response_format: 'srt' }, wavClip(1_800)));
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(await response.text()).toBe('1\n00:00:00,000 --> 00:00:01,500\nhello\n');
    expect(await published.of(response)).toMatchObject({ audioMs: 1_800, cost: { amount: new Decimal(4).dividedBy(1_000_000).plus(new Decimal('0.006').times(1_800).dividedBy(60_000)).toFixed() } });
  });

  it('keeps a JSON answer without usage exactly as the provider wrote it', async () => {
    const body = '{"task":"transcribe","language":"english","duration":1.5,"text":"hello","segments":[]}';
    router.transcription = () => ({ decision, response: { body, contentType: 'application/json', usage: usage(0, 2, true), audioMs: 1_500 } });
    const response = await post('/v1/audio/transcriptions', form({ model: 'm', response_format: 'verbose_json' }));
    expect(await response.text()).toBe(body);
    expect(await published.of(response)).toMatchObject({ audioMs: 1_500 });
  });

  it('serves translations as transcriptions into English, recorded as translations', async () => {
    router.transcription = () => ({ decision, response: { body: '{"text":"hello"}', contentType: 'application/json', usage: usage(0, 2, true), audioMs: 1_500 } });
    const response = await post('/v1/audio/translations', form({ model: 'm' }));
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ text: 'hello' });
    expect(router.transcribed[0]?.request).toMatchObject({ translate: true, model: 'm' });
    expect(await published.of(response)).toMatchObject({ operation: usagev1.Operation.OPERATION_TRANSLATION, audioMs: 1_500 });
  });

  it('answers speech with the audio bytes and their media type, billed per character at the end of the stream', async () => {
    const audio = Buffer.from([0x49, 0x44, 0x33, 0x04, 0, 0, 0, 0, 0xff, 0xfb]);
    router.speech = () => spoken(piece(audio.subarray(0, 4), { contentType: 'audio/mpeg' }), piece(audio.subarray(4, 8)), piece(audio.subarray(8), { usage: usage(3, 0, true), characters: 12 }));
    const response = await post('/v1/audio/speech', JSON.stringify({ model: 'm', input: 'Hello there.', voice: { id: 'voice_1' }, speed: 1.5 }));
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('audio/mpeg');
    expect(response.headers.get('x-openrouter-model')).toBe('m');
    expect(Buffer.from(await response.arrayBuffer())).toEqual(audio);
    expect(router.spoken[0]?.request).toEqual({ model: 'm', input: 'Hello there.', voice: '{"id":"voice_1"}', responseFormat: undefined, user: undefined, extraJson: '{"speed":1.5}' });
    // Unknown when the headers leave, as on a chat stream: the cost is in the usage record.
    expect(response.headers.get('x-openrouter-cost')).toBeNull();
    // 3 prompt tokens at 1 per 1M, 12 characters at 15 per 1M.
    const cost = new Decimal(3).plus(new Decimal(12).times(15)).dividedBy(1_000_000).toFixed();
    expect(await published.of(response)).toMatchObject({ operation: usagev1.Operation.OPERATION_SPEECH, status: usagev1.Status.STATUS_OK, characters: 12, tokens: { prompt: 3, estimated: true }, cost: { amount: cost } });
  });

  it("counts the input's characters when the answer has no count, and names the requested format's media type when the answer names none", async () => {
    router.speech = () => spoken(piece('RIFF'), piece('', { usage: usage(3, 0, true) }));
    const response = await post('/v1/audio/speech', JSON.stringify({ model: 'm', input: 'héllo 🙂', voice: 'alloy', response_format: 'wav' }));
    expect(response.headers.get('content-type')).toBe('audio/wav');
    expect(await response.text()).toBe('RIFF');
    expect(await published.of(response)).toMatchObject({ characters: 7 });
  });

  it('sends each piece of audio as it arrives, before the provider has sent the rest', async () => {
    const rest = gate();
    router.speech = async function* () {
      yield { decision, response: piece('first-', { contentType: 'audio/mpeg' }) };
      // Held back until the client has read the first piece.
      await rest.promise;
      yield { response: piece('second') };
      yield { response: piece('', { usage: usage(2, 0, true), characters: 5 }) };
    };
    const response = await post('/v1/audio/speech', JSON.stringify({ model: 'm', input: 'hello', voice: 'alloy' }));
    expect(response.status).toBe(200);
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const first = await reader.read();
    expect(Buffer.from(first.value ?? []).toString()).toBe('first-');
    rest.open();
    let after = '';
    for (let next = await reader.read(); !next.done; next = await reader.read()) after += Buffer.from(next.value).toString();
    expect(after).toBe('second');
    expect(await published.of(response)).toMatchObject({ status: usagev1.Status.STATUS_OK, characters: 5 });
  });

  it("fails the client's download when the stream fails after its first piece, and records the error with the characters", async () => {
    const cut = gate();
    router.speech = async function* () {
      yield { decision, response: piece('first-', { contentType: 'audio/mpeg' }) };
      await cut.promise;
      throw new GatewayError('upstream_error', 'The provider cut the audio.');
    };
    const response = await post('/v1/audio/speech', JSON.stringify({ model: 'm', input: 'hello', voice: 'alloy' }));
    expect(response.status).toBe(200);
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    expect(Buffer.from((await reader.read()).value ?? []).toString()).toBe('first-');
    cut.open();
    // Never a shorter file that reads as complete.
    await expect(reader.read()).rejects.toThrow();
    const event = await published.of(response);
    expect(event).toMatchObject({ status: usagev1.Status.STATUS_ERROR, errorKind: 'upstream_error', cancelled: false, characters: 5, tokens: { estimated: true } });
    // 5 characters at 15 per 1M, and the input's estimated tokens at 1 per 1M.
    expect(new Decimal(event.cost?.amount ?? '0').greaterThanOrEqualTo(new Decimal(75).dividedBy(1_000_000))).toBe(true);
  });

  it('answers a failure before the first piece as an ordinary error', async () => {
    router.speech = async function* () {
      yield* [];
      throw new GatewayError('unavailable', 'No deployment is available.');
    };
    const failed = await errorOf(await post('/v1/audio/speech', JSON.stringify({ model: 'm', input: 'hello', voice: 'alloy' })));
    expect(failed).toMatchObject({ status: 503, error: { message: 'No deployment is available.' } });
    expect(await published.of(failed)).toMatchObject({ status: usagev1.Status.STATUS_ERROR, errorKind: 'unavailable', characters: 0, cost: { amount: '0' } });
  });

  it('cancels the call down to the provider when the client leaves mid-stream, and records it cancelled with the characters', async () => {
    const aborted = gate();
    router.speech = async function* (signal) {
      signal.addEventListener('abort', () => aborted.open(), { once: true });
      yield { decision, response: piece('first-', { contentType: 'audio/mpeg' }) };
      // The provider goes on making audio until the call is cancelled.
      while (!signal.aborted) {
        yield { response: piece('more') };
        await new Promise((resolve) => setImmediate(resolve));
      }
    };
    const client = new AbortController();
    const response = await fetch(`${base}/v1/audio/speech`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', input: 'hello 🙂', voice: 'alloy' }),
      signal: client.signal,
    });
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    expect(Buffer.from((await reader.read()).value ?? []).toString()).toMatch(/^first-/);
    client.abort();
    await aborted.promise;
    expect(await published.of(response)).toMatchObject({ status: usagev1.Status.STATUS_CANCELLED, cancelled: true, characters: 7, tokens: { estimated: true } });
  });

  it.each([
    ['a JSON body', () => JSON.stringify({ model: 'm', file: 'aGVsbG8=' }), 400, 'file', 'invalid_content_type'],
    ['a form without its file', () => form({ model: 'm' }, null), 400, 'file', 'missing_required_parameter'],
    ['an empty file', () => form({ model: 'm' }, Buffer.alloc(0)), 400, 'file', 'invalid_value'],
    ['a form without a model', () => form({}), 400, 'model', 'missing_required_parameter'],
    ['stream=true', () => form({ model: 'm', stream: 'true' }), 400, 'stream', 'unsupported_parameter'],
    ['an unknown response_format', () => form({ model: 'm', response_format: 'xml' }), 400, 'response_format', 'invalid_value'],
  ])('refuses %s on the upload routes before any router call', async (_name, body, status, param, code) => {
    for (const path of ['/v1/audio/transcriptions', '/v1/audio/translations']) {
      const refused = await errorOf(await post(path, body()));
      expect(refused).toMatchObject({ status, error: { type: 'invalid_request_error', param, code } });
      // Refused requests are metered (as errors, at no cost).
      expect(await published.of(refused)).toMatchObject({ status: usagev1.Status.STATUS_ERROR, errorKind: 'bad_request', cost: { amount: '0' } });
    }
    expect(router.transcribed).toHaveLength(0);
  });

  it('refuses a form that is not valid multipart with a 400', async () => {
    const malformed = await post('/v1/audio/transcriptions', '--nope\r\ncontent-disposition: form-data; name="model"\r\n\r\nm\r\n', { 'content-type': 'multipart/form-data; boundary=other' });
    expect(await errorOf(malformed)).toMatchObject({ status: 400, error: { code: 'invalid_multipart' } });
    const noBoundary = await post('/v1/audio/transcriptions', 'model=m', { 'content-type': 'multipart/form-data' });
    expect(await errorOf(noBoundary)).toMatchObject({ status: 400, error: { code: 'invalid_multipart' } });
    expect(router.transcribed).toHaveLength(0);
  });

  it('refuses an upload over ingress.limits.audioBytes with a 413, and takes one just under it', async () => {
    const over = await errorOf(await post('/v1/audio/transcriptions', form({ model: 'm' }, Buffer.alloc(AUDIO_BYTES))));
    expect(over).toMatchObject({ status: 413, error: { type: 'invalid_request_error', code: 'request_too_large' } });
    // Above the JSON limit (bodyBytes), under the audio limit.
    const fits = await post('/v1/audio/transcriptions', form({ model: 'm' }, Buffer.alloc(AUDIO_BYTES - 1024)));
    expect(fits.status).toBe(200);
    await published.of(fits);
    expect(router.transcribed).toHaveLength(1);
  });

  it('answers a form sent to any other route with that route’s own 400, and one over its JSON limit with a 413', async () => {
    const chat = await errorOf(await post('/v1/chat/completions', form({ model: 'm', messages: 'hello' }, null)));
    expect(chat).toMatchObject({ status: 400, error: { type: 'invalid_request_error', param: 'messages' } });
    for (const path of ['/v1/completions', '/v1/embeddings', '/v1/moderations', '/v1/images/generations', '/v1/responses', '/v1/messages']) {
      const response = await post(path, form({ model: 'm', messages: 'hello' }, null));
      expect([path, response.status]).toEqual([path, 400]);
    }
    const speech = await errorOf(await post('/v1/audio/speech', form({ model: 'm', input: 'hi', voice: 'alloy', speed: '1' }, null)));
    expect(speech).toMatchObject({ status: 400, error: { param: 'speed', code: 'invalid_type' } });
    const large = await errorOf(await post('/v1/chat/completions', form({ model: 'm' }, Buffer.alloc(40 * 1024))));
    expect(large).toMatchObject({ status: 413, error: { code: 'request_too_large' } });
  });

  it.each([
    ['an empty input', { model: 'm', input: '', voice: 'alloy' }, 'input', 'invalid_value'],
    ['an input over 4096 characters', { model: 'm', input: 'a'.repeat(4097), voice: 'alloy' }, 'input', 'invalid_value'],
    ['no voice', { model: 'm', input: 'x' }, 'voice', 'missing_required_parameter'],
    ['stream_format sse', { model: 'm', input: 'x', voice: 'alloy', stream_format: 'sse' }, 'stream_format', 'unsupported_parameter'],
  ])('refuses speech with %s before any router call', async (_name, body, param, code) => {
    const refused = await errorOf(await post('/v1/audio/speech', JSON.stringify(body)));
    expect(refused).toMatchObject({ status: 400, error: { param, code } });
    expect(router.spoken).toHaveLength(0);
    expect(await published.of(refused)).toMatchObject({ operation: usagev1.Operation.OPERATION_SPEECH, status: usagev1.Status.STATUS_ERROR, characters: 0, cost: { amount: '0' } });
  });

  it("maps the router's failure as for every call, and an answer without a route as an upstream error", async () => {
    router.transcription = () => {
      throw new GatewayError('unavailable', 'No deployment is available.');
    };
    const unavailable = await errorOf(await post('/v1/audio/transcriptions', form({ model: 'm' })));
    expect(unavailable).toMatchObject({ status: 503 });
    expect(await published.of(unavailable)).toMatchObject({ status: usagev1.Status.STATUS_ERROR, errorKind: 'unavailable', audioMs: 0 });
    router.speech = async function* () {
      yield { decision: undefined, response: undefined };
    };
    const unrouted = await errorOf(await post('/v1/audio/speech', JSON.stringify({ model: 'm', input: 'x', voice: 'alloy' })));
    expect(unrouted).toMatchObject({ status: 502, error: { message: 'The router returned no speech.' } });
    expect(await published.of(unrouted)).toMatchObject({ status: usagev1.Status.STATUS_ERROR, characters: 0 });
  });
});
