import { isIP } from 'node:net';
import { Readable } from 'node:stream';
import { Agent, EnvHttpProxyAgent, errors as undiciErrors, type Dispatcher, type FormData } from 'undici';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { NO_PROXY_ENV, type ProxyEnv } from '@openrouter/config';
import { GatewayError } from '@openrouter/errors';

/** How the adapter's calls leave the process: the environment's forward proxies, read once at start-up. */
export interface Egress {
  proxyEnv: ProxyEnv;
  /** CA certificates (PEM) TLS servers are checked against in place of Node's own: a spec's private CA. */
  ca?: string;
}

/** No proxy at all: what a spec gets unless it asks for one. */
export const DIRECT_EGRESS: Egress = { proxyEnv: NO_PROXY_ENV };

/** Never reached through a proxy: the GCE metadata server answers only from the node's own network. */
export const METADATA_HOSTS: readonly string[] = ['169.254.169.254', 'metadata.google.internal'];

/** Keep-alive connection pools to one provider, shared by all its calls. */
const UPSTREAM_POOL: Agent.Options = { keepAliveTimeout: 30_000, connections: 256, pipelining: 1 };

/**
 * The dispatcher every outbound call of the adapter goes through, built here only: a provider's
 * calls, its token endpoint's, and the image fetcher's. `proxy` is the provider's setting:
 * - `"none"`: direct;
 * - a URL: every call through that forward proxy;
 * - unset: the environment's — `HTTPS_PROXY` for https URLs (`HTTP_PROXY` when unset),
 *   `HTTP_PROXY` for http ones, direct to the hosts `NO_PROXY` names (undici's rules).
 * The metadata server is always reached directly. Through a proxy, https goes through a CONNECT
 * tunnel and plain http is forwarded by absolute URL, as curl does (proxies commonly refuse CONNECT
 * to ports other than 443); through an https:// proxy undici tunnels plain http too.
 */
export function createUpstreamDispatcher(egress: Egress = DIRECT_EGRESS, proxy?: string, options: Agent.Options = UPSTREAM_POOL): Dispatcher {
  const connect = egress.ca === undefined ? options.connect : { ...(options.connect as object | undefined), ca: egress.ca };
  const agentOptions: Agent.Options = connect === undefined ? options : { ...options, connect };
  const proxies = proxiesOf(egress.proxyEnv, proxy);
  if (proxies === undefined) return new Agent(agentOptions);
  return new EnvHttpProxyAgent({
    ...agentOptions,
    ...proxies,
    proxyTunnel: false,
    // Through a tunnel, the provider's TLS is set up by the proxy agent, with these settings.
    ...(egress.ca === undefined ? {} : { requestTls: { ca: egress.ca } }),
  });
}

/** The proxies a dispatcher uses, every value given (undici reads the environment for a missing one); undefined: none. */
function proxiesOf(env: ProxyEnv, proxy: string | undefined): { httpProxy: string; httpsProxy: string; noProxy: string } | undefined {
  if (proxy === 'none') return undefined;
  const given = proxy === undefined ? env : { httpProxy: proxy, httpsProxy: proxy, noProxy: '' };
  if (given.httpProxy === '' && given.httpsProxy === '') return undefined;
  const direct = noProxyEntries(given.noProxy);
  // undici honours `*` only as the whole value, which the metadata hosts added below would spoil.
  if (direct.includes('*')) return undefined;
  return { httpProxy: given.httpProxy, httpsProxy: given.httpsProxy, noProxy: [...direct, ...METADATA_HOSTS].join(',') };
}

/**
 * NO_PROXY's entries as undici matches them: a bare IPv6 address is bracketed, as undici sees the
 * host of an IPv6 URL (it would otherwise read the last group as a port).
 */
function noProxyEntries(noProxy: string): string[] {
  return noProxy
    .split(/[\s,]+/)
    .filter((entry) => entry !== '')
    .map((entry) => (isIP(entry) === 6 ? `[${entry}]` : entry));
}

/** Whether any call of `egress` may go through a proxy: the image fetcher then checks a host's addresses itself. */
export function mayProxy(egress: Egress): boolean {
  return proxiesOf(egress.proxyEnv, undefined) !== undefined;
}

/** A proxy URL as it may be logged: scheme, host and port, never its credentials. */
export function proxyForLog(proxy: string): string {
  try {
    const url = new URL(proxy);
    return `${url.protocol}//${url.host}`;
  } catch {
    return '(not a URL)';
  }
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
export async function postJson(agent: Dispatcher, req: UpstreamRequest): Promise<Dispatcher.ResponseData> {
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

/** A multipart/form-data call: `form` builds the body anew for every send (a credential retry sends it twice). */
export interface UpstreamFormRequest extends Omit<UpstreamRequest, 'body'> {
  form(): FormData;
}

/** POSTs a multipart form (undici writes its boundary into the content type); failures to reach the provider become canonical errors. */
export async function postForm(agent: Dispatcher, req: UpstreamFormRequest): Promise<Dispatcher.ResponseData> {
  try {
    return await agent.request({
      origin: req.url.origin,
      path: req.url.pathname + req.url.search,
      method: 'POST',
      headers: { accept: 'application/json, text/plain', ...req.headers },
      body: req.form(),
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
  const proxyStatus = proxyRefusal(error);
  if (proxyStatus !== undefined) {
    return new GatewayError('unavailable', `The provider "${provider}" could not be reached: ${proxyRefusalText(proxyStatus)}.`, { provider, upstreamStatus: proxyStatus, cause: error });
  }
  return new GatewayError('unavailable', `The provider "${provider}" could not be reached.`, { provider, cause: error });
}

const PROXY_STATUS: Readonly<Record<number, string>> = {
  403: ' Forbidden (the proxy does not allow this host)',
  407: ' Proxy Authentication Required (check the credentials of the proxy URL)',
};

/** What a proxy's refusal means, for a message. */
export function proxyRefusalText(status: number): string {
  return `the forward proxy refused the connection with HTTP ${status}${PROXY_STATUS[status] ?? ''}`;
}

/**
 * The status a forward proxy refused a call with: undici fails a CONNECT the proxy did not answer
 * 200 (`Proxy response (407) !== 200 when HTTP Tunneling`), and a forwarded request answered 407.
 */
export function proxyRefusal(error: unknown): number | undefined {
  if (!(error instanceof Error)) return undefined;
  const match = /^Proxy response \((\d{3})\) !== 200|^Proxy Authentication Required \((407)\)/.exec(error.message);
  const status = match?.[1] ?? match?.[2];
  return status === undefined ? undefined : Number(status);
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
 * A whole answer's bytes, at most `maxBytes` of them: a longer answer (by its Content-Length, or
 * as it arrives) is refused as the provider's failure and the rest is not read. Failures mid-body
 * map as `readJsonBody`'s do.
 */
export async function readBodyBounded(response: Dispatcher.ResponseData, maxBytes: number, signal: AbortSignal, provider: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const piece of readBodyPieces(response, maxBytes, signal, provider)) {
    size += piece.length;
    chunks.push(piece);
  }
  return Buffer.concat(chunks, size);
}

/**
 * An answer's bytes as they arrive, at most `maxBytes` of them over the whole body: a longer
 * answer (by its Content-Length, or as it arrives) is refused as the provider's failure and the
 * rest is not read. Each piece is what arrived since the last was taken (a slow reader gets the
 * chunks that came meanwhile as one). A connection lost mid-body is the provider's failure; a
 * stall longer than the body timeout is a timeout. Left early (the caller stopped or failed), the
 * body is torn down, which ends the provider's request.
 */
export async function* readBodyPieces(response: Dispatcher.ResponseData, maxBytes: number, signal: AbortSignal, provider: string): AsyncGenerator<Buffer> {
  const tooLarge = (): GatewayError => new GatewayError('upstream_error', `The provider "${provider}" answered more than ${maxBytes} bytes, the most the gateway reads.`, { provider });
  const declared = Number(headerText(response.headers['content-length']));
  if (Number.isFinite(declared) && declared > maxBytes) {
    response.body.on('error', () => undefined).destroy();
    throw tooLarge();
  }
  let size = 0;
  let ended = false;
  try {
    for await (const chunk of response.body) {
      const piece = chunk as Buffer;
      size += piece.length;
      if (size > maxBytes) throw tooLarge();
      yield piece;
    }
    ended = true;
  } catch (error) {
    if (error instanceof GatewayError) throw error;
    const failure = transportError(error, signal, provider);
    if (failure.kind === 'unavailable') throw new GatewayError('upstream_error', `The provider "${provider}" closed the connection before the answer was complete.`, { provider, cause: error });
    throw failure;
  } finally {
    if (!ended) response.body.on('error', () => undefined).destroy();
  }
}

/** A header's first value, undefined when absent or empty. */
export function headerText(value: string | string[] | undefined): string | undefined {
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined || first === '' ? undefined : first;
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
