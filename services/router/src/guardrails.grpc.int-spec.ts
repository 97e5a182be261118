import { credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { chatv1, routerv1, type adapterv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { toAnthropicError, toOpenAIError } from '@openrouter/openai-wire';
import { acceptBatches, callUnary, CHANNEL_OPTIONS, chatChunkBatching, fromGrpcError, GrpcServerHandle, readStream } from '@openrouter/grpc';
import { createLogger } from '@openrouter/observability';
import { Guardrails } from './guardrails/guardrails';
import { routerGrpcBinding } from './router.grpc.controller';
import { RouterService, type AdapterPort } from './router.service';
import { POLICY_MODELS, policyConfig } from './routing/policy-config.testing';
import { contextFor, engineFor } from './routing/test-engine.testing';
import { unusedAdapters } from './adapter-port.testing';
import { readSpeech, speechStream } from './speech.testing';

const CHUNKS = chatChunkBatching<routerv1.ChatResponse>();
const KEY = 'AKIAIOSFODNN7EXAMPLE';

describe('input guardrails over the router gRPC API', () => {
  let server: GrpcServerHandle;
  let client: routerv1.RouterServiceClient;
  /** The requests the providers got. */
  const chats: chatv1.ChatRequest[] = [];
  const embeds: chatv1.EmbeddingRequest[] = [];
  const speeches: chatv1.SpeechRequest[] = [];
  const transcriptions: chatv1.AudioTranscriptionRequest[] = [];
  const adapters: AdapterPort = {
    ...unusedAdapters(),
    chat: (request) => {
      if (request.request) chats.push(request.request);
      return (async function* (): AsyncGenerator<adapterv1.ChatResponse> {
        yield { completion: { id: 'c', created: 1, model: request.upstreamModel, choices: [] } };
      })();
    },
    embed: async (request) => {
      if (request.request) embeds.push(request.request);
      return { response: chatv1.EmbeddingResponse.fromPartial({ model: request.upstreamModel, data: [], usage: { promptTokens: 1, totalTokens: 1 } }) };
    },
    speak: (request) => {
      if (request.request) speeches.push(request.request);
      return speechStream({ audio: Buffer.from('ID3'), contentType: 'audio/mpeg', characters: request.request?.input.length ?? 0 });
    },
    transcribe: async (request) => {
      if (request.request) transcriptions.push(request.request);
      return { response: { body: '{"text":"Hello."}', contentType: 'application/json', audioMs: 0 } };
    },
  };

  beforeAll(async () => {
    const models = [
      ...POLICY_MODELS,
      { id: 'emb', capabilities: ['embeddings'], pricing: { input: '0.1', output: '0' }, deployments: [{ id: 'emb-eu', provider: 'eu-1', model: 'emb' }] },
      { id: 'tts', capabilities: ['speech'], pricing: { perMillionCharacters: '15' }, deployments: [{ id: 'tts-eu', provider: 'eu-1', model: 'tts-1' }] },
      { id: 'stt', capabilities: ['transcription'], pricing: { perAudioMinute: '0.006' }, deployments: [{ id: 'stt-eu', provider: 'eu-1', model: 'whisper-1' }] },
    ];
    const guardrails = new Guardrails({ rules: [{ id: 'secrets', detect: 'secret', action: 'block' }, { id: 'emails', detect: 'email', action: 'redact' }], default: ['secrets'] });
    const service = new RouterService(engineFor(policyConfig({}, models)), adapters, guardrails);
    server = await GrpcServerHandle.start('127.0.0.1', 0, [routerGrpcBinding(service, createLogger('router', 'silent'))]);
    client = new routerv1.RouterServiceClient(`127.0.0.1:${server.port}`, credentials.createInsecure(), CHANNEL_OPTIONS);
  });
  afterAll(async () => {
    client.close();
    await server.close(0);
  });
  beforeEach(() => {
    chats.length = 0;
    embeds.length = 0;
    speeches.length = 0;
    transcriptions.length = 0;
  });

  const chat = (text: string, guardrails: string[] = []): routerv1.ChatRequest => ({
    context: contextFor({ policy: { excludeProviders: [], guardrails } }),
    request: { model: 'gpt', messages: [{ role: 'user', text, contentIsNull: false, toolCalls: [], extraJson: '' }], tools: [], stop: [], stream: true, logitBias: {}, metadata: {}, modalities: [], extraJson: '' } as unknown as chatv1.ChatRequest,
  });
  const drain = async (request: routerv1.ChatRequest): Promise<void> => {
    for await (const _ of readStream(client.chat(request, acceptBatches(CHUNKS)), undefined, CHUNKS)) {
      // drained
    }
  };

  const context = (guardrails: string[] = []): routerv1.RequestContext => contextFor({ policy: { excludeProviders: [], guardrails } });
  const speech = (input: string): chatv1.SpeechRequest => ({ model: 'tts', input, voice: 'alloy', extraJson: '' });
  const transcription = (prompt: string): chatv1.AudioTranscriptionRequest => ({ model: 'stt', file: Buffer.from('RIFF'), filename: 'a.wav', contentType: 'audio/wav', translate: false, prompt, extraFields: [], durationMs: 0 });

  it('refuses a blocked chat with INVALID_ARGUMENT, its code and param crossing the hop, and an OpenAI 400 at the edge', async () => {
    // The status as grpc-js reports it, before any of the gateway's own reading.
    const raw = await new Promise<ServiceError>((resolve) => {
      const call = client.chat(chat(`use ${KEY}`));
      call.on('data', () => undefined);
      call.on('error', resolve);
    });
    expect(raw.code).toBe(status.INVALID_ARGUMENT);
    const error = fromGrpcError(raw);
    // content_filtered crosses the hop (what the ingress's usage record names); the client's answer is the 400 it always was.
    expect(error).toMatchObject({ kind: 'content_filtered', retryable: false, code: 'content_policy_violation', param: 'messages[0].content' });
    expect(error.message).not.toContain(KEY);
    const openai = toOpenAIError(error);
    expect(openai).toEqual({
      status: 400,
      headers: {},
      body: { error: { message: 'The request was refused by the guardrail rule "secrets": messages[0].content holds content it does not allow. Remove it and try again.', type: 'invalid_request_error', param: 'messages[0].content', code: 'content_policy_violation' } },
    });
    expect(toAnthropicError(error)).toEqual({ status: 400, headers: {}, body: { type: 'error', error: { type: 'invalid_request_error', message: openai.body.error.message } } });
    expect(chats).toEqual([]);
  });

  it('refuses a request naming a rule this router lacks with UNAVAILABLE: a retryable 503 guardrails_unavailable at the edge, the text never sent', async () => {
    const raw = await new Promise<ServiceError>((resolve) => {
      const call = client.chat(chat('reach me at jane@example.com', ['rule-from-a-newer-config']));
      call.on('data', () => undefined);
      call.on('error', resolve);
    });
    expect(raw.code).toBe(status.UNAVAILABLE);
    const error = fromGrpcError(raw);
    expect(error).toMatchObject({ kind: 'unavailable', retryable: true, code: 'guardrails_unavailable' });
    const openai = toOpenAIError(error);
    expect(openai.status).toBe(503);
    expect(openai.body.error).toMatchObject({ type: 'server_error', code: 'guardrails_unavailable', message: expect.stringContaining("guardrail configuration is being updated") });
    expect(openai.body.error.message).not.toContain('jane@example.com');
    expect(toAnthropicError(error)).toMatchObject({ status: 503, body: { error: { type: 'overloaded_error' } } });
    await expect(callUnary(client.embed.bind(client), { context: contextFor({ policy: { excludeProviders: [], guardrails: ['rule-from-a-newer-config'] } }), request: { model: 'emb', texts: ['hi'], tokenInputs: [], extraJson: '' } }, new Metadata())).rejects.toMatchObject({ kind: 'unavailable', code: 'guardrails_unavailable' });
    expect(chats).toEqual([]);
    expect(embeds).toEqual([]);
  });

  it('redacts before the provider call, for chat and embeddings', async () => {
    await drain(chat('reach me at jane@example.com', ['emails']));
    expect(chats.map((r) => r.messages[0]?.text)).toEqual(['reach me at [REDACTED:emails]']);
    await callUnary(client.embed.bind(client), { context: contextFor({ policy: { excludeProviders: [], guardrails: ['emails'] } }), request: { model: 'emb', texts: ['jane@example.com'], tokenInputs: [], extraJson: '' } }, new Metadata());
    expect(embeds.map((r) => r.texts)).toEqual([['[REDACTED:emails]']]);
  });

  it('refuses a speech input or a transcription prompt a block rule matches with an OpenAI 400 naming input or prompt, never the text', async () => {
    const refusedSpeech = await readSpeech(readStream(client.speak({ context: context(), request: speech(`read ${KEY} aloud`) }))).then(
      () => undefined,
      (error: unknown) => GatewayError.from(error),
    );
    expect(refusedSpeech).toMatchObject({ kind: 'content_filtered', code: 'content_policy_violation', param: 'input' });
    if (!refusedSpeech) throw new Error('the speech request was served');
    expect(toOpenAIError(refusedSpeech)).toMatchObject({ status: 400, body: { error: { type: 'invalid_request_error', param: 'input', code: 'content_policy_violation' } } });
    expect(JSON.stringify(toOpenAIError(refusedSpeech))).not.toContain(KEY);
    await expect(callUnary(client.transcribe.bind(client), { context: context(), request: transcription(`key ${KEY}`) }, new Metadata())).rejects.toMatchObject({ kind: 'content_filtered', param: 'prompt' });
    expect(speeches).toEqual([]);
    expect(transcriptions).toEqual([]);
  });

  it('redacts a speech input and a transcription prompt before the adapter call', async () => {
    await readSpeech(readStream(client.speak({ context: context(['emails']), request: speech('write to jane@example.com') })));
    await callUnary(client.transcribe.bind(client), { context: context(['emails']), request: transcription('jane@example.com') }, new Metadata());
    expect(speeches.map((r) => r.input)).toEqual(['write to [REDACTED:emails]']);
    expect(transcriptions.map((r) => r.prompt)).toEqual(['[REDACTED:emails]']);
  });
});
