import { createHash } from 'node:crypto';
import { credentials, Metadata, type sendUnaryData, type ServerUnaryCall, type ServerWritableStream } from '@grpc/grpc-js';
import { adapterv1, chatv1, routerv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { acceptBatches, callUnary, CHANNEL_OPTIONS, chatChunkBatching, GrpcSecurity, GrpcServerHandle, readStream, ROUTE_CALLS_FEATURE, serveStream, serveUnary, withFeatures } from '@openrouter/grpc';
import { createLogger } from '@openrouter/observability';
import { AdapterClients } from './adapter-clients';
import { routerGrpcBinding } from './router.grpc.controller';
import { grpcAdapters, RouterService, type AdapterPort } from './router.service';
import { configWith, contextFor, engineFor, TWO_MODELS } from './routing/test-engine.testing';
import { unusedAdapters } from './adapter-port.testing';
import { readSpeech, speechStream } from './speech.testing';

const CHUNKS = chatChunkBatching<routerv1.ChatResponse>();

/** Answers every call with a whole completion. */
const adapters: AdapterPort = {
  ...unusedAdapters(),
  chat: (request) =>
    (async function* (): AsyncGenerator<adapterv1.ChatResponse> {
      yield { completion: { id: 'c', created: 1, model: request.upstreamModel, choices: [] } };
    })(),
};

describe('the router over gRPC, to a caller that asks for route calls and to one that does not', () => {
  let server: GrpcServerHandle;
  let client: routerv1.RouterServiceClient;

  beforeAll(async () => {
    const service = new RouterService(engineFor(configWith(TWO_MODELS)), adapters);
    server = await GrpcServerHandle.start('127.0.0.1', 0, [routerGrpcBinding(service, createLogger('router', 'silent'))]);
    client = new routerv1.RouterServiceClient(`127.0.0.1:${server.port}`, credentials.createInsecure(), CHANNEL_OPTIONS);
  });
  afterAll(async () => {
    client.close();
    await server.close(0);
  });

  const request: routerv1.ChatRequest = {
    context: contextFor(),
    request: { model: 'cheap', messages: [{ role: 'user', text: 'hi', contentIsNull: false, toolCalls: [], extraJson: '' }], tools: [], stop: [], stream: false, logitBias: {}, metadata: {}, modalities: [], extraJson: '' } as unknown as chatv1.ChatRequest,
  };
  const kinds = async (metadata: Metadata): Promise<string[][]> => {
    const out: string[][] = [];
    for await (const message of readStream(client.chat(request, metadata), undefined, CHUNKS)) out.push(Object.entries(message).filter(([, v]) => v !== undefined).map(([k]) => k));
    return out;
  };

  it('names the deployment before the call, then sends the decision with the answer, to a caller that asks', async () => {
    expect(await kinds(withFeatures([ROUTE_CALLS_FEATURE], acceptBatches(CHUNKS)))).toEqual([['calling'], ['routed']]);
  });

  it('sends the decision, then the answer, and no announcement, to a caller that does not ask (an older ingress)', async () => {
    expect(await kinds(acceptBatches(CHUNKS))).toEqual([['decision'], ['completion']]);
    expect(await kinds(new Metadata())).toEqual([['decision'], ['completion']]);
  });
});

describe('audio over gRPC: ingress to the router, the router to an adapter', () => {
  const AUDIO = [
    ...TWO_MODELS,
    { id: 'whisper-1', capabilities: ['transcription'], pricing: { perAudioMinute: '0.006' }, deployments: [{ id: 'whisper-a', provider: 'a', model: 'whisper-a' }, { id: 'whisper-b', provider: 'b', model: 'whisper-b' }] },
    { id: 'tts-1', capabilities: ['speech'], pricing: { perMillionCharacters: '15' }, deployments: [{ id: 'tts-a', provider: 'a', model: 'tts-a' }, { id: 'tts-b', provider: 'b', model: 'tts-b' }] },
  ];
  const config = configWith(AUDIO, { retry: { baseDelayMs: 0, maxDelayMs: 0 } });
  let adapter: GrpcServerHandle;
  let router: GrpcServerHandle;
  let clients: AdapterClients;
  let client: routerv1.RouterServiceClient;
  /** What the adapter got: each transcription's upstream model and its file's digest and size. */
  const transcriptions: Array<{ upstreamModel: string; sha256: string; bytes: number; translate: boolean }> = [];
  /** Set: the adapter's next transcription call fails with it. */
  let failNext: GatewayError | undefined;
  const SPOKEN = Buffer.alloc(2 * 1024 * 1024);
  for (let i = 0; i < SPOKEN.length; i++) SPOKEN[i] = (i * 7) % 253;
  /** The pieces the adapter sends a speech answer in. */
  const PIECES = 32;
  /** How the adapter's next speech calls go (else: the whole audio): failing before any audio, cut after some, or held after some until cancelled. */
  const speechCalls: Array<'fail-before-audio' | 'cut-after-audio' | 'hold-after-audio'> = [];
  /** Each speech call the adapter got: its upstream model, and whether it was cancelled. */
  const speeches: Array<{ upstreamModel: string; cancelled: Promise<void> }> = [];

  beforeAll(async () => {
    // An adapter over gRPC that answers transcriptions and speech as a provider would.
    const implementation = {
      transcribe(call: ServerUnaryCall<adapterv1.TranscribeRequest, adapterv1.TranscribeResponse>, callback: sendUnaryData<adapterv1.TranscribeResponse>): void {
        serveUnary(call, callback, async () => {
          const file = Buffer.from(call.request.request?.file ?? []);
          transcriptions.push({ upstreamModel: call.request.upstreamModel, sha256: createHash('sha256').update(file).digest('hex'), bytes: file.length, translate: call.request.request?.translate ?? false });
          const failure = failNext;
          failNext = undefined;
          if (failure) throw failure;
          return { response: { body: '{"text":"Hello."}', contentType: 'application/json', usage: chatv1.Usage.fromPartial({ completionTokens: 2, totalTokens: 2, estimated: true }), audioMs: call.request.request?.durationMs ?? 0 } };
        });
      },
      speak(call: ServerWritableStream<adapterv1.SpeakRequest, adapterv1.SpeakResponse>): void {
        serveStream(
          call,
          (signal) =>
            (async function* (): AsyncGenerator<adapterv1.SpeakResponse> {
              const cancelled = new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
              speeches.push({ upstreamModel: call.request.upstreamModel, cancelled });
              const how = speechCalls.shift();
              const answer = speechStream({ audio: SPOKEN, contentType: 'audio/mpeg', usage: chatv1.Usage.fromPartial({ promptTokens: 2, totalTokens: 2, estimated: true }), characters: [...(call.request.request?.input ?? '')].length }, PIECES);
              if (how === 'fail-before-audio') {
                yield { response: { audio: Buffer.alloc(0), contentType: 'audio/mpeg', characters: 0 } };
                throw new GatewayError('upstream_error', 'The provider answered 500.', { upstreamStatus: 500 });
              }
              if (how === undefined) return yield* answer;
              for (let i = 0; i < 2; i++) {
                const next = await answer.next();
                if (!next.done) yield next.value;
              }
              if (how === 'cut-after-audio') throw new GatewayError('upstream_error', 'The provider closed the connection mid-stream.');
              await cancelled;
            })(),
          () => undefined,
        );
      },
    };
    adapter = await GrpcServerHandle.start('127.0.0.1', 0, [{ definition: adapterv1.AdapterServiceService, implementation }]);
    clients = new AdapterClients({ default: `127.0.0.1:${adapter.port}` }, GrpcSecurity.fromConfig(config.grpc));
    const service = new RouterService(engineFor(config), grpcAdapters(clients));
    router = await GrpcServerHandle.start('127.0.0.1', 0, [routerGrpcBinding(service, createLogger('router', 'silent'))]);
    client = new routerv1.RouterServiceClient(`127.0.0.1:${router.port}`, credentials.createInsecure(), CHANNEL_OPTIONS);
  });
  afterAll(async () => {
    client.close();
    clients.close();
    await router.close(0);
    await adapter.close(0);
  });

  const transcription = (model: string, file: Buffer, translate = false): routerv1.TranscribeRequest => ({
    context: contextFor(),
    request: { model, file, filename: 'long.wav', contentType: 'audio/wav', translate, extraFields: [], durationMs: 0 },
  });

  it("carries a file larger than gRPC's default 4 MiB message to the adapter intact, failing over to the second deployment", async () => {
    const file = Buffer.alloc(6 * 1024 * 1024);
    for (let i = 0; i < file.length; i++) file[i] = (i * 31) % 251;
    const sha256 = createHash('sha256').update(file).digest('hex');
    transcriptions.length = 0;
    failNext = new GatewayError('upstream_error', 'The provider answered 500.', { upstreamStatus: 500 });
    const answer = await callUnary(client.transcribe.bind(client), transcription('whisper-1', file, true), new Metadata());
    expect(answer.response).toMatchObject({ body: '{"text":"Hello."}', contentType: 'application/json' });
    expect(transcriptions).toHaveLength(2);
    expect(transcriptions.every((t) => t.sha256 === sha256 && t.bytes === file.length && t.translate)).toBe(true);
    const [failed, served] = answer.decision?.attemptDetails ?? [];
    expect(failed).toMatchObject({ status: routerv1.RouteAttemptStatus.ROUTE_ATTEMPT_STATUS_ERROR, errorKind: 'upstream_error', upstreamStatus: 500 });
    expect(answer.decision).toMatchObject({ model: 'whisper-1', attempts: 2, deployment: served?.deployment });
    expect(served?.deployment).not.toBe(failed?.deployment);
    expect(transcriptions.map((t) => t.upstreamModel)).toEqual([failed?.deployment, served?.deployment]);
  });

  const speechRequest = (input = 'Hello there.'): routerv1.SpeakRequest => ({ context: contextFor(), request: { model: '', input, voice: 'alloy', extraJson: '' } });

  it('streams the spoken audio in pieces, the route first, and it arrives whole', async () => {
    speeches.length = 0;
    const { decision, response, messages } = await readSpeech(readStream(client.speak(speechRequest())));
    expect(decision).toMatchObject({ model: 'tts-1', deployment: expect.stringMatching(/^tts-[ab]$/), attempts: 1 });
    expect(messages.length).toBeGreaterThan(PIECES / 2);
    expect(messages.slice(1).every((m) => m.decision === undefined)).toBe(true);
    expect(messages[0]?.response?.audio.length).toBeGreaterThan(0);
    expect(response).toMatchObject({ contentType: 'audio/mpeg', characters: 12, usage: expect.objectContaining({ promptTokens: 2 }) });
    expect(Buffer.from(response.audio).equals(SPOKEN)).toBe(true);
    expect(speeches).toHaveLength(1);
  });

  it('fails over to the other deployment when the first fails before any audio, the client seeing only the audio served', async () => {
    speeches.length = 0;
    speechCalls.push('fail-before-audio');
    const { decision, response } = await readSpeech(readStream(client.speak(speechRequest())));
    const [failed, served] = decision?.attemptDetails ?? [];
    expect(decision).toMatchObject({ model: 'tts-1', attempts: 2, deployment: served?.deployment });
    expect(failed).toMatchObject({ status: routerv1.RouteAttemptStatus.ROUTE_ATTEMPT_STATUS_ERROR, errorKind: 'upstream_error', upstreamStatus: 500 });
    expect(served?.deployment).not.toBe(failed?.deployment);
    expect(speeches.map((s) => s.upstreamModel)).toEqual([failed?.deployment, served?.deployment]);
    expect(Buffer.from(response.audio).equals(SPOKEN)).toBe(true);
  });

  it('does not fail over once audio was sent: the error reaches the caller after the pieces it got', async () => {
    speeches.length = 0;
    speechCalls.push('cut-after-audio');
    const received: routerv1.SpeakResponse[] = [];
    const reading = (async () => {
      for await (const message of readStream(client.speak(speechRequest()))) received.push(message);
    })();
    await expect(reading).rejects.toMatchObject({ kind: 'upstream_error', message: expect.stringContaining('mid-stream') });
    expect(received).toHaveLength(2);
    expect(received[0]?.decision).toMatchObject({ attempts: 1 });
    const audio = Buffer.concat(received.map((m) => Buffer.from(m.response?.audio ?? [])));
    expect(audio.equals(SPOKEN.subarray(0, audio.length))).toBe(true);
    expect(audio.length).toBe(2 * (SPOKEN.length / PIECES));
    expect(speeches).toHaveLength(1);
  });

  it("cancels the adapter's call when the caller cancels the stream", async () => {
    speeches.length = 0;
    speechCalls.push('hold-after-audio');
    const caller = new AbortController();
    const stream = readStream(client.speak(speechRequest()), caller.signal);
    expect((await stream.next()).value?.decision).toMatchObject({ model: 'tts-1' });
    expect((await stream.next()).done).toBe(false);
    caller.abort();
    await expect(stream.next()).rejects.toMatchObject({ kind: 'cancelled' });
    // Resolves only when the adapter's call is cancelled (the spec's timeout bounds the wait).
    await speeches[0]?.cancelled;
    expect(speeches).toHaveLength(1);
  });

  it('refuses a model without the capability as a 400 naming model across the hop, calling no adapter', async () => {
    transcriptions.length = 0;
    await expect(callUnary(client.transcribe.bind(client), transcription('tts-1', Buffer.from('RIFF')), new Metadata())).rejects.toMatchObject({ kind: 'bad_request', code: 'model_not_supported', param: 'model' });
    await expect(readSpeech(readStream(client.speak({ context: contextFor(), request: { model: 'whisper-1', input: 'hi', voice: 'alloy', extraJson: '' } })))).rejects.toMatchObject({ kind: 'bad_request', code: 'model_not_supported', param: 'model' });
    expect(transcriptions).toEqual([]);
  });
});

describe('image edits over gRPC: ingress to the router, the router to an adapter', () => {
  const IMAGES = [
    ...TWO_MODELS,
    { id: 'gpt-image-1', capabilities: ['images'], pricing: { input: '5', output: '40' }, deployments: [{ id: 'img-a', provider: 'a', model: 'gpt-image-a' }, { id: 'img-b', provider: 'b', model: 'gpt-image-b' }] },
  ];
  const config = configWith(IMAGES, { retry: { baseDelayMs: 0, maxDelayMs: 0 } });
  let adapter: GrpcServerHandle;
  let router: GrpcServerHandle;
  let clients: AdapterClients;
  let client: routerv1.RouterServiceClient;
  /** What the adapter got: each call's upstream model, prompt and extra fields, and its files' names, types and digests. */
  const calls: Array<{ upstreamModel: string; prompt: string; extraJson: string; files: string[]; mask: string | undefined }> = [];
  /** Set: the adapter's next call fails with it. */
  let failNext: GatewayError | undefined;
  const EDITED = Buffer.alloc(3 * 1024 * 1024, 0x5a).toString('base64');

  const describeFile = (file: chatv1.UploadedFile): string => `${file.filename} ${file.contentType} ${file.data.length} ${createHash('sha256').update(file.data).digest('hex')}`;

  beforeAll(async () => {
    const implementation = {
      generateImages(call: ServerUnaryCall<adapterv1.GenerateImagesRequest, adapterv1.GenerateImagesResponse>, callback: sendUnaryData<adapterv1.GenerateImagesResponse>): void {
        serveUnary(call, callback, async () => {
          const request = call.request.request;
          calls.push({ upstreamModel: call.request.upstreamModel, prompt: request?.prompt ?? '', extraJson: request?.extraJson ?? '', files: (request?.images ?? []).map(describeFile), mask: request?.mask && describeFile(request.mask) });
          const failure = failNext;
          failNext = undefined;
          if (failure) throw failure;
          return { response: { created: 1, data: [{ b64Json: EDITED }], usage: chatv1.Usage.fromPartial({ promptTokens: 1_000, completionTokens: 4_160, totalTokens: 5_160 }), extraJson: '', inputImageTokens: 970 } };
        });
      },
    };
    adapter = await GrpcServerHandle.start('127.0.0.1', 0, [{ definition: adapterv1.AdapterServiceService, implementation }]);
    clients = new AdapterClients({ default: `127.0.0.1:${adapter.port}` }, GrpcSecurity.fromConfig(config.grpc));
    const service = new RouterService(engineFor(config), grpcAdapters(clients));
    router = await GrpcServerHandle.start('127.0.0.1', 0, [routerGrpcBinding(service, createLogger('router', 'silent'))]);
    client = new routerv1.RouterServiceClient(`127.0.0.1:${router.port}`, credentials.createInsecure(), CHANNEL_OPTIONS);
  });
  afterAll(async () => {
    client.close();
    clients.close();
    await router.close(0);
    await adapter.close(0);
  });

  const file = (filename: string, bytes: number, seed: number): chatv1.UploadedFile => {
    const data = Buffer.alloc(bytes);
    for (let i = 0; i < data.length; i++) data[i] = (i * seed) % 251;
    return { data, filename, contentType: 'image/png' };
  };

  it("carries an edit of several images and a mask, larger than gRPC's default 4 MiB message, to the adapter intact, failing over to the second deployment", async () => {
    const images = [file('room.png', 6 * 1024 * 1024, 31), file('lamp.png', 3 * 1024 * 1024, 17)];
    const mask = file('mask.png', 2 * 1024 * 1024, 7);
    const extraJson = JSON.stringify({ size: '1024x1024', quality: 'high', input_fidelity: 'high' });
    calls.length = 0;
    failNext = new GatewayError('upstream_error', 'The provider answered 500.', { upstreamStatus: 500 });
    const request: routerv1.GenerateImagesRequest = { context: contextFor(), request: { model: 'gpt-image-1', prompt: 'put the lamp in the room', extraJson, images, mask } };
    const answer = await callUnary(client.generateImages.bind(client), request, new Metadata());

    expect(answer.response?.data).toEqual([{ b64Json: EDITED }]);
    expect(answer.response?.usage).toMatchObject({ promptTokens: 1_000, completionTokens: 4_160 });
    expect(answer.response?.inputImageTokens).toBe(970);
    const sent = { prompt: 'put the lamp in the room', extraJson, files: images.map(describeFile), mask: describeFile(mask) };
    const [failed, served] = answer.decision?.attemptDetails ?? [];
    expect(failed).toMatchObject({ status: routerv1.RouteAttemptStatus.ROUTE_ATTEMPT_STATUS_ERROR, errorKind: 'upstream_error', upstreamStatus: 500 });
    expect(answer.decision).toMatchObject({ model: 'gpt-image-1', attempts: 2, deployment: served?.deployment });
    expect(served?.deployment).not.toBe(failed?.deployment);
    const upstreamOf: Record<string, string> = { 'img-a': 'gpt-image-a', 'img-b': 'gpt-image-b' };
    expect(calls).toEqual([
      { upstreamModel: upstreamOf[failed?.deployment ?? ''], ...sent },
      { upstreamModel: upstreamOf[served?.deployment ?? ''], ...sent },
    ]);
  });

  it("passes a provider's refusal of an edit back across both hops as a 400 naming its param, without failing over", async () => {
    calls.length = 0;
    failNext = new GatewayError('bad_request', "Invalid file 'image': unsupported mimetype ('text/plain').", { param: 'image', code: 'invalid_image_format', upstreamStatus: 400 });
    const request: routerv1.GenerateImagesRequest = { context: contextFor(), request: { model: 'gpt-image-1', prompt: 'x', extraJson: '', images: [{ data: Buffer.from('hello'), filename: 'a.txt', contentType: 'text/plain' }] } };
    await expect(callUnary(client.generateImages.bind(client), request, new Metadata())).rejects.toMatchObject({ kind: 'bad_request', param: 'image', code: 'invalid_image_format' });
    expect(calls).toHaveLength(1);
  });
});
