import { Sha256 } from '@aws-crypto/sha256-js';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { errors as undiciErrors, type Dispatcher } from 'undici';
import { providerBaseUrl, type ProviderConfigOf } from '@openrouter/config';
import type { adapterv1, chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { createUpstreamDispatcher, postJson, readJsonBody } from '../http-upstream';
import type { ProviderAdapter, ProviderCall, ProviderContext } from '../provider-adapter';
import { CredentialFile, inlineSecret, type Secret } from '../credential-file';
import { sendWithCredentials } from '../upstream-auth';
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
 * signed with SigV4 (service `bedrock`) using the provider's configured credentials; a call whose
 * key Bedrock refuses is signed and sent once more when a credential file now holds another.
 */
export function createBedrockAdapter(id: string, config: ProviderConfigOf<'bedrock'>, context: ProviderContext): ProviderAdapter {
  const credentials = awsCredentials(id, config, context);
  const agent = createUpstreamDispatcher(context.egress, config.proxy);
  const base = providerBaseUrl(config);
  const parseError = (response: Dispatcher.ResponseData, text: string): GatewayError =>
    parseBedrockErrorResponse(response.statusCode, header(response.headers, 'x-amzn-errortype'), text, id, retryAfterMs(response.headers));

  function send(modelId: string, operation: Operation, body: string, call: ProviderCall<unknown>): Promise<Dispatcher.ResponseData> {
    const url = new URL(`${base}/model/${encodeModelId(modelId)}/${operation}`);
    return sendWithCredentials(
      () => Promise.resolve(credentials.current()),
      (used, again) => credentials.refused(used, again),
      async (identity) => {
        // The signature covers exactly the path, host and body that go on the wire.
        const signed = await credentials.signer(identity).sign(
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
        return postJson(agent, { url, headers, body, timeoutMs: call.timeoutMs || config.timeoutMs, signal: call.signal, provider: id });
      },
      parseError,
    );
  }

  // A body cut mid-way is the provider's failure (it was reached and began to answer), never
  // "could not be reached": readJsonBody tells the two apart.
  const readJson = (response: Dispatcher.ResponseData, call: ProviderCall<unknown>): Promise<unknown> => readJsonBody(response, call.signal, id);

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
      credentials.close();
      await agent.close();
    },
  };
}

/** An AWS access key, as SigV4 signs with it. */
interface AwsCredentialIdentity {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** The parts of the access key, each given inline or read from a file. */
const PARTS = ['accessKeyId', 'secretAccessKey', 'sessionToken'] as const;

interface AwsCredentials {
  /** The access key a call made now is signed with; the same object while no part changed. */
  current(): AwsCredentialIdentity;
  /** A signer for `identity`, kept for the identity in use (its signing keys are cached per day). */
  signer(identity: AwsCredentialIdentity): SignatureV4;
  /** The provider refused `used`: the files are read again, and true when the key now differs. */
  refused(used: AwsCredentialIdentity, again?: boolean): Promise<boolean>;
  close(): void;
}

/**
 * The provider's access key, from its configuration or its files (`credentials.accessKeyIdFile`…),
 * read at start-up (an unreadable file stops the adapter here) and again when they change.
 */
function awsCredentials(id: string, config: ProviderConfigOf<'bedrock'>, context: ProviderContext): AwsCredentials {
  const given = config.credentials;
  const secrets: Partial<Record<(typeof PARTS)[number], Secret>> = {};
  try {
    for (const part of PARTS) {
      const file = given[`${part}File`];
      const inline = given[part];
      if (file !== undefined) secrets[part] = CredentialFile.open({ provider: id, key: `credentials.${part}File`, path: file, checkIntervalMs: config.credentialFileCheckIntervalMs }, context.credentialFiles);
      else if (inline !== undefined && inline !== '') secrets[part] = inlineSecret(inline);
    }
  } catch (error) {
    for (const secret of Object.values(secrets)) secret.close();
    throw error;
  }
  let identity: AwsCredentialIdentity | undefined;
  let signing: { identity: AwsCredentialIdentity; signer: SignatureV4 } | undefined;
  const current = (): AwsCredentialIdentity => {
    // The schema requires both parts of the key.
    const accessKeyId = secrets.accessKeyId?.value() ?? '';
    const secretAccessKey = secrets.secretAccessKey?.value() ?? '';
    const sessionToken = secrets.sessionToken?.value();
    if (identity?.accessKeyId !== accessKeyId || identity.secretAccessKey !== secretAccessKey || identity.sessionToken !== sessionToken) {
      identity = sessionToken === undefined ? { accessKeyId, secretAccessKey } : { accessKeyId, secretAccessKey, sessionToken };
    }
    return identity;
  };
  return {
    current,
    signer(used) {
      if (signing?.identity !== used) signing = { identity: used, signer: new SignatureV4({ service: 'bedrock', region: config.region, credentials: used, sha256: Sha256 }) };
      return signing.signer;
    },
    async refused(used, again) {
      if (again === true) return false;
      await Promise.all(Object.values(secrets).map((secret) => secret.reread()));
      return current() !== used;
    },
    close() {
      for (const secret of Object.values(secrets)) secret.close();
    },
  };
}

function streamError(error: unknown, signal: AbortSignal, provider: string): GatewayError {
  if (error instanceof GatewayError) return error;
  if (signal.aborted) return new GatewayError('cancelled', 'The request was cancelled.', { provider, cause: error });
  if (error instanceof undiciErrors.BodyTimeoutError) return new GatewayError('timeout', `The provider "${provider}" stalled mid-stream.`, { provider, cause: error });
  return new GatewayError('upstream_error', `The provider "${provider}" closed the stream unexpectedly.`, { provider, cause: error });
}
