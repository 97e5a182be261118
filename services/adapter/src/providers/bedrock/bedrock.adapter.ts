import { Sha256 } from '@aws-crypto/sha256-js';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { errors as undiciErrors, type Dispatcher } from 'undici';
import { providerBaseUrl, type ProviderConfigOf } from '@openrouter/config';
import type { adapterv1, chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { createUpstreamDispatcher, postJson, transportError } from '../http-upstream';
import type { ProviderAdapter, ProviderCall, ProviderContext } from '../provider-adapter';
import { embeddingResponse, embedInCalls, reportedTokens } from '../embedding-response';
import { cohereBodies, COHERE_BATCH, embeddingFamily, parseCohereResponse, parseTitanResponse, titanBodies } from './bedrock-embeddings';
import { parseBedrockErrorResponse } from './bedrock-errors';
import { toConverseRequest } from './bedrock-request';
import { fromConverseResponse } from './bedrock-response';
import { ConverseStreamTranslator, decodeStreamMessage, eventStreamMessages } from './bedrock-stream';

/** Bedrock's documented per-image limit for Converse. */
const MAX_IMAGE_BYTES = 3_750_000;
/** Embedding calls run at once for a request that needs several (Titan takes one text a call, Cohere 96). */
const PARALLEL_EMBED_CALLS = 4;
const EVENT_STREAM = 'application/vnd.amazon.eventstream';

type Operation = 'converse' | 'converse-stream' | 'invoke';

/** Like encodeURIComponent, plus the characters it leaves alone that AWS's path encoding escapes. */
export function encodeModelId(modelId: string): string {
  return encodeURIComponent(modelId).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function header(headers: Dispatcher.ResponseData['headers'], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function retryAfterMs(headers: Dispatcher.ResponseData['headers']): number | undefined {
  const seconds = Number(header(headers, 'retry-after'));
  return header(headers, 'retry-after') !== undefined && Number.isFinite(seconds) && seconds >= 0 ? Math.round(seconds * 1000) : undefined;
}

/**
 * AWS Bedrock Runtime: chat through Converse / ConverseStream (one request shape for every
 * model family on Bedrock), embeddings through InvokeModel for Titan and Cohere. Calls are
 * signed with SigV4 (service `bedrock`) using the provider's configured credentials.
 */
export function createBedrockAdapter(id: string, config: ProviderConfigOf<'bedrock'>, context: ProviderContext): ProviderAdapter {
  const agent = createUpstreamDispatcher(context.egress, config.proxy);
  const base = providerBaseUrl(config);
  const signer = new SignatureV4({ service: 'bedrock', region: config.region, credentials: config.credentials, sha256: Sha256 });

  async function send(modelId: string, operation: Operation, body: string, call: ProviderCall<unknown>): Promise<Dispatcher.ResponseData> {
    const url = new URL(`${base}/model/${encodeModelId(modelId)}/${operation}`);
    // The signature covers exactly the path, host and body that go on the wire.
    const signed = await signer.sign(
      new HttpRequest({
        method: 'POST',
        protocol: url.protocol,
        hostname: url.hostname,
        port: url.port ? Number(url.port) : undefined,
        path: url.pathname,
        headers: { host: url.host, 'content-type': 'application/json' },
        body,
      }),
    );
    const headers: Record<string, string> = { ...config.headers, accept: operation === 'converse-stream' ? EVENT_STREAM : 'application/json' };
    for (const [name, value] of Object.entries(signed.headers)) headers[name] = value;
    const response = await postJson(agent, { url, headers, body, timeoutMs: call.timeoutMs || config.timeoutMs, signal: call.signal, provider: id });
    if (response.statusCode >= 400) {
      const text = await response.body.text().catch(() => '');
      throw parseBedrockErrorResponse(response.statusCode, header(response.headers, 'x-amzn-errortype'), text, id, retryAfterMs(response.headers));
    }
    return response;
  }

  async function readJson(response: Dispatcher.ResponseData, call: ProviderCall<unknown>): Promise<unknown> {
    try {
      return await response.body.json();
    } catch (error) {
      if (error instanceof SyntaxError) throw new GatewayError('upstream_error', `The provider "${id}" returned a malformed response.`, { provider: id, cause: error });
      throw transportError(error, call.signal, id);
    }
  }

  async function invokeJson(modelId: string, body: Record<string, unknown>, call: ProviderCall<unknown>): Promise<{ json: unknown; inputTokens: number | undefined }> {
    const response = await send(modelId, 'invoke', JSON.stringify(body), call);
    const counted = Number(header(response.headers, 'x-amzn-bedrock-input-token-count'));
    return { json: await readJson(response, call), inputTokens: Number.isFinite(counted) ? counted : undefined };
  }

  function responseId(response: Dispatcher.ResponseData, call: ProviderCall<unknown>): string {
    return `chatcmpl-${header(response.headers, 'x-amzn-requestid') ?? call.requestId}`;
  }

  return {
    async *chat(call: ProviderCall<chatv1.ChatRequest>): AsyncGenerator<adapterv1.ChatResponse> {
      const loadImage = context.images.loader({ signal: call.signal, maxBytes: MAX_IMAGE_BYTES });
      const translation = await toConverseRequest(call.request, loadImage, call.upstreamModel, { thinking: config.thinking, claudeModels: config.claudeModels });
      const body = JSON.stringify(translation.body);
      const created = Math.floor(Date.now() / 1000);
      const stopSequences = translation.body.inferenceConfig?.stopSequences ?? [];
      if (!call.request.stream) {
        const response = await send(call.upstreamModel, 'converse', body, call);
        const ctx = { id: responseId(response, call), created, model: call.upstreamModel, jsonTool: translation.jsonTool, provider: id, stopSequences };
        yield { completion: fromConverseResponse(await readJson(response, call), ctx) };
        return;
      }
      const response = await send(call.upstreamModel, 'converse-stream', body, call);
      const translator = new ConverseStreamTranslator({
        id: responseId(response, call),
        created,
        model: call.upstreamModel,
        includeUsage: call.request.streamOptions?.includeUsage === true,
        jsonTool: translation.jsonTool,
        provider: id,
        stopSequences,
      });
      let ended = false;
      try {
        for await (const frame of eventStreamMessages(response.body, id)) {
          for (const chunk of translator.accept(decodeStreamMessage(frame, id))) yield { chunk };
        }
        ended = true;
      } catch (error) {
        throw streamError(error, call.signal, id);
      } finally {
        if (!ended) response.body.destroy();
      }
      if (!translator.finished) throw new GatewayError('upstream_error', `The provider "${id}" ended the stream before it finished.`, { provider: id });
    },

    async embed(call: ProviderCall<chatv1.EmbeddingRequest>): Promise<chatv1.EmbeddingResponse> {
      const model = call.upstreamModel;
      if (embeddingFamily(model) === 'titan') {
        const calls = titanBodies(call.request, model).map((body) => ({ body, inputs: 1 }));
        const answers = await embedInCalls(
          call.request,
          calls,
          PARALLEL_EMBED_CALLS,
          async (body) => {
            const { json, inputTokens } = await invokeJson(model, body, call);
            return parseTitanResponse(json, inputTokens, id);
          },
          (a) => a.tokens,
        );
        return embeddingResponse(call.request, { model, vectors: answers.map((a) => a.vector), reportedTokens: reportedTokens(answers.map((a) => a.tokens)) }, id);
      }
      const calls = cohereBodies(call.request, model).map((body, batch) => ({ body, inputs: Math.min(COHERE_BATCH, call.request.texts.length - batch * COHERE_BATCH) }));
      const answers = await embedInCalls(
        call.request,
        calls,
        PARALLEL_EMBED_CALLS,
        async (body, batch) => {
          const { json, inputTokens } = await invokeJson(model, body, call);
          return { vectors: parseCohereResponse(json, calls[batch]?.inputs ?? 0, id), tokens: inputTokens };
        },
        (a) => a.tokens,
      );
      return embeddingResponse(call.request, { model, vectors: answers.flatMap((a) => a.vectors), reportedTokens: reportedTokens(answers.map((a) => a.tokens)) }, id);
    },

    async close(): Promise<void> {
      await agent.close();
    },
  };
}

function streamError(error: unknown, signal: AbortSignal, provider: string): GatewayError {
  if (error instanceof GatewayError) return error;
  if (signal.aborted) return new GatewayError('cancelled', 'The request was cancelled.', { provider, cause: error });
  if (error instanceof undiciErrors.BodyTimeoutError) return new GatewayError('timeout', `The provider "${provider}" stalled mid-stream.`, { provider, cause: error });
  return new GatewayError('upstream_error', `The provider "${provider}" closed the stream unexpectedly.`, { provider, cause: error });
}
