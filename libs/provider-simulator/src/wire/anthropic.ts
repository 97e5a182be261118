import type { OutgoingHttpHeaders } from 'node:http';
import type { Fault } from '../core/behaviour-config';
import { deliverFrames, framesBefore, type PacedFrame } from '../core/stream-pacer';
import type { HttpExchange } from '../http/http-exchange';
import { parseJson } from '../http/http-io';
import { anthropicError, defaultErrorMessage, errorTypeForStatus, messageBody, messageFrames } from './anthropic-formats';
import { planMessage } from './anthropic-planner';
import { describeProblem, messagesRequestSchema } from './anthropic-request-schemas';
import { faultRetryAfterSeconds, faultWithoutAnswer, type WireHandler, type WireProtocol } from './wire-protocol';

const JSON_HEADERS: OutgoingHttpHeaders = { 'content-type': 'application/json' };
const SSE_HEADERS: OutgoingHttpHeaders = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' };

function sendError(exchange: HttpExchange, status: number, type: string, message: string, headers: OutgoingHttpHeaders = {}): void {
  exchange.sendJson(status, anthropicError(type, message), headers);
}

/**
 * `POST /v1/messages` in the order the real service applies its checks: read body → latency →
 * `x-api-key` → `anthropic-version` → JSON → fault → body validation → answer (JSON or SSE).
 */
const handleMessages: WireHandler = async (exchange, runtime) => {
  const behaviour = runtime.behaviour();
  const read = await exchange.readBody();
  if (!read.ok) {
    if (read.reason === 'too_large') sendError(exchange, 413, 'request_too_large', defaultErrorMessage(413, undefined));
    return;
  }
  const parsed = parseJson(read.body);
  const record = parsed.ok && isRecord(parsed.value) ? parsed.value : undefined;
  const model = typeof record?.['model'] === 'string' ? record['model'] : undefined;
  exchange.observe({ body: parsed.ok ? parsed.value : parsed.raw, model, stream: record?.['stream'] === true });

  if (behaviour.latencyMs > 0 && !(await exchange.cancel.delay(behaviour.latencyMs))) return;
  const key = exchange.req.headers['x-api-key'];
  if (runtime.apiKey !== undefined && key !== runtime.apiKey) {
    return sendError(exchange, 401, 'authentication_error', key === undefined || key === '' ? 'x-api-key header is required' : 'invalid x-api-key');
  }
  if (!exchange.req.headers['anthropic-version']) return sendError(exchange, 400, 'invalid_request_error', 'anthropic-version: header is required');
  if (!parsed.ok) return sendError(exchange, 400, 'invalid_request_error', 'There was an issue with the format of your request: the body is not valid JSON.');

  const fault = runtime.faults.select({ model, path: 'chat' });
  // An http_error with `afterTokens` on a stream fails it after its 200 with an `error` event, as
  // Anthropic reports an overloaded_error (or any other) once streaming has begun.
  const inStream = fault?.kind === 'http_error' && fault.afterTokens !== undefined && record?.['stream'] === true;
  if (fault !== undefined && fault.kind !== 'drop_mid_stream' && !inStream) return applyFault(exchange, fault, model);

  const request = messagesRequestSchema.safeParse(parsed.value);
  if (!request.success) return sendError(exchange, 400, 'invalid_request_error', describeProblem(request.error, parsed.value));
  const result = planMessage(request.data, behaviour, runtime);
  if (!result.ok) return sendError(exchange, result.problem.status, result.problem.type, result.problem.message);

  const dropAfterTokens = fault?.kind === 'drop_mid_stream' ? (fault.afterTokens ?? 0) : undefined;
  if (request.data.stream !== true) {
    const body = messageBody(result.plan);
    if (dropAfterTokens !== undefined) return exchange.sendTruncated(200, JSON_HEADERS, JSON.stringify(body));
    return exchange.sendJson(200, body);
  }
  if (!exchange.open) return;
  const sink = exchange.startStream(SSE_HEADERS);
  const frames = messageFrames(result.plan);
  await deliverFrames(
    fault?.kind === 'http_error' ? withErrorEvent(frames, fault, model) : frames,
    { ttftMs: behaviour.ttftMs, tokensPerSecond: behaviour.tokensPerSecond, dropAfterTokens },
    exchange.cancel,
    sink,
  );
};

/** The frames up to `afterTokens` token frames, then the fault's `error` event; the stream then ends, without message_stop. */
function withErrorEvent(frames: readonly PacedFrame[], fault: Fault, model: string | undefined): PacedFrame[] {
  const out = framesBefore(frames, fault.afterTokens ?? 0);
  const status = fault.status ?? 500;
  out.push({ text: `event: error\ndata: ${JSON.stringify(anthropicError(fault.code ?? errorTypeForStatus(status), fault.message ?? defaultErrorMessage(status, model)))}\n\n` });
  return out;
}

async function applyFault(exchange: HttpExchange, fault: Fault, model: string | undefined): Promise<void> {
  if (await faultWithoutAnswer(exchange, fault)) return;
  const status = fault.status ?? 500;
  const headers: OutgoingHttpHeaders = {};
  const retryAfter = faultRetryAfterSeconds(fault, status);
  if (retryAfter !== undefined) headers['retry-after'] = String(retryAfter);
  // A fault's `code` names the Anthropic error type when it should differ from the status's usual one.
  sendError(exchange, status, fault.code ?? errorTypeForStatus(status), fault.message ?? defaultErrorMessage(status, model), headers);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Anthropic's Messages API: `POST /v1/messages`, JSON or SSE, `x-api-key` and `anthropic-version` headers. */
export const anthropicWire: WireProtocol = {
  name: 'anthropic',
  route(method, pathname) {
    return method === 'POST' && pathname === '/v1/messages' ? handleMessages : undefined;
  },
};
