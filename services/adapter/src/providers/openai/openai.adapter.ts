import type { Dispatcher } from 'undici';
import type { ProviderConfigOf } from '@openrouter/config';
import type { adapterv1, chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import {
  chunkCarriesAnswer,
  parseOpenAIChunk,
  parseOpenAICompletion,
  parseOpenAIEmbeddingResponse,
  parseOpenAIErrorResponse,
  parseOpenAIImageGenerationResponse,
  parseOpenAIModerationResponse,
  parseOpenAIStreamError,
  toOpenAIChatBody,
  toOpenAIEmbeddingBody,
  toOpenAIImageGenerationBody,
  toOpenAIModerationBody,
} from '@openrouter/openai-wire';
import { MAX_AUDIO_ANSWER_BYTES, speechResponse, transcriptionResponse } from '../audio-response';
import { embeddingResponse } from '../embedding-response';
import { imageGenerationResponse } from '../image-generation-response';
import { moderationResponse } from '../moderation-response';
import { closingSecrets, CredentialFile } from '../credential-file';
import { createUpstreamDispatcher, discardRest, type Egress, headerText, readBodyBounded, readBodyPieces, readJsonBody, readServerSentEvents } from '../http-upstream';
import type { ProviderAdapter, ProviderCall, ProviderContext } from '../provider-adapter';
import { postFormWithAuth, postWithAuth, secretAuth, staticAuth, type UpstreamAuth } from '../upstream-auth';
import { type AudioEndpoint, answersJson, parseOpenAITranscript, SPEECH_CONTENT_TYPES, toOpenAISpeechBody, toOpenAITranscriptionForm } from './openai-audio';
import { type ImagesEndpoint, providerImageFormat, toOpenAIImageEditForm } from './openai-images';
import { StreamUsage } from './openai-stream';

/** Where an OpenAI-style server takes calls for one upstream model, and how it is authenticated. */
export interface OpenAIEndpoints {
  chatUrl(upstreamModel: string): URL;
  embeddingsUrl(upstreamModel: string): URL;
  /** Where the server takes moderations; unset: it has no Moderations API (Azure OpenAI), and the adapter offers none. */
  moderationsUrl?: ((upstreamModel: string) => URL) | undefined;
  /** Where the server takes image generations and edits; unset: it has no Images API, and the adapter offers none. */
  imagesUrl?: ((upstreamModel: string, endpoint: ImagesEndpoint) => URL) | undefined;
  /** Where the server takes transcriptions, translations and speech; unset: it has no Audio API, and the adapter offers none. */
  audioUrl?: ((upstreamModel: string, endpoint: AudioEndpoint) => URL) | undefined;
  headers: Record<string, string>;
  timeoutMs: number;
  /** The parameter the server takes an output limit in; undefined: the limits go as the client sent them. */
  outputLimit: 'max_tokens' | 'max_completion_tokens' | undefined;
  /** Top-level parameters never sent (the provider's `dropParams`). */
  dropParams: readonly string[];
  /** The provider's `proxy`: a forward proxy's URL, `none`, or unset (the environment's). */
  proxy?: string | undefined;
  /** Credentials taken per call (a key file's, Azure's Entra ID tokens), laid over `headers`; unset: `headers` carry them. */
  auth?: UpstreamAuth | undefined;
}

/**
 * OpenAI and every server that speaks its API (Mistral, Groq, Together, DeepSeek, vLLM, Ollama…):
 * a base URL, a bearer key and optional extra headers.
 */
export function createOpenAIAdapter(id: string, config: ProviderConfigOf<'openai'>, context?: ProviderContext): ProviderAdapter {
  const base = config.baseUrl.replace(/\/+$/, '');
  const chatUrl = new URL(`${base}/chat/completions`);
  const embeddingsUrl = new URL(`${base}/embeddings`);
  const moderationsUrl = new URL(`${base}/moderations`);
  const imagesUrls: Readonly<Record<ImagesEndpoint, URL>> = {
    generations: new URL(`${base}/images/generations`),
    edits: new URL(`${base}/images/edits`),
  };
  const audioUrls: Readonly<Record<AudioEndpoint, URL>> = {
    transcriptions: new URL(`${base}/audio/transcriptions`),
    translations: new URL(`${base}/audio/translations`),
    speech: new URL(`${base}/audio/speech`),
  };
  const headers: Record<string, string> = { ...config.headers };
  // A key in a file is read now (an unreadable one stops the adapter here) and again when it changes.
  const keyFile = config.apiKeyFile === undefined ? undefined : CredentialFile.open({ provider: id, key: 'apiKeyFile', path: config.apiKeyFile, checkIntervalMs: config.credentialFileCheckIntervalMs }, context?.credentialFiles);
  if (keyFile === undefined && config.apiKey) headers['authorization'] = `Bearer ${config.apiKey}`;
  const wire = createOpenAIWireAdapter(
    id,
    {
      chatUrl: () => chatUrl,
      embeddingsUrl: () => embeddingsUrl,
      moderationsUrl: () => moderationsUrl,
      imagesUrl: (_upstreamModel, endpoint) => imagesUrls[endpoint],
      audioUrl: (_upstreamModel, endpoint) => audioUrls[endpoint],
      headers,
      auth: keyFile && secretAuth(keyFile, (key) => ({ authorization: `Bearer ${key}` })),
      timeoutMs: config.timeoutMs,
      outputLimit: config.outputLimit,
      dropParams: config.dropParams,
      proxy: config.proxy,
    },
    context?.egress,
  );
  return closingSecrets(wire, [keyFile]);
}

/** The credentials of an endpoint whose `headers` carry them (or that takes none). */
const NO_AUTH = staticAuth({});

/** The OpenAI wire format over any endpoint layout (OpenAI's own, Azure's deployments…). */
export function createOpenAIWireAdapter(id: string, endpoints: OpenAIEndpoints, egress?: Egress): ProviderAdapter {
  const agent = createUpstreamDispatcher(egress, endpoints.proxy);
  const { headers } = endpoints;
  const auth = endpoints.auth ?? NO_AUTH;
  const parseError = (response: Dispatcher.ResponseData, text: string): GatewayError =>
    parseOpenAIErrorResponse(response.statusCode, headerValue(response.headers['retry-after']), text, id, headerValue(response.headers['retry-after-ms']));

  function post(url: URL, body: Record<string, unknown>, call: ProviderCall<unknown>): Promise<Dispatcher.ResponseData> {
    return postWithAuth(agent, auth, { url, headers, body: JSON.stringify(body), timeoutMs: call.timeoutMs || endpoints.timeoutMs, signal: call.signal, provider: id }, parseError);
  }

  // A body cut mid-way is the provider's failure (it was reached and began to answer), never
  // "could not be reached": readJsonBody tells the two apart.
  const readJson = (response: Dispatcher.ResponseData, call: ProviderCall<unknown>): Promise<unknown> => readJsonBody(response, call.signal, id);

  const adapter: ProviderAdapter = {
    async *chat(call: ProviderCall<chatv1.ChatRequest>): AsyncGenerator<adapterv1.ChatResponse> {
      const body = withoutNullParams(toOpenAIChatBody(call.request, call.upstreamModel, { outputLimit: endpoints.outputLimit, dropParams: endpoints.dropParams }));
      const response = await post(endpoints.chatUrl(call.upstreamModel), body, call);
      if (!call.request.stream) {
        yield { completion: parseOpenAICompletion(await readJson(response, call)) };
        return;
      }
      let done = false;
      let answered = false;
      let failed = false;
      let failure: unknown;
      const usage = new StreamUsage();
      try {
        for await (const event of readServerSentEvents(response.body, call.signal, id)) {
          if (event.data === '[DONE]') {
            done = true;
            break;
          }
          const json = parseEventJson(event.data, id);
          if (isErrorEvent(json)) throw parseOpenAIStreamError(event.data, id);
          const chunk = usage.accept(parseOpenAIChunk(json));
          if (chunk) {
            // The router's own test of a begun answer (reasoning and refusal deltas, logprobs count):
            // had they disagreed, a stream of reasoning cut before its text would be committed by
            // the router without the usage the provider billed for it.
            answered ||= chunkCarriesAnswer(chunk);
            yield { chunk };
          }
        }
      } catch (error) {
        failed = true;
        failure = error;
      } finally {
        if (done) discardRest(response.body);
        // A body torn down may still emit an error (the socket's reset) with no one listening.
        else response.body.on('error', () => undefined).destroy();
      }
      // The usage reported so far is what the provider bills: a stream that failed once its answer
      // had begun (an error event, a reset or stalled connection, a body ended before [DONE]) passes
      // it on, then fails. Before the answer began the request fails over, and a usage chunk would
      // commit it to this provider.
      const last = done || answered ? usage.end() : undefined;
      if (last) yield { chunk: last };
      if (failed) throw failure;
      if (!done) throw new GatewayError('upstream_error', `The provider "${id}" ended the stream before it finished.`, { provider: id });
    },

    async embed(call: ProviderCall<chatv1.EmbeddingRequest>): Promise<chatv1.EmbeddingResponse> {
      const response = await post(endpoints.embeddingsUrl(call.upstreamModel), withoutNullParams(toOpenAIEmbeddingBody(call.request, call.upstreamModel, { dropParams: endpoints.dropParams })), call);
      const answer = parseOpenAIEmbeddingResponse(await readJson(response, call));
      return embeddingResponse(call.request, { model: answer.model, vectors: answer.data.map((d) => d.vectorF32le), reportedTokens: answer.usage && (answer.usage.promptTokens || answer.usage.totalTokens) }, id);
    },

    async close(): Promise<void> {
      await agent.close();
    },
  };
  // Moderations only where the server has the endpoint: a provider without one refuses them before any call.
  const { moderationsUrl } = endpoints;
  if (moderationsUrl !== undefined) {
    adapter.moderate = async (call: ProviderCall<chatv1.ModerationRequest>): Promise<chatv1.ModerationResponse> => {
      const body = withoutNullParams(toOpenAIModerationBody(call.request, call.upstreamModel, { dropParams: endpoints.dropParams }));
      const response = await post(moderationsUrl(call.upstreamModel), body, call);
      return moderationResponse(call.request, parseOpenAIModerationResponse(await readJson(response, call)), call.requestId, id);
    };
  }
  // Image generation and edits likewise: a request with images is an edit, sent as a multipart form
  // and answered as a generation is. A call takes as long as the provider's `timeoutMs` allows (GPT
  // Image may work a minute or two before it answers): no shorter limit applies.
  const { imagesUrl } = endpoints;
  if (imagesUrl !== undefined) {
    adapter.generateImages = async (call: ProviderCall<chatv1.ImageGenerationRequest>): Promise<chatv1.ImageGenerationResponse> => {
      const { request, upstreamModel } = call;
      let response: Dispatcher.ResponseData;
      if (request.images.length > 0) {
        const form = toOpenAIImageEditForm(request, upstreamModel, { dropParams: endpoints.dropParams });
        response = await postFormWithAuth(
          agent,
          auth,
          { url: imagesUrl(upstreamModel, 'edits'), headers, form, timeoutMs: call.timeoutMs || endpoints.timeoutMs, signal: call.signal, provider: id },
          parseError,
        );
      } else {
        const body = withoutNullParams(toOpenAIImageGenerationBody(request, upstreamModel, { dropParams: endpoints.dropParams }));
        const format = providerImageFormat(request.responseFormat, upstreamModel);
        if (format === undefined) delete body['response_format'];
        response = await post(imagesUrl(upstreamModel, 'generations'), body, call);
      }
      return imageGenerationResponse(request, parseOpenAIImageGenerationResponse(await readJson(response, call)), id);
    };
  }
  // The Audio API likewise: transcriptions and translations as multipart forms, speech as JSON
  // answered with the audio's bytes.
  const { audioUrl } = endpoints;
  if (audioUrl !== undefined) {
    adapter.transcribe = async (call: ProviderCall<chatv1.AudioTranscriptionRequest>): Promise<chatv1.AudioTranscriptionResponse> => {
      const { request } = call;
      const url = audioUrl(call.upstreamModel, request.translate ? 'translations' : 'transcriptions');
      const response = await postFormWithAuth(
        agent,
        auth,
        { url, headers, form: () => toOpenAITranscriptionForm(request, call.upstreamModel, { dropParams: endpoints.dropParams }), timeoutMs: call.timeoutMs || endpoints.timeoutMs, signal: call.signal, provider: id },
        parseError,
      );
      const contentType = headerText(response.headers['content-type']);
      const body = (await readBodyBounded(response, MAX_AUDIO_ANSWER_BYTES, call.signal, id)).toString('utf8');
      const json = answersJson(request.responseFormat, contentType) ? parseOpenAITranscript(body, id) : undefined;
      return transcriptionResponse(request, { body, json }, id);
    };
    // Speech streams: each piece of the provider's audio goes on as it arrives (the bound counted
    // over the whole body). A credential retry happens only before the answer's first byte, and the
    // call's timeout bounds the wait for the answer and each stall in its body, as on a chat stream.
    adapter.speak = async function* speak(call: ProviderCall<chatv1.SpeechRequest>): AsyncGenerator<chatv1.SpeechResponse> {
      const body = withoutNullParams(toOpenAISpeechBody(call.request, call.upstreamModel, { dropParams: endpoints.dropParams }));
      const response = await postWithAuth(
        agent,
        auth,
        { url: audioUrl(call.upstreamModel, 'speech'), headers: { accept: '*/*', ...headers }, body: JSON.stringify(body), timeoutMs: call.timeoutMs || endpoints.timeoutMs, signal: call.signal, provider: id },
        parseError,
      );
      const fallbackType = SPEECH_CONTENT_TYPES[call.request.responseFormat ?? 'mp3'] ?? 'application/octet-stream';
      try {
        yield* speechResponse(call.request, readBodyPieces(response, MAX_AUDIO_ANSWER_BYTES, call.signal, id), headerText(response.headers['content-type']), fallbackType, id);
      } finally {
        // An answer refused before it was read (not audio), or a caller that stopped: the provider's request ends here.
        if (!response.body.readableEnded) response.body.on('error', () => undefined).destroy();
      }
    };
  }
  return adapter;
}

/**
 * The body built for a call, without its top-level parameters sent as null. The gateway reads a
 * null parameter as not given; OpenAI's reference types only some parameters as nullable
 * (`temperature`, `stop`…), and a server that validates against it refuses null for the others
 * (`tools`, `tool_choice`…). Left out, a parameter means "not given" on every server. Nulls inside
 * messages and tools are the client's content and stay. docs/providers/openai.md
 */
function withoutNullParams(body: Record<string, unknown>): Record<string, unknown> {
  for (const key of Object.keys(body)) if (body[key] === null) delete body[key];
  return body;
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function parseEventJson(data: string, provider: string): unknown {
  try {
    return JSON.parse(data);
  } catch (error) {
    throw new GatewayError('upstream_error', `The provider "${provider}" sent a malformed stream event.`, { provider, cause: error });
  }
}

function isErrorEvent(json: unknown): boolean {
  return typeof json === 'object' && json !== null && 'error' in json && !('choices' in json);
}
