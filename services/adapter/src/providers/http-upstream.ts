import { Readable } from 'node:stream';
import { Agent, errors as undiciErrors, type Dispatcher } from 'undici';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { GatewayError } from '@openrouter/errors';

/** Keep-alive connection pools to one provider, shared by all its calls. */
export function createUpstreamAgent(): Agent {
  return new Agent({ keepAliveTimeout: 30_000, connections: 256, pipelining: 1 });
}

export interface UpstreamRequest {
  url: URL;
  headers: Record<string, string>;
  body: string;
  timeoutMs: number;
  signal: AbortSignal;
  provider: string;
}

/** POSTs JSON; failures to reach the provider become canonical errors. */
export async function postJson(agent: Agent, req: UpstreamRequest): Promise<Dispatcher.ResponseData> {
  try {
    return await agent.request({
      origin: req.url.origin,
      path: req.url.pathname + req.url.search,
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', ...req.headers },
      body: req.body,
      signal: req.signal,
      headersTimeout: req.timeoutMs,
      bodyTimeout: req.timeoutMs,
    });
  } catch (error) {
    throw transportError(error, req.signal, req.provider);
  }
}

export function transportError(error: unknown, signal: AbortSignal, provider: string): GatewayError {
  if (error instanceof GatewayError) return error;
  if (signal.aborted) return new GatewayError('cancelled', 'The request was cancelled.', { provider, cause: error });
  if (error instanceof undiciErrors.HeadersTimeoutError || error instanceof undiciErrors.BodyTimeoutError) {
    return new GatewayError('timeout', `The provider "${provider}" did not answer in time.`, { provider, cause: error });
  }
  return new GatewayError('unavailable', `The provider "${provider}" could not be reached.`, { provider, cause: error });
}

/**
 * A whole JSON answer: a body that is not JSON is a malformed answer, and a connection lost
 * mid-body is the provider's failure (it was reached and answered), not unreachability.
 */
export async function readJsonBody(response: Dispatcher.ResponseData, signal: AbortSignal, provider: string): Promise<unknown> {
  try {
    return await response.body.json();
  } catch (error) {
    if (error instanceof SyntaxError) throw new GatewayError('upstream_error', `The provider "${provider}" returned a malformed response.`, { provider, cause: error });
    const failure = transportError(error, signal, provider);
    if (failure.kind === 'unavailable') throw new GatewayError('upstream_error', `The provider "${provider}" closed the connection before the answer was complete.`, { provider, cause: error });
    throw failure;
  }
}

/**
 * Server-sent events of a response body, as they arrive. Stopping early leaves the body as it is:
 * the caller either tears it down (`body.destroy()`, the call was cancelled or failed) or, after the
 * provider's last event, lets it finish (`discardRest`).
 */
export async function* readServerSentEvents(body: Readable | AsyncIterable<Buffer | string>, signal: AbortSignal, provider: string): AsyncGenerator<EventSourceMessage> {
  const pending: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (event) => pending.push(event) });
  const decoder = new TextDecoder();
  // A stream's own iterator destroys it when left early, with an `AbortError` (and its stack trace)
  // even when only the end of the body is still to come: the common case, after the last event.
  const pieces: AsyncIterable<Buffer | string> = body instanceof Readable ? { [Symbol.asyncIterator]: () => body.iterator({ destroyOnReturn: false }) } : body;
  try {
    for await (const piece of pieces) {
      parser.feed(typeof piece === 'string' ? piece : decoder.decode(piece, { stream: true }));
      while (pending.length > 0) yield pending.shift() as EventSourceMessage;
    }
  } catch (error) {
    if (signal.aborted) throw new GatewayError('cancelled', 'The request was cancelled.', { provider, cause: error });
    if (error instanceof undiciErrors.BodyTimeoutError) throw new GatewayError('timeout', `The provider "${provider}" stalled mid-stream.`, { provider, cause: error });
    throw new GatewayError('upstream_error', `The provider "${provider}" closed the stream unexpectedly.`, { provider, cause: error });
  }
}

/**
 * After a stream's last event: what is left of the body (normally only its end) is read and
 * dropped, so the response completes and its connection returns to the pool. A provider that keeps
 * the body open past its last event is cut off by the body timeout, whose error is dropped too.
 */
export function discardRest(body: Readable): void {
  if (body.readableEnded || body.destroyed) return;
  body.on('error', () => undefined);
  body.resume();
}
