import type { OutgoingHttpHeaders } from 'node:http';
import { z } from 'zod';
import { type Behaviour, type Fault, type FaultPath, MAX_EMBEDDING_DIMENSIONS } from '../core/behaviour-config';
import { generateEmbedding } from '../core/embedding-generator';
import { countTokens } from '../core/token-counter';
import { deliverFrames } from '../core/stream-pacer';
import type { HttpExchange } from '../http/http-exchange';
import { parseJson } from '../http/http-io';
import { anthropicError, defaultErrorMessage as anthropicErrorMessage, errorTypeForStatus, messageBody, messageFrames } from './anthropic-formats';
import { planMessage } from './anthropic-planner';
import { describeProblem as describeMessagesProblem, messagesRequestSchema } from './anthropic-request-schemas';
import { defaultErrorMessage as googleErrorMessage, generateContentBody, generateContentFrames, googleError, googleStatusFor } from './gemini-formats';
import { planGenerateContent } from './gemini-planner';
import { describeProblem as describeGeminiProblem, generateContentRequestSchema } from './gemini-request-schemas';
import { faultRetryAfterSeconds, faultWithoutAnswer, type SimulatorRuntime, type WireHandler, type WireProtocol } from './wire-protocol';

const JSON_HEADERS: OutgoingHttpHeaders = { 'content-type': 'application/json; charset=UTF-8' };
const GEMINI_SSE_HEADERS: OutgoingHttpHeaders = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' };
const ANTHROPIC_SSE_HEADERS: OutgoingHttpHeaders = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' };

/** The version Claude on Vertex AI takes in the body. */
export const VERTEX_ANTHROPIC_VERSION = 'vertex-2023-10-16';

/** `/v1/projects/{project}/locations/{location}/publishers/{publisher}/models/{model}:{method}` */
const ROUTE = /^\/v1\/projects\/([^/]+)\/locations\/([^/]+)\/publishers\/(google|anthropic)\/models\/([^/:]+):(generateContent|streamGenerateContent|rawPredict|streamRawPredict|predict)$/;

type Publisher = 'google' | 'anthropic';
type Method = 'generateContent' | 'streamGenerateContent' | 'rawPredict' | 'streamRawPredict' | 'predict';

/** Instances one `:predict` call takes; Gemini's embedding model takes one. */
const MAX_INSTANCES = 250;
const TASK_TYPES = ['RETRIEVAL_QUERY', 'RETRIEVAL_DOCUMENT', 'SEMANTIC_SIMILARITY', 'CLASSIFICATION', 'CLUSTERING', 'QUESTION_ANSWERING', 'FACT_VERIFICATION', 'CODE_RETRIEVAL_QUERY'] as const;
const predictRequestSchema = z.strictObject({
  instances: z.array(z.strictObject({ content: z.string(), task_type: z.enum(TASK_TYPES).optional(), title: z.string().optional() })).min(1),
  parameters: z.strictObject({ outputDimensionality: z.int().min(1).optional(), autoTruncate: z.boolean().optional() }).optional(),
});

const GOOGLE_STATUS = /^[A-Z][A-Z_]+$/;

function sendGoogleError(exchange: HttpExchange, httpStatus: number, message: string, status?: string, details?: Record<string, unknown>[], headers: OutgoingHttpHeaders = {}): void {
  exchange.sendJson(httpStatus, googleError(httpStatus, message, status, details), { ...JSON_HEADERS, ...headers });
}

function errorInfo(reason: string): Record<string, unknown>[] {
  return [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason, domain: 'googleapis.com', metadata: { service: 'aiplatform.googleapis.com', method: 'google.cloud.aiplatform.v1.PredictionService.GenerateContent' } }];
}

/**
 * Vertex AI's front end takes an OAuth2 access token only: one the simulated token endpoint or
 * metadata server issued and that has not expired, or the simulator's `apiKey` (a static token).
 * Without a simulator key, any token that is not one of the issued ones that expired is taken.
 */
function authorize(exchange: HttpExchange, runtime: SimulatorRuntime): boolean {
  const header = exchange.req.headers.authorization ?? '';
  const token = /^Bearer (\S+)$/.exec(header)?.[1];
  if (token === undefined) {
    sendGoogleError(
      exchange,
      401,
      'Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.',
      'UNAUTHENTICATED',
      errorInfo('CREDENTIALS_MISSING'),
    );
    return false;
  }
  const issued = runtime.googleTokens.check(token);
  const valid = issued === 'valid' || (issued === 'unknown' && (runtime.apiKey === undefined || token === runtime.apiKey));
  if (valid) return true;
  sendGoogleError(
    exchange,
    401,
    'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.',
    'UNAUTHENTICATED',
    errorInfo(issued === 'expired' ? 'ACCESS_TOKEN_EXPIRED' : 'ACCESS_TOKEN_TYPE_UNSUPPORTED'),
  );
  return false;
}

interface Prepared {
  behaviour: Behaviour;
  body: unknown;
  /** Set only for a fault that acts while the response is written (drop_mid_stream). */
  midResponseFault: Fault | undefined;
}

/** Read body → latency → access token → JSON → fault, as Vertex's front end applies them. Undefined once answered. */
async function prepare(exchange: HttpExchange, runtime: SimulatorRuntime, publisher: Publisher, model: string, method: Method, path: FaultPath): Promise<Prepared | undefined> {
  const behaviour = runtime.behaviour();
  const read = await exchange.readBody();
  if (!read.ok) {
    if (read.reason === 'too_large') sendGoogleError(exchange, 413, 'Request payload size exceeds the limit.', 'INVALID_ARGUMENT');
    return undefined;
  }
  const parsed = parseJson(read.body);
  exchange.observe({ body: parsed.ok ? parsed.value : parsed.raw, model, stream: method.startsWith('stream') });
  if (behaviour.latencyMs > 0 && !(await exchange.cancel.delay(behaviour.latencyMs))) return undefined;
  if (!authorize(exchange, runtime)) return undefined;
  if (!parsed.ok) {
    sendGoogleError(exchange, 400, `Invalid JSON payload received. ${parsed.message}`, 'INVALID_ARGUMENT');
    return undefined;
  }
  const fault = runtime.faults.select({ model, path });
  if (fault !== undefined && fault.kind !== 'drop_mid_stream') {
    await applyFault(exchange, fault, publisher, model, method);
    return undefined;
  }
  return { behaviour, body: parsed.value, midResponseFault: fault };
}

/**
 * Vertex's front end refuses credentials, access, quota and unknown models in Google's shape for
 * every publisher; a Claude model's own failures (overloaded, server errors) come in Anthropic's.
 * A fault's `code` in Google's style (`RESOURCE_EXHAUSTED`) forces Google's shape.
 */
async function applyFault(exchange: HttpExchange, fault: Fault, publisher: Publisher, model: string, method: Method): Promise<void> {
  if (await faultWithoutAnswer(exchange, fault)) return;
  const status = fault.status ?? 500;
  const headers: OutgoingHttpHeaders = {};
  const retryAfter = faultRetryAfterSeconds(fault, status);
  if (retryAfter !== undefined) headers['retry-after'] = String(retryAfter);
  const googleShaped = publisher === 'google' || [401, 403, 404, 429].includes(status) || (fault.code !== undefined && GOOGLE_STATUS.test(fault.code));
  if (googleShaped) {
    // Vertex names the full resource, the caller's project and location included.
    const resource = /^\/v1\/(projects\/[^/]+\/locations\/[^/]+)\//.exec(exchange.pathname)?.[1] ?? '';
    const message = fault.message ?? (status === 404 ? `Publisher Model \`${resource}/publishers/${publisher}/models/${model}\` was not found or your project does not have access to it.` : googleErrorMessage(status, model, method));
    return sendGoogleError(exchange, status, message, fault.code ?? googleStatusFor(status), undefined, headers);
  }
  exchange.sendJson(status, anthropicError(fault.code ?? errorTypeForStatus(status), fault.message ?? anthropicErrorMessage(status, model)), headers);
}

const handleGenerateContent = async (exchange: HttpExchange, runtime: SimulatorRuntime, model: string, method: Method): Promise<void> => {
  const prepared = await prepare(exchange, runtime, 'google', model, method, 'chat');
  if (prepared === undefined) return;
  const parsed = generateContentRequestSchema.safeParse(prepared.body);
  if (!parsed.success) return sendGoogleError(exchange, 400, describeGeminiProblem(parsed.error, 'GenerateContentRequest'), 'INVALID_ARGUMENT');
  const result = planGenerateContent(parsed.data, model, prepared.behaviour, runtime);
  if (!result.ok) return sendGoogleError(exchange, 400, result.message, 'INVALID_ARGUMENT');
  const dropAfterTokens = prepared.midResponseFault ? (prepared.midResponseFault.afterTokens ?? 0) : undefined;
  if (method === 'generateContent') {
    const body = generateContentBody(result.plan);
    if (dropAfterTokens !== undefined) return exchange.sendTruncated(200, JSON_HEADERS, JSON.stringify(body));
    return exchange.sendJson(200, body, JSON_HEADERS);
  }
  if (new URL(exchange.req.url ?? '/', 'http://simulator').searchParams.get('alt') !== 'sse') {
    return sendGoogleError(exchange, 400, 'This simulator serves streamGenerateContent with alt=sse only.', 'INVALID_ARGUMENT');
  }
  if (!exchange.open) return;
  const sink = exchange.startStream(GEMINI_SSE_HEADERS);
  // Vertex AI counts a stream's usage on its last event only, unlike the Gemini API.
  await deliverFrames(generateContentFrames(result.plan, 'last'), { ttftMs: prepared.behaviour.ttftMs, tokensPerSecond: prepared.behaviour.tokensPerSecond, dropAfterTokens }, exchange.cancel, sink);
};

const sendAnthropicError = (exchange: HttpExchange, status: number, type: string, message: string): void => exchange.sendJson(status, anthropicError(type, message));

const handleRawPredict = async (exchange: HttpExchange, runtime: SimulatorRuntime, model: string, method: Method): Promise<void> => {
  const prepared = await prepare(exchange, runtime, 'anthropic', model, method, 'chat');
  if (prepared === undefined) return;
  const record = typeof prepared.body === 'object' && prepared.body !== null && !Array.isArray(prepared.body) ? (prepared.body as Record<string, unknown>) : {};
  const { anthropic_version: version, ...rest } = record;
  if (version !== VERTEX_ANTHROPIC_VERSION) return sendAnthropicError(exchange, 400, 'invalid_request_error', `anthropic_version: Input should be '${VERTEX_ANTHROPIC_VERSION}'`);
  if ('model' in rest) return sendAnthropicError(exchange, 400, 'invalid_request_error', 'model: Extra inputs are not permitted');
  const streamed = method === 'streamRawPredict';
  if ((rest['stream'] === true) !== streamed) return sendAnthropicError(exchange, 400, 'invalid_request_error', `stream: ${method} takes ${streamed ? '"stream": true' : 'no "stream": true'}`);
  const body = { ...rest, model };
  const request = messagesRequestSchema.safeParse(body);
  if (!request.success) return sendAnthropicError(exchange, 400, 'invalid_request_error', describeMessagesProblem(request.error, body));
  const result = planMessage(request.data, prepared.behaviour, runtime);
  if (!result.ok) return sendAnthropicError(exchange, result.problem.status, result.problem.type, result.problem.message);
  const dropAfterTokens = prepared.midResponseFault ? (prepared.midResponseFault.afterTokens ?? 0) : undefined;
  if (!streamed) {
    const answer = messageBody(result.plan);
    if (dropAfterTokens !== undefined) return exchange.sendTruncated(200, JSON_HEADERS, JSON.stringify(answer));
    return exchange.sendJson(200, answer);
  }
  if (!exchange.open) return;
  const sink = exchange.startStream(ANTHROPIC_SSE_HEADERS);
  await deliverFrames(messageFrames(result.plan), { ttftMs: prepared.behaviour.ttftMs, tokensPerSecond: prepared.behaviour.tokensPerSecond, dropAfterTokens }, exchange.cancel, sink);
};

/** Text embeddings (`text-embedding-005`, `gemini-embedding-001`…): `{instances: [{content}]}` → `{predictions: [{embeddings: {values, statistics}}]}`. */
const handlePredict = async (exchange: HttpExchange, runtime: SimulatorRuntime, model: string): Promise<void> => {
  const prepared = await prepare(exchange, runtime, 'google', model, 'predict', 'embeddings');
  if (prepared === undefined) return;
  const parsed = predictRequestSchema.safeParse(prepared.body);
  if (!parsed.success) return sendGoogleError(exchange, 400, `Invalid request: ${z.prettifyError(parsed.error)}`, 'INVALID_ARGUMENT');
  const { instances, parameters } = parsed.data;
  const limit = model.startsWith('gemini-embedding') ? 1 : MAX_INSTANCES;
  if (instances.length > limit) return sendGoogleError(exchange, 400, `The model ${model} takes at most ${limit} instance${limit === 1 ? '' : 's'} per request; ${instances.length} were given.`, 'INVALID_ARGUMENT');
  const dimensions = parameters?.outputDimensionality ?? prepared.behaviour.embeddingDimensions;
  if (dimensions > MAX_EMBEDDING_DIMENSIONS) return sendGoogleError(exchange, 400, `outputDimensionality must be at most ${MAX_EMBEDDING_DIMENSIONS}.`, 'INVALID_ARGUMENT');
  const body = {
    predictions: instances.map((instance) => ({
      embeddings: { values: Array.from(generateEmbedding(runtime.seed, instance.content, dimensions)), statistics: { token_count: countTokens(instance.content), truncated: false } },
    })),
    metadata: { billableCharacterCount: instances.reduce((sum, instance) => sum + instance.content.replace(/\s/g, '').length, 0) },
  };
  if (prepared.midResponseFault !== undefined) return exchange.sendTruncated(200, JSON_HEADERS, JSON.stringify(body));
  exchange.sendJson(200, body, JSON_HEADERS);
};

const handleVertex: WireHandler = async (exchange, runtime) => {
  const match = ROUTE.exec(exchange.pathname);
  const publisher = match?.[3] as Publisher;
  const model = decodeURIComponent(match?.[4] ?? '');
  const method = match?.[5] as Method;
  const served = publisher === 'google' ? method === 'generateContent' || method === 'streamGenerateContent' || method === 'predict' : method === 'rawPredict' || method === 'streamRawPredict';
  if (!served) {
    exchange.req.resume();
    return sendGoogleError(exchange, 400, `Method ${method} is not supported by publisher ${publisher}'s model ${model}.`, 'FAILED_PRECONDITION');
  }
  if (method === 'predict') return handlePredict(exchange, runtime, model);
  if (publisher === 'google') return handleGenerateContent(exchange, runtime, model, method);
  return handleRawPredict(exchange, runtime, model, method);
};

/**
 * Google Cloud Vertex AI's prediction service for Gemini (publisher `google`: `:generateContent`,
 * `:streamGenerateContent?alt=sse`, the Gemini API's JSON; text embeddings through `:predict`) and Claude (publisher `anthropic`:
 * `:rawPredict`, `:streamRawPredict`, the Messages API's JSON with `anthropic_version` in the
 * body), authenticated with `Authorization: Bearer <access token>`.
 */
export const vertexWire: WireProtocol = {
  name: 'vertex',
  route(method, pathname) {
    return method === 'POST' && ROUTE.test(pathname) ? handleVertex : undefined;
  },
};
