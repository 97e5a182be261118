import { isUtf8 } from 'node:buffer';
import { randomUUID } from 'node:crypto';
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { setMaxListeners } from 'node:events';
import type { DynamicModule, INestApplication, Type } from '@nestjs/common';
import { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { ConnectionError, FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { Listen } from '@openrouter/config';
import { GatewayError } from '@openrouter/errors';
import secureJson from 'secure-json-parse';
import { toClientError, toOpenAIError } from '@openrouter/openai-wire';
import { NestPinoLogger, type HttpMetrics, type Logger, type Tracing } from '@openrouter/observability';

declare module 'fastify' {
  interface FastifyRequest {
    /** W3C headers naming this request's server span (tracing on), to carry onto events it causes. */
    traceHeaders?: Record<string, string>;
    /**
     * Aborted when the server's shutdown grace is over (`closeWithinGrace`), with the
     * `shutting_down` error as its reason: a handler still answering then ends its answer with
     * that error, rather than have its connection cut under it.
     */
    readonly shutdownSignal: AbortSignal;
  }
  interface FastifyInstance {
    /** Aborts every request's `shutdownSignal` (set by `startHttpApp`). */
    endAnswersForShutdown?: () => void;
  }
}

/** One finished HTTP exchange, as told to `onResponded`. */
export interface RespondedExchange {
  request: FastifyRequest;
  route: string;
  method: string;
  status: number;
  durationMs: number;
  /** The request's trace id when tracing is on. */
  traceId?: string;
  /** The response's `content-length`, when it had one (streams have none). */
  responseBytes?: number;
}

export interface HttpAppOptions {
  bodyLimit?: number;
  /** Deepest nesting of arrays and objects accepted in a JSON body or JSON header (default 128). */
  jsonDepth?: number;
  /** Headers whose value is JSON (e.g. `x-openrouter-route`), held to `jsonDepth` like bodies. */
  jsonHeaders?: readonly string[];
  /** Accept the caller's `x-request-id` when it is well-formed, else make one. */
  requestIds?: boolean;
  /** A server span per request (child of the caller's `traceparent`), active while the handler runs. */
  tracing?: Tracing;
  /** Requests, latency and in-flight requests by route pattern. */
  metrics?: HttpMetrics;
  /** Told when each response has ended (on the tick after, so `close` listeners of the handler ran first). */
  onResponded?: (exchange: RespondedExchange) => void;
}

/** Probes and scrapes: measured, never traced. */
const UNTRACED = new Set(['/health', '/ready', '/metrics']);

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export const DEFAULT_JSON_DEPTH = 128;

/**
 * Whether JSON text nests arrays and objects deeper than `limit`, found by one pass over the text
 * (no recursion, no parse). Deeper values would overflow the stack of every recursive walk that
 * follows (JSON.stringify, schema checks), so they are refused before parsing.
 */
export function jsonTooDeep(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // a backslash escapes the next character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

/** The 400 for JSON nested deeper than `limit` (`what`: "The request body", "The frame"). */
export function tooDeep(what: string, param: string | undefined, limit: number): GatewayError {
  return new GatewayError('bad_request', `${what} is nested too deeply: at most ${limit} levels of arrays and objects are accepted.`, { param, code: 'json_too_deep' });
}

/** The answer to a request the server cannot serve (any more) because it is shutting down. */
function shuttingDown(): GatewayError {
  return new GatewayError('unavailable', 'The server is shutting down; send the request again.', { code: 'shutting_down' });
}

function isValidJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether parsed JSON holds a key a body may not have anywhere (`__proto__`, or `constructor`
 * holding `prototype`): what the HTTP parser refuses, for JSON parsed elsewhere (a socket's frame).
 */
export function hasForbiddenJsonKey(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return false;
  try {
    secureJson.scan(value as Record<string, unknown>, { protoAction: 'error', constructorAction: 'error' });
    return false;
  } catch {
    return true;
  }
}

/** The 400 for a body holding a key `hasForbiddenJsonKey` refuses. */
export function forbiddenJsonKey(): GatewayError {
  return new GatewayError('bad_request', 'The JSON body contains a `__proto__` key, or a `constructor` key holding `prototype`; these keys are refused anywhere in a body.', { code: 'forbidden_json_key' });
}

/** An error in the shape of the API the request called (Anthropic's on `/v1/messages`, OpenAI's elsewhere). */
function sendError(request: FastifyRequest, reply: FastifyReply, error: GatewayError, headers: Record<string, string> = {}, requestId?: string): void {
  const response = toClientError(request.url, error, requestId);
  void reply.code(response.status).headers({ ...response.headers, ...headers }).send(response.body);
}

/** Errors Fastify raises while routing, before any handler or Nest filter runs, in OpenAI's shape. */
function frameworkError(error: FastifyError): GatewayError {
  switch (error.code) {
    case 'FST_ERR_BAD_URL':
      return new GatewayError('bad_request', 'The request URL is not valid: it holds a malformed percent-encoding.', { code: 'invalid_url' });
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return new GatewayError('bad_request', 'A path segment of the request URL is too long.', { code: 'url_too_long' });
    default:
      return GatewayError.from(error);
  }
}

/**
 * Errors of the HTTP parser (headers too large, malformed request line, slow headers) happen before
 * there is a request; the answer is written to the socket, which is then closed, as Node does.
 * With request ids, the answer gets a fresh one: the caller's header was never read.
 */
const clientErrorHandler = (requestIds: boolean) => (error: ConnectionError, socket: Socket): void => {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const e =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? new GatewayError('bad_request', 'The request headers are too large.', { code: 'headers_too_large' })
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? new GatewayError('bad_request', 'The request was not received in time.', { code: 'request_timeout' })
        : new GatewayError('bad_request', 'The request is not valid HTTP.', { code: 'invalid_request' });
  const { status, body } = toOpenAIError(e);
  const text = JSON.stringify(body);
  const requestId = requestIds ? `X-Request-Id: ${randomUUID()}\r\n` : '';
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\n${requestId}Connection: close\r\n\r\n${text}`);
  }
  socket.destroy(error);
};

/** Boots a NestJS module on Fastify and listens; the caller owns `close()`. */
export async function startHttpApp(module: Type<unknown> | DynamicModule, listen: Listen, logger: Logger, options: HttpAppOptions = {}): Promise<{ app: NestFastifyApplication; port: number }> {
  const jsonDepth = options.jsonDepth ?? DEFAULT_JSON_DEPTH;
  const adapter = new FastifyAdapter({
    bodyLimit: options.bodyLimit ?? 1024 * 1024,
    // A path parameter may be an id of 128 characters (an experiment's name), percent-encoded.
    routerOptions: { maxParamLength: 512 },
    logger: false,
    // Answered by the onRequest hook below instead, in OpenAI's error shape.
    return503OnClosing: false,
    // Raised before the onRequest hooks, so the request id header is set here.
    frameworkErrors: (error: FastifyError, request: FastifyRequest, reply: FastifyReply) =>
      options.requestIds ? sendError(request, reply, frameworkError(error), { 'x-request-id': String(request.id) }, String(request.id)) : sendError(request, reply, frameworkError(error)),
    clientErrorHandler: clientErrorHandler(options.requestIds === true),
    forceCloseConnections: 'idle',
    requestIdHeader: false,
    genReqId: options.requestIds
      ? (req: IncomingMessage) => {
          const given = req.headers['x-request-id'];
          return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
        }
      : undefined,
  });
  const instance = adapter.getInstance();
  // JSON bodies must be valid UTF-8: bytes that are not are refused instead of silently replaced.
  const parseJson = instance.getDefaultJsonParser('error', 'error');
  instance.removeContentTypeParser('application/json');
  instance.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    const bytes = body as Buffer;
    if (!isUtf8(bytes)) {
      done(Object.assign(new Error('The request body is not valid UTF-8.'), { statusCode: 400 }), undefined);
      return;
    }
    const text = bytes.toString('utf8');
    if (jsonTooDeep(text, jsonDepth)) {
      done(tooDeep('The request body', undefined, jsonDepth), undefined);
      return;
    }
    parseJson(request, text, (error, value) => {
      // Fastify says only "not valid JSON" when secure-json-parse refuses a `__proto__` key (or a
      // `constructor` holding `prototype`) in valid JSON: say which keys, so the client can act.
      if (error && isValidJson(text)) done(forbiddenJsonKey(), undefined);
      else done(error, value);
    });
  });
  if (options.requestIds) {
    adapter.getInstance().addHook('onRequest', async (request, reply) => {
      void reply.header('x-request-id', request.id);
    });
  }
  // Measured and logged from here on, the refusals below included.
  observeExchanges(instance, options);
  // While the server drains at shutdown, new requests on open connections are turned away.
  let closing = false;
  // One signal for every request (one listener per request that honours it, hence no limit).
  const graceOver = new AbortController();
  setMaxListeners(0, graceOver.signal);
  instance.decorateRequest('shutdownSignal', { getter: () => graceOver.signal });
  instance.decorate('endAnswersForShutdown', () => graceOver.abort(shuttingDown()));
  instance.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  // One hook for both checks, in callback style: no promise per request on the hot path.
  const jsonHeaders = options.jsonHeaders ?? [];
  instance.addHook('onRequest', (request, reply, done) => {
    if (closing) {
      sendError(request, reply, shuttingDown(), { connection: 'close' }, options.requestIds ? String(request.id) : undefined);
      return;
    }
    for (const name of jsonHeaders) {
      const value = request.headers[name];
      if (typeof value === 'string' && jsonTooDeep(value, jsonDepth)) return done(tooDeep(`The ${name} header`, name, jsonDepth));
    }
    done();
  });
  const app = await NestFactory.create<NestFastifyApplication>(module, adapter, { logger: new HttpAppNestLogger(logger), abortOnError: false, bufferLogs: false, bodyParser: false });
  await app.listen(listen.port, listen.host);
  const address = app.getHttpServer().address();
  const port = typeof address === 'object' && address ? address.port : listen.port;
  return { app, port };
}

/**
 * Nest logs a failed listen (`Error: listen EADDRINUSE: …`) at error before it rejects with it; the
 * service's start reports that rejection, naming the listener and its setting, so Nest's own line
 * is a detail.
 */
class HttpAppNestLogger extends NestPinoLogger {
  override error(message: unknown, trace?: string, context?: string): void {
    if (context === 'NestApplication' && /^Error: listen E/.test(String(message))) super.debug(message, context);
    else super.error(message, trace, context);
  }
}

function observeExchanges(instance: FastifyInstance, options: HttpAppOptions): void {
  const { metrics, onResponded } = options;
  const tracing = options.tracing?.enabled ? options.tracing : undefined;
  if (!metrics && !onResponded && !tracing) return;
  const spans = new WeakMap<FastifyRequest, ReturnType<Tracing['tracer']['startSpan']>>();
  instance.addHook('onRequest', async (request, reply) => {
    const started = performance.now();
    const route = request.routeOptions.url ?? 'unmatched';
    const method = request.method;
    metrics?.started(route);
    const span = tracing && !UNTRACED.has(route)
      ? tracing.tracer.startSpan(`${method} ${route}`, { kind: SpanKind.SERVER, attributes: { 'http.request.method': method, 'http.route': route, 'openrouter.request_id': String(request.id) } }, tracing.extract(request.headers))
      : undefined;
    if (span && tracing) {
      spans.set(request, span);
      request.traceHeaders = tracing.headers(trace.setSpan(ROOT_CONTEXT, span));
    }
    reply.raw.once('close', () => {
      const status = reply.raw.statusCode;
      const durationMs = performance.now() - started;
      metrics?.ended({ route, method, status, durationSeconds: durationMs / 1000 });
      if (span) {
        span.setAttribute('http.response.status_code', status);
        if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
        if (!reply.raw.writableFinished) span.setAttribute('openrouter.cancelled', true);
        span.end();
      }
      if (onResponded) {
        const traceId = span?.spanContext().traceId;
        const length = Number(reply.raw.getHeader('content-length'));
        setImmediate(() => onResponded({ request, route, method, status, durationMs, ...(traceId ? { traceId } : {}), ...(Number.isFinite(length) && length >= 0 ? { responseBytes: length } : {}) }));
      }
    });
  });
  if (tracing) {
    // The handler (guards included) runs with the request's span active, so its outgoing calls are children.
    instance.addHook('preHandler', (request, _reply, done) => {
      const span = spans.get(request);
      if (span) context.with(trace.setSpan(ROOT_CONTEXT, span), done);
      else done();
    });
  }
}

export type { INestApplication };

/** How long answers ended at the shutdown deadline get to reach their clients before their connections are cut. */
const SHUTDOWN_END_MS = 1_000;

/**
 * Closes an HTTP app within a grace: it stops accepting at once and lets the requests in flight
 * finish (with `alsoDraining`, e.g. WebSocket sessions, closed alongside under the same grace).
 * When the grace is over, every request's `shutdownSignal` aborts: a streamed answer ends with a
 * `shutting_down` error in its API's format, which its client reads as a clear end rather than a
 * broken connection. The connections still open `endMs` later (a client that does not read, a
 * handler that does not honour the signal, an idle keep-alive connection) are cut; a handler sees
 * that as its client going away, so a request cut this way ends as cancelled, like any abandoned
 * request. Resolves with whether the grace was not enough.
 */
export async function closeWithinGrace(app: INestApplication, graceMs: number, alsoDraining: Array<Promise<void>> = [], endMs = SHUTDOWN_END_MS): Promise<boolean> {
  const drained = Promise.all([app.close(), ...alsoDraining]).then(() => true as const);
  if (await settlesWithin(drained, graceMs)) return false;
  (app.getHttpAdapter().getInstance() as FastifyInstance).endAnswersForShutdown?.();
  if (!(await settlesWithin(drained, endMs))) (app.getHttpServer() as import('node:http').Server).closeAllConnections();
  await drained;
  return true;
}

/** Whether `done` resolves within `ms`. */
async function settlesWithin(done: Promise<true>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([done, expired]);
  } finally {
    clearTimeout(timer);
  }
}
