import type { OutgoingHttpHeaders } from 'node:http';
import type { Behaviour, Fault, FaultPath } from '../core/behaviour-config';
import { generateEmbedding } from '../core/embedding-generator';
import type { SeededRandom } from '../core/seeded-random';
import { deliverFrames, type PacedFrame } from '../core/stream-pacer';
import { countTokens } from '../core/token-counter';
import type { HttpExchange } from '../http/http-exchange';
import { parseJson } from '../http/http-io';
import {
  converseBody,
  converseStreamFrames,
  defaultEmbeddingDimensions,
  defaultErrorMessage,
  errorTypeForStatus,
  exceptionFrame,
  frameText,
  planConverse,
  streamExceptionName,
} from './bedrock-formats';
import { cohereEmbeddingSchema, converseRequestSchema, converseRuleViolation, describeValidation, titanEmbeddingSchema } from './bedrock-request-schemas';
import { verifySigV4 } from './bedrock-sigv4';
import { faultWithoutAnswer, type SimulatorRuntime, type WireHandler, type WireProtocol } from './wire-protocol';

const ROUTE = /^\/model\/([^/]+)\/(converse|converse-stream|invoke)$/;
const ERROR_TYPE_SUFFIX = ':http://internal.amazon.com/coral/com.amazon.bedrock/';
const EVENT_STREAM = 'application/vnd.amazon.eventstream';

type Operation = 'converse' | 'converse-stream' | 'invoke';

interface Prepared {
  behaviour: Behaviour;
  body: unknown;
  modelId: string;
  requestId: string;
  /** A fault that acts while the answer is written: drop_mid_stream, or an http_error after N streamed tokens. */
  midResponseFault: Fault | undefined;
}

function requestIdFrom(ids: SeededRandom): string {
  const hex = (n: number): string => Array.from({ length: n }, () => '0123456789abcdef'.charAt(ids.int(16))).join('');
  return `${hex(8)}-${hex(4)}-4${hex(3)}-a${hex(3)}-${hex(12)}`;
}

function sendError(exchange: HttpExchange, status: number, errorType: string, message: string, requestId: string, headers: OutgoingHttpHeaders = {}): void {
  exchange.sendJson(status, { message }, { 'x-amzn-errortype': `${errorType}${ERROR_TYPE_SUFFIX}`, 'x-amzn-requestid': requestId, ...headers });
}

/** The steps every Bedrock route shares, in the service's order: body → latency → SigV4 → JSON → fault. */
async function prepare(exchange: HttpExchange, runtime: SimulatorRuntime, operation: Operation, encodedModel: string): Promise<Prepared | undefined> {
  const behaviour = runtime.behaviour();
  const requestId = requestIdFrom(runtime.ids);
  const read = await exchange.readBody();
  if (!read.ok) {
    if (read.reason === 'too_large') sendError(exchange, 413, 'ValidationException', 'Request body too large.', requestId);
    return undefined;
  }
  let modelId = encodedModel;
  try {
    modelId = decodeURIComponent(encodedModel);
  } catch {
    // A malformed escape stays as sent; the model id is only used for matching and echoing.
  }
  const parsed = parseJson(read.body);
  exchange.observe({ body: parsed.ok ? parsed.value : parsed.raw, model: modelId, stream: operation === 'converse-stream' });
  if (behaviour.latencyMs > 0 && !(await exchange.cancel.delay(behaviour.latencyMs))) return undefined;
  if (runtime.apiKey !== undefined) {
    const check = await verifySigV4({ method: exchange.method, rawUrl: exchange.req.url ?? '/', headers: exchange.req.headers, body: read.body }, runtime.apiKey);
    if (!check.ok) {
      sendError(exchange, 403, check.errorType, check.message, requestId);
      return undefined;
    }
  }
  if (!parsed.ok) {
    sendError(exchange, 400, 'SerializationException', 'The request body is not valid JSON.', requestId);
    return undefined;
  }
  const path: FaultPath = operation === 'invoke' ? 'embeddings' : 'chat';
  const fault = runtime.faults.select({ model: modelId, path });
  const actsMidStream = fault?.kind === 'drop_mid_stream' || (fault?.kind === 'http_error' && fault.afterTokens !== undefined && operation === 'converse-stream');
  if (fault !== undefined && !actsMidStream) {
    await applyFault(exchange, fault, modelId, requestId);
    return undefined;
  }
  return { behaviour, body: parsed.value, modelId, requestId, midResponseFault: fault };
}

async function applyFault(exchange: HttpExchange, fault: Fault, modelId: string, requestId: string): Promise<void> {
  if (await faultWithoutAnswer(exchange, fault)) return;
  const status = fault.status ?? 500;
  const errorType = fault.code ?? errorTypeForStatus(status);
  const headers: OutgoingHttpHeaders = {};
  if (fault.retryAfterSeconds !== undefined) headers['retry-after'] = String(Math.ceil(fault.retryAfterSeconds));
  sendError(exchange, status, errorType, fault.message ?? defaultErrorMessage(errorType, modelId), requestId, headers);
}

/** The frames up to `afterTokens` content tokens, then the fault's exception frame (the stream then ends). */
function withException(frames: readonly PacedFrame[], fault: Fault, modelId: string): PacedFrame[] {
  const out: PacedFrame[] = [];
  let tokens = 0;
  for (const frame of frames) {
    if (frame.tokenStep !== undefined && tokens++ >= (fault.afterTokens ?? 0)) break;
    out.push(frame);
  }
  const errorType = fault.code ?? errorTypeForStatus(fault.status ?? 500);
  out.push({ text: frameText(exceptionFrame(streamExceptionName(errorType), fault.message ?? defaultErrorMessage(errorType, modelId))) });
  return out;
}

const converse = (stream: boolean): WireHandler => async (exchange, runtime) => {
  const match = ROUTE.exec(exchange.pathname);
  const prepared = await prepare(exchange, runtime, stream ? 'converse-stream' : 'converse', match?.[1] ?? '');
  if (prepared === undefined) return;
  const { requestId } = prepared;
  const parsed = converseRequestSchema.safeParse(prepared.body);
  if (!parsed.success) return sendError(exchange, 400, 'ValidationException', describeValidation(parsed.error), requestId);
  const violation = converseRuleViolation(parsed.data, prepared.modelId);
  if (violation !== undefined) return sendError(exchange, 400, 'ValidationException', violation, requestId);
  const result = planConverse(parsed.data, prepared.behaviour, runtime.seed, runtime.ids, prepared.modelId);
  if (!result.ok) return sendError(exchange, 400, 'ValidationException', result.message, requestId);
  const latencyMs = Math.round(prepared.behaviour.latencyMs + prepared.behaviour.ttftMs);
  const fault = prepared.midResponseFault;

  if (!stream) {
    const body = converseBody(result.plan, latencyMs);
    if (fault !== undefined) return exchange.sendTruncated(200, { 'content-type': 'application/json', 'x-amzn-requestid': requestId }, JSON.stringify(body));
    return exchange.sendJson(200, body, { 'x-amzn-requestid': requestId });
  }
  if (!exchange.open) return;
  let frames = converseStreamFrames(result.plan, latencyMs);
  let dropAfterTokens: number | undefined;
  if (fault?.kind === 'http_error') frames = withException(frames, fault, prepared.modelId);
  else if (fault !== undefined) dropAfterTokens = fault.afterTokens ?? 0;
  const sink = exchange.startBinaryStream({ 'content-type': EVENT_STREAM, 'x-amzn-requestid': requestId });
  await deliverFrames(frames, { ttftMs: prepared.behaviour.ttftMs, tokensPerSecond: prepared.behaviour.tokensPerSecond, dropAfterTokens }, exchange.cancel, sink);
};

const invoke: WireHandler = async (exchange, runtime) => {
  const match = ROUTE.exec(exchange.pathname);
  const prepared = await prepare(exchange, runtime, 'invoke', match?.[1] ?? '');
  if (prepared === undefined) return;
  const { modelId, requestId } = prepared;
  const bare = modelId.replace(/^(?:us|eu|apac|global)\./, '');
  const defaultDimensions = defaultEmbeddingDimensions(modelId);
  if (defaultDimensions === undefined) return sendError(exchange, 400, 'ValidationException', `The simulator serves InvokeModel for embedding models only (got ${modelId}).`, requestId);

  let body: unknown;
  let inputTokens = 0;
  if (bare.startsWith('amazon.titan')) {
    const parsed = titanEmbeddingSchema.safeParse(prepared.body);
    if (!parsed.success) return sendError(exchange, 400, 'ValidationException', describeValidation(parsed.error), requestId);
    if (parsed.data.dimensions !== undefined && !bare.startsWith('amazon.titan-embed-text-v2')) {
      return sendError(exchange, 400, 'ValidationException', 'Malformed input request: extraneous key [dimensions] is not permitted, please reformat your input and try again.', requestId);
    }
    const vector = Array.from(generateEmbedding(runtime.seed, parsed.data.inputText, parsed.data.dimensions ?? defaultDimensions));
    inputTokens = countTokens(parsed.data.inputText);
    body = { embedding: vector, embeddingsByType: { float: vector }, inputTextTokenCount: inputTokens };
  } else {
    const parsed = cohereEmbeddingSchema.safeParse(prepared.body);
    if (!parsed.success) return sendError(exchange, 400, 'ValidationException', describeValidation(parsed.error), requestId);
    const request = parsed.data;
    if (request.output_dimension !== undefined && defaultDimensions === 1024) {
      return sendError(exchange, 400, 'ValidationException', 'Malformed input request: extraneous key [output_dimension] is not permitted, please reformat your input and try again.', requestId);
    }
    const vectors = request.texts.map((text) => Array.from(generateEmbedding(runtime.seed, text, request.output_dimension ?? defaultDimensions)));
    inputTokens = request.texts.reduce((sum, text) => sum + countTokens(text), 0);
    const byType = request.embedding_types !== undefined;
    body = { id: requestIdFrom(runtime.ids), texts: request.texts, embeddings: byType ? { float: vectors } : vectors, response_type: byType ? 'embeddings_by_type' : 'embeddings_floats' };
  }
  const headers: OutgoingHttpHeaders = {
    'x-amzn-requestid': requestId,
    'x-amzn-bedrock-input-token-count': String(inputTokens),
    'x-amzn-bedrock-invocation-latency': String(Math.round(prepared.behaviour.latencyMs)),
  };
  if (prepared.midResponseFault !== undefined) return exchange.sendTruncated(200, { 'content-type': 'application/json', ...headers }, JSON.stringify(body));
  exchange.sendJson(200, body, headers);
};

const handleConverse = converse(false);
const handleConverseStream = converse(true);

/**
 * AWS Bedrock Runtime: Converse, ConverseStream (binary AWS event stream) and InvokeModel for
 * Titan and Cohere embeddings, behind SigV4 checked against the simulator's key as the secret.
 * Faults map to Bedrock's errors; an `http_error` fault with `afterTokens` on a stream arrives
 * as an exception frame after that many tokens, as Bedrock reports failures mid-stream.
 */
export const bedrockWire: WireProtocol = {
  name: 'bedrock',
  route(method, pathname) {
    if (method !== 'POST') return undefined;
    const operation = ROUTE.exec(pathname)?.[2];
    if (operation === 'converse') return handleConverse;
    if (operation === 'converse-stream') return handleConverseStream;
    if (operation === 'invoke') return invoke;
    return undefined;
  },
};
