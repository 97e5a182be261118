import type { OutgoingHttpHeaders } from 'node:http';
import { type Behaviour, type Fault, type FaultPath, MAX_EMBEDDING_DIMENSIONS } from '../core/behaviour-config';
import { generateEmbedding } from '../core/embedding-generator';
import { deliverFrames } from '../core/stream-pacer';
import type { HttpExchange } from '../http/http-exchange';
import { parseJson } from '../http/http-io';
import { apiKeyInvalidDetails, defaultErrorMessage, generateContentBody, generateContentFrames, googleError, googleStatusFor, retryInfo } from './gemini-formats';
import { planGenerateContent } from './gemini-planner';
import {
  batchEmbedContentsRequestSchema,
  describeProblem,
  type EmbedContentRequest,
  embedContentRequestSchema,
  generateContentRequestSchema,
} from './gemini-request-schemas';
import { faultRetryAfterSeconds, faultWithoutAnswer, type SimulatorRuntime, type WireHandler, type WireProtocol } from './wire-protocol';

const JSON_HEADERS: OutgoingHttpHeaders = { 'content-type': 'application/json; charset=UTF-8' };
const SSE_HEADERS: OutgoingHttpHeaders = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' };

/** `/v1beta/models/gemini-2.5-flash:generateContent` → the model and the method. */
const ROUTE = /^\/(v1beta|v1)\/models\/([^/:]+):(generateContent|streamGenerateContent|embedContent|batchEmbedContents)$/;

type Method = 'generateContent' | 'streamGenerateContent' | 'embedContent' | 'batchEmbedContents';

interface Prepared {
  behaviour: Behaviour;
  body: unknown;
  model: string;
  query: URLSearchParams;
  /** Set only for a fault that acts while the response is written (drop_mid_stream). */
  midResponseFault: Fault | undefined;
}

function sendError(exchange: HttpExchange, httpStatus: number, message: string, status?: string, details?: Record<string, unknown>[]): void {
  exchange.sendJson(httpStatus, googleError(httpStatus, message, status, details), JSON_HEADERS);
}

/**
 * The steps every route shares, in the order Google applies them: read body → latency → API key
 * (`x-goog-api-key` header or `key` query parameter) → JSON → fault. Undefined once answered.
 */
async function prepare(exchange: HttpExchange, runtime: SimulatorRuntime, method: Method, path: FaultPath): Promise<Prepared | undefined> {
  const behaviour = runtime.behaviour();
  const match = ROUTE.exec(exchange.pathname);
  const model = decodeURIComponent(match?.[2] ?? '');
  const query = new URL(exchange.req.url ?? '/', 'http://simulator').searchParams;
  const read = await exchange.readBody();
  if (!read.ok) {
    if (read.reason === 'too_large') sendError(exchange, 413, 'Request payload size exceeds the limit.', 'INVALID_ARGUMENT');
    return undefined;
  }
  const parsed = parseJson(read.body);
  exchange.observe({ body: parsed.ok ? parsed.value : parsed.raw, model, stream: method === 'streamGenerateContent' });
  if (behaviour.latencyMs > 0 && !(await exchange.cancel.delay(behaviour.latencyMs))) return undefined;
  if (!authorize(exchange, runtime.apiKey, query)) return undefined;
  if (!parsed.ok) {
    sendError(exchange, 400, `Invalid JSON payload received. ${parsed.message}`, 'INVALID_ARGUMENT');
    return undefined;
  }
  const fault = runtime.faults.select({ model, path });
  if (fault !== undefined && fault.kind !== 'drop_mid_stream') {
    await applyFault(exchange, fault, model, method);
    return undefined;
  }
  return { behaviour, body: parsed.value, model, query, midResponseFault: fault };
}

/** Google answers a missing key with 403 and a wrong one with 400 API_KEY_INVALID. */
function authorize(exchange: HttpExchange, apiKey: string | undefined, query: URLSearchParams): boolean {
  if (apiKey === undefined) return true;
  const header = exchange.req.headers['x-goog-api-key'];
  const given = (Array.isArray(header) ? header[0] : header) ?? query.get('key') ?? undefined;
  if (given === undefined || given === '') {
    sendError(
      exchange,
      403,
      "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
      'PERMISSION_DENIED',
    );
    return false;
  }
  if (given !== apiKey) {
    sendError(exchange, 400, 'API key not valid. Please pass a valid API key.', 'INVALID_ARGUMENT', apiKeyInvalidDetails());
    return false;
  }
  return true;
}

async function applyFault(exchange: HttpExchange, fault: Fault, model: string, method: Method): Promise<void> {
  if (await faultWithoutAnswer(exchange, fault)) return;
  const status = fault.status ?? 500;
  // Quota errors say when to retry in a RetryInfo detail rather than a header.
  const retryAfter = faultRetryAfterSeconds(fault, status);
  const details = retryAfter !== undefined ? [retryInfo(retryAfter)] : undefined;
  // A fault's `code` names the Google status when it should differ from the HTTP status's usual one.
  sendError(exchange, status, fault.message ?? defaultErrorMessage(status, model, method), fault.code ?? googleStatusFor(status), details);
}

const generateContent =
  (method: 'generateContent' | 'streamGenerateContent'): WireHandler =>
  async (exchange, runtime) => {
    const prepared = await prepare(exchange, runtime, method, 'chat');
    if (prepared === undefined) return;
    const parsed = generateContentRequestSchema.safeParse(prepared.body);
    if (!parsed.success) return sendError(exchange, 400, describeProblem(parsed.error, 'GenerateContentRequest'), 'INVALID_ARGUMENT');
    const result = planGenerateContent(parsed.data, prepared.model, prepared.behaviour, runtime);
    if (!result.ok) return sendError(exchange, 400, result.message, 'INVALID_ARGUMENT');

    const dropAfterTokens = prepared.midResponseFault ? (prepared.midResponseFault.afterTokens ?? 0) : undefined;
    if (method === 'generateContent') {
      const body = generateContentBody(result.plan);
      if (dropAfterTokens !== undefined) return exchange.sendTruncated(200, JSON_HEADERS, JSON.stringify(body));
      return exchange.sendJson(200, body, JSON_HEADERS);
    }
    if (prepared.query.get('alt') !== 'sse') {
      // Without alt=sse Google streams one JSON array; only the SSE form is simulated.
      return sendError(exchange, 400, 'This simulator serves streamGenerateContent with alt=sse only.', 'INVALID_ARGUMENT');
    }
    if (!exchange.open) return;
    const sink = exchange.startStream(SSE_HEADERS);
    await deliverFrames(
      generateContentFrames(result.plan),
      { ttftMs: prepared.behaviour.ttftMs, tokensPerSecond: prepared.behaviour.tokensPerSecond, dropAfterTokens },
      exchange.cancel,
      sink,
    );
  };

function embeddingValues(runtime: SimulatorRuntime, behaviour: Behaviour, request: EmbedContentRequest): number[] {
  const text = request.content.parts.map((p) => p.text).join('\n');
  return Array.from(generateEmbedding(runtime.seed, text, request.outputDimensionality ?? behaviour.embeddingDimensions));
}

function tooManyDimensions(requests: readonly EmbedContentRequest[]): boolean {
  return requests.some((r) => (r.outputDimensionality ?? 0) > MAX_EMBEDDING_DIMENSIONS);
}

const handleEmbedContent: WireHandler = async (exchange, runtime) => {
  const prepared = await prepare(exchange, runtime, 'embedContent', 'embeddings');
  if (prepared === undefined) return;
  const parsed = embedContentRequestSchema.safeParse(prepared.body);
  if (!parsed.success) return sendError(exchange, 400, describeProblem(parsed.error, 'EmbedContentRequest'), 'INVALID_ARGUMENT');
  if (tooManyDimensions([parsed.data])) return sendError(exchange, 400, `* EmbedContentRequest.output_dimensionality: must be at most ${MAX_EMBEDDING_DIMENSIONS}\n`, 'INVALID_ARGUMENT');
  const body = { embedding: { values: embeddingValues(runtime, prepared.behaviour, parsed.data) } };
  if (prepared.midResponseFault !== undefined) return exchange.sendTruncated(200, JSON_HEADERS, JSON.stringify(body));
  exchange.sendJson(200, body, JSON_HEADERS);
};

const handleBatchEmbedContents: WireHandler = async (exchange, runtime) => {
  const prepared = await prepare(exchange, runtime, 'batchEmbedContents', 'embeddings');
  if (prepared === undefined) return;
  const parsed = batchEmbedContentsRequestSchema.safeParse(prepared.body);
  if (!parsed.success) return sendError(exchange, 400, describeProblem(parsed.error, 'BatchEmbedContentsRequest'), 'INVALID_ARGUMENT');
  const requests = parsed.data.requests;
  const mismatch = requests.findIndex((r) => r.model !== `models/${prepared.model}`);
  if (mismatch !== -1) {
    return sendError(exchange, 400, `* BatchEmbedContentsRequest.requests[${mismatch}].model: the model of each request must be the model of the batch (models/${prepared.model})\n`, 'INVALID_ARGUMENT');
  }
  if (tooManyDimensions(requests)) return sendError(exchange, 400, `* BatchEmbedContentsRequest.requests.output_dimensionality: must be at most ${MAX_EMBEDDING_DIMENSIONS}\n`, 'INVALID_ARGUMENT');
  const body = { embeddings: requests.map((r) => ({ values: embeddingValues(runtime, prepared.behaviour, r) })) };
  if (prepared.midResponseFault !== undefined) return exchange.sendTruncated(200, JSON_HEADERS, JSON.stringify(body));
  exchange.sendJson(200, body, JSON_HEADERS);
};

const HANDLERS: Readonly<Record<Method, WireHandler>> = {
  generateContent: generateContent('generateContent'),
  streamGenerateContent: generateContent('streamGenerateContent'),
  embedContent: handleEmbedContent,
  batchEmbedContents: handleBatchEmbedContents,
};

/**
 * Google's Gemini API (Generative Language API): `POST /v1beta/models/{model}:generateContent`,
 * `:streamGenerateContent?alt=sse`, `:embedContent` and `:batchEmbedContents`, with the API key
 * in `x-goog-api-key` or the `key` query parameter.
 */
export const geminiWire: WireProtocol = {
  name: 'gemini',
  route(method, pathname) {
    if (method !== 'POST') return undefined;
    const match = ROUTE.exec(pathname);
    return match === null ? undefined : HANDLERS[match[3] as Method];
  },
};
