import type { Dispatcher } from 'undici';
import type { ProviderConfigOf } from '@openrouter/config';
import type { adapterv1, chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import type { ThinkingStyle } from '../claude-thinking';
import { createUpstreamDispatcher, discardRest, readJsonBody, readServerSentEvents } from '../http-upstream';
import type { ProviderAdapter, ProviderCall, ProviderContext } from '../provider-adapter';
import { closingSecrets, CredentialFile } from '../credential-file';
import { postWithAuth, secretAuth, staticAuth, type UpstreamAuth } from '../upstream-auth';
import { parseAnthropicErrorResponse, type ErrorResponseHeaders } from './anthropic-errors';
import { toAnthropicRequest, type AnthropicMessagesBody } from './anthropic-request';
import { parseAnthropicMessage } from './anthropic-response';
import { AnthropicStreamTranslator } from './anthropic-stream';

/** Where the Messages API lives under a base URL given with or without its `/v1`. */
export function messagesUrl(baseUrl: string): URL {
  const base = baseUrl.replace(/\/+$/, '');
  return new URL(base.endsWith('/v1') ? `${base}/messages` : `${base}/v1/messages`);
}

/** Where and how the Messages wire format is sent: Anthropic's API itself, or Vertex AI. */
export interface AnthropicEndpoint {
  /** The URL of a call to a model, streamed or not. */
  url(upstreamModel: string, stream: boolean): URL;
  /** Sent on every call, under the credentials. */
  headers: Record<string, string>;
  auth: UpstreamAuth;
  timeoutMs: number;
  defaultMaxTokens: number;
  thinking: ThinkingStyle;
  /** The provider's `proxy`: a forward proxy's URL, `none`, or unset (the environment's). */
  proxy?: string | undefined;
  /** Fetch every image URL and send it as base64, for an endpoint that takes no `url` image sources. */
  inlineImageUrls?: boolean;
  /** The body as the endpoint takes it; default: the Messages API's own. */
  body?(body: AnthropicMessagesBody): unknown;
  /** An HTTP error answer as the canonical error; default: Anthropic's error JSON. */
  parseError?(status: number, headers: ErrorResponseHeaders, bodyText: string): GatewayError;
}

/**
 * Anthropic's Messages API (`POST /v1/messages`), authenticated with `x-api-key` and pinned to
 * the configured `anthropic-version`. Anthropic has no embeddings API.
 */
export function createAnthropicAdapter(id: string, config: ProviderConfigOf<'anthropic'>, context: ProviderContext): ProviderAdapter {
  const url = messagesUrl(config.baseUrl);
  // A key in a file is read now (an unreadable one stops the adapter here) and again when it changes.
  const keyFile = config.apiKeyFile === undefined ? undefined : CredentialFile.open({ provider: id, key: 'apiKeyFile', path: config.apiKeyFile, checkIntervalMs: config.credentialFileCheckIntervalMs }, context.credentialFiles);
  const wire = createAnthropicWireAdapter(
    id,
    {
      url: () => url,
      headers: { ...config.headers, 'anthropic-version': config.version },
      auth: keyFile ? secretAuth(keyFile, (key) => ({ 'x-api-key': key })) : staticAuth(config.apiKey ? { 'x-api-key': config.apiKey } : {}),
      timeoutMs: config.timeoutMs,
      defaultMaxTokens: config.defaultMaxTokens,
      thinking: config.thinking,
      proxy: config.proxy,
    },
    context,
  );
  return closingSecrets(wire, [keyFile]);
}

/** The Messages wire format (request, answer, stream, errors) sent to `endpoint`. */
export function createAnthropicWireAdapter(id: string, endpoint: AnthropicEndpoint, context: ProviderContext): ProviderAdapter {
  const agent = createUpstreamDispatcher(context.egress, endpoint.proxy);
  const parseError = endpoint.parseError ?? ((status: number, headers: ErrorResponseHeaders, text: string) => parseAnthropicErrorResponse(status, headers, text, id));

  function post(upstreamModel: string, body: AnthropicMessagesBody, call: ProviderCall<unknown>): Promise<Dispatcher.ResponseData> {
    const url = endpoint.url(upstreamModel, body.stream === true);
    const sent = endpoint.body ? endpoint.body(body) : body;
    return postWithAuth(agent, endpoint.auth, { url, headers: endpoint.headers, body: JSON.stringify(sent), timeoutMs: call.timeoutMs || endpoint.timeoutMs, signal: call.signal, provider: id }, (response, text) =>
      parseError(response.statusCode, { retryAfter: headerValue(response.headers['retry-after']) }, text),
    );
  }

  return {
    async *chat(call: ProviderCall<chatv1.ChatRequest>): AsyncGenerator<adapterv1.ChatResponse> {
      const { body, responseTool } = await toAnthropicRequest(call.request, call.upstreamModel, { defaultMaxTokens: endpoint.defaultMaxTokens, thinking: endpoint.thinking, inlineImageUrls: endpoint.inlineImageUrls, loadImage: context.images.loader({ signal: call.signal }) });
      const response = await post(call.upstreamModel, body, call);
      if (!call.request.stream) {
        yield { completion: parseAnthropicMessage(await readJsonBody(response, call.signal, id), { responseTool, provider: id }) };
        return;
      }
      const translator = new AnthropicStreamTranslator({ responseTool, includeUsage: call.request.streamOptions?.includeUsage === true, provider: id });
      let failed = false;
      let failure: unknown;
      try {
        for await (const event of readServerSentEvents(response.body, call.signal, id)) {
          for (const chunk of translator.accept(event.data)) yield { chunk };
          if (translator.complete) break;
        }
      } catch (error) {
        failed = true;
        failure = error;
      } finally {
        if (translator.complete) discardRest(response.body);
        // A body torn down may still emit an error (the socket's reset) with no one listening.
        else response.body.on('error', () => undefined).destroy();
      }
      if (!failed && translator.complete) return;
      // A stream that failed (an error event, a malformed event, a cut connection) once its answer
      // had begun passes on the usage Anthropic bills for it, then fails.
      for (const chunk of translator.usageSoFar()) yield { chunk };
      throw failed ? failure : new GatewayError('upstream_error', `The provider "${id}" ended the stream before it finished.`, { provider: id });
    },

    async embed(call: ProviderCall<chatv1.EmbeddingRequest>): Promise<chatv1.EmbeddingResponse> {
      throw new GatewayError('bad_request', `The model "${call.request.model || call.upstreamModel}" does not support embeddings: Anthropic has no embeddings API.`, {
        param: 'model',
        code: 'model_not_supported',
        provider: id,
      });
    },

    async close(): Promise<void> {
      await agent.close();
    },
  };
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
