import { errors as undiciErrors, type Dispatcher } from 'undici';
import type { ProviderConfigOf } from '@openrouter/config';
import type { adapterv1, chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { createUpstreamDispatcher, readServerSentEvents, transportError } from '../http-upstream';
import type { ProviderAdapter, ProviderCall, ProviderContext } from '../provider-adapter';
import { closingSecrets, CredentialFile } from '../credential-file';
import { postWithAuth, secretAuth, staticAuth, type UpstreamAuth } from '../upstream-auth';
import { embeddingResponse, embedInCalls } from '../embedding-response';
import { batchEmbedBodies, parseBatchEmbedResponse } from './gemini-embeddings';
import { parseGeminiErrorResponse } from './gemini-errors';
import { modelResource, toGeminiRequest } from './gemini-request';
import { fromGeminiResponse } from './gemini-response';
import { GeminiStreamTranslator } from './gemini-stream';
import { countTextTokens } from '../text-tokens';
import { estimatedUsage, estimatePromptTokens } from './gemini-usage';

export type GeminiMethod = 'generateContent' | 'streamGenerateContent' | 'batchEmbedContents';

/** Embedding batches sent at once for a request with more than EMBED_BATCH inputs. */
const PARALLEL_EMBED_CALLS = 4;

export function retryAfterMs(headers: Dispatcher.ResponseData['headers']): number | undefined {
  const raw = headers['retry-after'];
  const value = Array.isArray(raw) ? raw[0] : raw;
  const seconds = Number(value);
  return value !== undefined && Number.isFinite(seconds) && seconds >= 0 ? Math.round(seconds * 1000) : undefined;
}

/** Where and how the Gemini wire format is sent: the Gemini API itself, or Vertex AI. */
export interface GeminiEndpoint {
  /** The URL of a method of a model; `alt=sse` is added for a stream. */
  url(upstreamModel: string, method: GeminiMethod): URL;
  /** Sent on every call, under the credentials. */
  headers: Record<string, string>;
  auth: UpstreamAuth;
  timeoutMs: number;
  /** The provider's `proxy`: a forward proxy's URL, `none`, or unset (the environment's). */
  proxy?: string | undefined;
  /** An HTTP error answer as the canonical error; default: Google's error JSON as the Gemini API sends it. */
  parseError?(status: number, bodyText: string, retryAfterMs: number | undefined): GatewayError;
}

/**
 * Google Gemini (the Generative Language API): chat through `models/{model}:generateContent` and
 * `:streamGenerateContent?alt=sse`, embeddings through `:batchEmbedContents`, authenticated with
 * the `x-goog-api-key` header.
 */
export function createGeminiAdapter(id: string, config: ProviderConfigOf<'gemini'>, context: ProviderContext): ProviderAdapter {
  const base = config.baseUrl.replace(/\/+$/, '');
  // A key in a file is read now (an unreadable one stops the adapter here) and again when it changes.
  const keyFile = config.apiKeyFile === undefined ? undefined : CredentialFile.open({ provider: id, key: 'apiKeyFile', path: config.apiKeyFile, checkIntervalMs: config.credentialFileCheckIntervalMs }, context.credentialFiles);
  const wire = createGeminiWireAdapter(
    id,
    {
      url: (upstreamModel, method) => new URL(`${base}/${modelResource(upstreamModel)}:${method}`),
      headers: { ...config.headers },
      auth: keyFile ? secretAuth(keyFile, (key) => ({ 'x-goog-api-key': key })) : staticAuth(config.apiKey ? { 'x-goog-api-key': config.apiKey } : {}),
      timeoutMs: config.timeoutMs,
      proxy: config.proxy,
    },
    context,
  );
  return closingSecrets(wire, [keyFile]);
}

/** The Gemini wire format (request, answer, stream, errors, embeddings) sent to `endpoint`. */
export function createGeminiWireAdapter(id: string, endpoint: GeminiEndpoint, context: ProviderContext): ProviderAdapter {
  const agent = createUpstreamDispatcher(context.egress, endpoint.proxy);
  const parseError = endpoint.parseError ?? ((status: number, text: string, retryAfter: number | undefined) => parseGeminiErrorResponse(status, text, id, retryAfter));

  function send(upstreamModel: string, method: GeminiMethod, body: unknown, call: ProviderCall<unknown>): Promise<Dispatcher.ResponseData> {
    const url = endpoint.url(upstreamModel, method);
    if (method === 'streamGenerateContent') url.searchParams.set('alt', 'sse');
    return postWithAuth(agent, endpoint.auth, { url, headers: endpoint.headers, body: JSON.stringify(body), timeoutMs: call.timeoutMs || endpoint.timeoutMs, signal: call.signal, provider: id }, (response, text) =>
      parseError(response.statusCode, text, retryAfterMs(response.headers)),
    );
  }

  async function readJson(response: Dispatcher.ResponseData, call: ProviderCall<unknown>): Promise<unknown> {
    try {
      return await response.body.json();
    } catch (error) {
      if (error instanceof SyntaxError) throw new GatewayError('upstream_error', `The provider "${id}" returned a malformed response.`, { provider: id, cause: error });
      if (call.signal.aborted || error instanceof undiciErrors.BodyTimeoutError) throw transportError(error, call.signal, id);
      throw new GatewayError('upstream_error', `The provider "${id}" closed the connection mid-response.`, { provider: id, cause: error });
    }
  }

  return {
    async *chat(call: ProviderCall<chatv1.ChatRequest>): AsyncGenerator<adapterv1.ChatResponse> {
      const request = call.request;
      const { body, answerTool } = await toGeminiRequest(request, context.images.loader({ signal: call.signal }), call.upstreamModel);
      const created = Math.floor(Date.now() / 1000);
      const estimateUsage = (completionText: string): chatv1.Usage => estimatedUsage(estimatePromptTokens(request), countTextTokens(completionText));
      if (!request.stream) {
        const response = await send(call.upstreamModel, 'generateContent', body, call);
        const json = await readJson(response, call);
        yield { completion: fromGeminiResponse(json, { requestId: call.requestId, created, upstreamModel: call.upstreamModel, provider: id, estimateUsage, answerTool }) };
        return;
      }
      const response = await send(call.upstreamModel, 'streamGenerateContent', body, call);
      const translator = new GeminiStreamTranslator({
        requestId: call.requestId,
        created,
        upstreamModel: call.upstreamModel,
        includeUsage: request.streamOptions?.includeUsage === true,
        provider: id,
        estimateUsage,
        answerTool,
      });
      let ended = false;
      try {
        for await (const event of readServerSentEvents(response.body, call.signal, id)) {
          for (const chunk of translator.accept(parseEventJson(event.data, id))) yield { chunk };
        }
        ended = true;
      } catch (error) {
        for (const chunk of translator.usageSoFar()) yield { chunk };
        throw transportError(error, call.signal, id);
      } finally {
        if (!ended) response.body.on('error', () => undefined).destroy();
      }
      // A stream cut before its finish passes on the usage it reported, then fails.
      if (!translator.finished) for (const chunk of translator.usageSoFar()) yield { chunk };
      for (const chunk of translator.end()) yield { chunk };
    },

    async embed(call: ProviderCall<chatv1.EmbeddingRequest>): Promise<chatv1.EmbeddingResponse> {
      const calls = batchEmbedBodies(call.request, modelResource(call.upstreamModel)).map((body) => ({ body, inputs: body.requests.length }));
      const batches = await embedInCalls(
        call.request,
        calls,
        PARALLEL_EMBED_CALLS,
        async (body) => {
          const response = await send(call.upstreamModel, 'batchEmbedContents', body, call);
          return parseBatchEmbedResponse(await readJson(response, call), body.requests.length, id, call.request.dimensions !== undefined);
        },
        () => undefined,
      );
      // Gemini reports no token usage for embeddings: the gateway counts the input itself.
      return embeddingResponse(call.request, { model: call.upstreamModel, vectors: batches.flat(), reportedTokens: undefined }, id);
    },

    async close(): Promise<void> {
      await agent.close();
    },
  };
}

function parseEventJson(data: string, provider: string): unknown {
  try {
    return JSON.parse(data);
  } catch (error) {
    throw new GatewayError('upstream_error', `The provider "${provider}" sent a malformed stream event.`, { provider, cause: error });
  }
}
