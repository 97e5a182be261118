import { vertexBaseUrl, type ProviderConfigOf } from '@openrouter/config';
import type { adapterv1, chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { createAnthropicWireAdapter } from '../anthropic/anthropic.adapter';
import { createGeminiWireAdapter, retryAfterMs } from '../gemini/gemini.adapter';
import { createUpstreamDispatcher, readJsonBody } from '../http-upstream';
import type { ProviderAdapter, ProviderCall, ProviderContext } from '../provider-adapter';
import { postWithAuth } from '../upstream-auth';
import { bearerAuth, secretTokenSource, undiciTokenHttp } from '../access-token';
import { CredentialFile } from '../credential-file';
import { openServiceAccountKeyFile, vertexTokenSource } from './vertex-credentials';
import { embeddingResponse, embedInCalls, reportedTokens } from '../embedding-response';
import { parsePredictResponse, predictBatches } from './vertex-embeddings';
import { vertexClaudeError, vertexGoogleError } from './vertex-errors';

/** The Messages API version Vertex AI takes, in the body where Anthropic's own API has a header. */
export const VERTEX_ANTHROPIC_VERSION = 'vertex-2023-10-16';

export type VertexPublisher = 'google' | 'anthropic';

/** Embedding calls sent at once for a request that needs several. */
const PARALLEL_EMBED_CALLS = 4;

/** The publisher of a model: the configured one, else Anthropic's for `claude-…`, else Google's. */
export function publisherOf(model: string, configured: Readonly<Record<string, VertexPublisher>>): VertexPublisher {
  if (Object.hasOwn(configured, model)) return configured[model] as VertexPublisher;
  return /^claude-/i.test(model) ? 'anthropic' : 'google';
}

/** A path segment; `@` (Claude's version suffix, `claude-sonnet-4-5@20250929`) stays as Google writes it. */
const segment = (value: string): string => encodeURIComponent(value).replace(/%40/g, '@');

/**
 * Google Cloud Vertex AI: Gemini models (publisher `google`) through `:generateContent` and
 * `:streamGenerateContent?alt=sse` in the Gemini wire format, Google's text-embedding models
 * through `:predict`, Claude models (publisher `anthropic`) through `:rawPredict` and
 * `:streamRawPredict` in the Messages wire format, all called with an OAuth2 access token as
 * `Authorization: Bearer`. A token file (`accessTokenFile`) and a service-account key file
 * (`credentialsFile`) are read again when they change, without a restart.
 */
export function createVertexAdapter(id: string, config: ProviderConfigOf<'vertex'>, context: ProviderContext): ProviderAdapter {
  // A token file or a service-account key file is read now (an unreadable one, or a key file that
  // is not a key, stops the adapter here) and again when it changes. The schema allows one source.
  const tokenFile = config.accessTokenFile === undefined ? undefined : CredentialFile.open({ provider: id, key: 'accessTokenFile', path: config.accessTokenFile, checkIntervalMs: config.credentialFileCheckIntervalMs }, context.credentialFiles);
  const keyFile = openServiceAccountKeyFile(id, config, context.credentialFiles);
  // The metadata server answers only from the node's own network: never through a proxy.
  const tokenAgent = createUpstreamDispatcher(context.egress, config.metadataServer === true ? 'none' : config.proxy);
  let tokens;
  try {
    // A private key that is no good stops the adapter here, at start-up.
    tokens = tokenFile ? secretTokenSource(tokenFile) : vertexTokenSource(id, config, { http: undiciTokenHttp(tokenAgent), keyFile });
  } catch (error) {
    tokenFile?.close();
    keyFile?.close();
    void tokenAgent.close();
    throw error;
  }
  const auth = bearerAuth(tokens);
  const base = (config.baseUrl ?? vertexBaseUrl(config.location)).replace(/\/+$/, '');
  const modelUrl = (publisher: VertexPublisher, model: string, method: string): URL =>
    new URL(`${base}/v1/projects/${segment(config.project)}/locations/${segment(config.location)}/publishers/${publisher}/models/${segment(model)}:${method}`);

  const gemini = createGeminiWireAdapter(
    id,
    {
      url: (model, method) => modelUrl('google', model, method),
      headers: { ...config.headers },
      auth,
      timeoutMs: config.timeoutMs,
      proxy: config.proxy,
      parseError: (status, text, retryAfterMs) => vertexGoogleError(status, text, id, retryAfterMs),
    },
    context,
  );
  const claude = createAnthropicWireAdapter(
    id,
    {
      url: (model, stream) => modelUrl('anthropic', model, stream ? 'streamRawPredict' : 'rawPredict'),
      headers: { ...config.headers },
      auth,
      timeoutMs: config.timeoutMs,
      defaultMaxTokens: config.defaultMaxTokens,
      thinking: config.thinking,
      proxy: config.proxy,
      // Claude on Vertex AI takes base64 image sources only: image URLs are fetched here, as for Gemini.
      inlineImageUrls: true,
      // The model is in the URL; the version goes in the body.
      body: ({ model: _model, ...body }) => ({ anthropic_version: VERTEX_ANTHROPIC_VERSION, ...body }),
      parseError: (status, headers, text) => vertexClaudeError(status, headers, text, id),
    },
    context,
  );

  const embedAgent = createUpstreamDispatcher(context.egress, config.proxy);

  async function predict(url: URL, body: unknown, call: ProviderCall<unknown>): Promise<unknown> {
    const response = await postWithAuth(embedAgent, auth, { url, headers: { ...config.headers }, body: JSON.stringify(body), timeoutMs: call.timeoutMs || config.timeoutMs, signal: call.signal, provider: id }, (answer, text) =>
      vertexGoogleError(answer.statusCode, text, id, retryAfterMs(answer.headers)),
    );
    return readJsonBody(response, call.signal, id);
  }

  return {
    chat(call: ProviderCall<chatv1.ChatRequest>): AsyncGenerator<adapterv1.ChatResponse> {
      return publisherOf(call.upstreamModel, config.publishers) === 'anthropic' ? claude.chat(call) : gemini.chat(call);
    },

    async embed(call: ProviderCall<chatv1.EmbeddingRequest>): Promise<chatv1.EmbeddingResponse> {
      const model = call.upstreamModel;
      if (publisherOf(model, config.publishers) === 'anthropic') {
        throw new GatewayError('bad_request', `The model "${call.request.model || model}" does not support embeddings: Anthropic has no embeddings API.`, { param: 'model', code: 'model_not_supported', provider: id });
      }
      const batches = predictBatches(call.request, model);
      const answers = await embedInCalls(
        call.request,
        batches.map((batch) => ({ body: batch, inputs: batch.count })),
        PARALLEL_EMBED_CALLS,
        async (batch) => {
          const json = await predict(modelUrl('google', model, 'predict'), batch.body, call);
          return parsePredictResponse(json, batch.count, id, call.request.dimensions !== undefined);
        },
        (a) => a.tokens,
      );
      return embeddingResponse(call.request, { model, vectors: answers.flatMap((a) => a.vectors), reportedTokens: reportedTokens(answers.map((a) => a.tokens)) }, id);
    },

    async close(): Promise<void> {
      tokenFile?.close();
      keyFile?.close();
      await Promise.all([gemini.close(), claude.close(), embedAgent.close(), tokenAgent.close()]);
    },
  };
}
