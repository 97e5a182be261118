import { STATUS_CODES, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { randomUUID } from 'node:crypto';
import { context as otelContext, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { WebSocketServer, type WebSocket } from 'ws';
import type { chatv1, routerv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { Tracing, type Context, type Span } from '@openrouter/observability';
import { parseChatRequest, toOpenAICompletion, toOpenAIError } from '@openrouter/openai-wire';
import { forbiddenJsonKey, hasForbiddenJsonKey, jsonTooDeep, tooDeep } from '@openrouter/service-runtime';
import type { AccessService, KeyChange, TrafficAttributes } from '../access/access.service';
import { hashesOf, type ApiKeyRecord } from '../access/key-record';
import { RateLimitedError, type Admission } from '../access/rate-limiter';
import { bodyEndUser, trafficAttributes } from '../auth/api-key.guard';
import { cacheStatusHeaders } from '../cache/cache-replies';
import { ChatAnswerStoring } from '../cache/chat-answer-storing';
import type { ChatCompletionKeeping, StoredChatCompletions } from '../chat-store/stored-chat-completions';
import type { CachePlan, ResponseCache } from '../cache/response-cache';
import { socketHitFrames, socketRequestCacheHeaders, upgradeCacheHeaders } from '../cache/socket-cache';
import { asGatewayError } from '../openai-exception.filter';
import type { RouterPort } from '../router.port';
import { clientChunks, openChat, routeHeaders } from '../routes/chat.service';
import { checkChatBounds, type RequestBounds } from '../routes/request-bounds';
import type { BudgetReservation, BudgetService } from '../budgets/budget.service';
import type { MeteredExchange, UsageRecorder, UsageTrack } from '../usage/usage-recorder';
import { clientFrameSchema, WS_PROTOCOL, type ServerFrame } from './ws-protocol';
import { Liveness, osQueuedBytes } from './ws-liveness';
import { asksForWebSocket, handBackToHttp } from './upgrade-hand-back';
import { upgradeKey } from './upgrade-key';

const PATH = '/v1/ws';
/**
 * Close code for a socket whose key was revoked or expired (1008: policy violation), or was opened
 * with a secret a rotation replaced, once that secret's grace ended.
 */
const KEY_REVOKED_CLOSE = 1008;
/** The longest a timer may wait (Node's limit); an end further off is waited for in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Close code for a socket whose client does not read what it is sent (1008: policy violation). */
const NOT_READING_CLOSE = 1008;

interface Connection {
  socket: WebSocket;
  /** The key the socket was opened with, checked again on every request and when it changes. */
  key: string;
  traffic: TrafficAttributes;
  /** The address the upgrade came from: the key's allow lists are checked against it on every request. */
  address: string | undefined;
  /** The upgrade's response cache headers (`x-openrouter-cache`, `x-openrouter-cache-ttl`): its requests' unless a frame sends its own. */
  cacheHeaders: Record<string, string>;
  record: ApiKeyRecord;
  context: routerv1.RequestContext;
  /**
   * Set while the socket's secret has an end (the key's expiry, or the grace of a secret a rotation
   * replaced): fires then, to end the socket then rather than at its next request. Cleared when the
   * socket closes.
   */
  graceTimer: NodeJS.Timeout | undefined;
  /** The client's trace context, from the upgrade's `traceparent`/`tracestate` headers: the parent of every request's span. */
  trace: UpgradeTrace;
  streams: Map<string, AbortController>;
  /** Resolves when the last frame sent has been handed to the network, or could not be. */
  lastWrite: Promise<void>;
  /** Resolves when the socket closed. */
  closed: Promise<void>;
  /** Whether the client is still there: it answers pings, or takes what it is sent. */
  liveness: Liveness;
  /**
   * Past this many bytes sent but not yet taken by the client, a stream waits before it takes its
   * next chunk, and a new request waits before it starts: a client that does not read slows its own
   * answers down (the provider stream with them) instead of filling the gateway's memory.
   */
  highWaterBytes: number;
  /**
   * Past this many bytes waiting for the client, the socket is closed (1008) and its requests are
   * cancelled. Streams wait at the high-water mark, so only frames that cannot wait (whole answers,
   * errors of requests sent regardless) can reach it.
   */
  maxBufferedBytes: number;
}

/**
 * Chat over one WebSocket: authenticated at the upgrade, then any number of requests in flight
 * at once, each tagged with the client's id, each cancellable. Every request passes the same
 * validation, rate limits and routing as over HTTP.
 */
export class WsGateway {
  private readonly server: WebSocketServer;
  private readonly connections = new Set<Connection>();
  /** Set at shutdown: requests still arriving are refused, those in flight may finish. */
  private closing = false;
  /** Woken whenever a request ends, while shutdown waits for the last ones. */
  private onRequestEnd: (() => void) | undefined;
  private readonly heartbeat: NodeJS.Timeout;

  constructor(
    private readonly access: AccessService,
    private readonly router: RouterPort,
    private readonly bounds: RequestBounds,
    private readonly usage: UsageRecorder,
    private readonly budgets: BudgetService | undefined,
    /** HTTP's limits on a request body, for a frame: its size (a larger one closes the socket with 1009) and JSON depth. */
    private readonly limits: { bodyBytes: number; jsonDepth: number },
    /** Each request on a socket is a server span, as each HTTP request is. */
    private readonly tracing: Tracing = Tracing.disabled(),
    /** The response cache (`cache.enabled`), as over HTTP; absent: every request bypasses it. */
    private readonly cache?: ResponseCache,
    /** Stored chat completions (`chatCompletions.store`), as over HTTP; absent: `store` goes to the provider as sent. */
    private readonly kept?: StoredChatCompletions,
  ) {
    this.server = new WebSocketServer({ noServer: true, maxPayload: limits.bodyBytes, handleProtocols: (protocols) => (protocols.has(WS_PROTOCOL) ? WS_PROTOCOL : false) });
    access.onKeyChange((change) => this.onKeyChange(change));
    // A peer that vanished without closing (a dropped network, a suspended laptop) would otherwise hold its socket for good.
    this.heartbeat = setInterval(() => this.beat(), bounds.webSocketHeartbeatMs);
    this.heartbeat.unref();
  }

  /**
   * Takes the WebSocket upgrades of its path. Every other request carrying `Upgrade:` (Node routes
   * them all here once anything listens) goes back to the HTTP API, answered as plain HTTP.
   */
  attach(http: Server): void {
    http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const path = (req.url ?? '').split('?')[0];
      if (path === PATH && asksForWebSocket(req)) void this.upgrade(req, socket, head);
      else handBackToHttp(http, req, socket, head);
    });
  }

  /**
   * A socket whose client neither answered a ping nor took more of what it was sent since the last
   * beat is cut (see `Liveness`); every other one is pinged again, answered or not. An idle socket
   * gets only these pings; a busy one also one every `PING_EVERY_BYTES` it is sent (`send`).
   */
  private beat(): void {
    for (const connection of this.connections) {
      if (connection.liveness.beat()) connection.socket.ping();
      else dropConnection(connection);
    }
  }

  /**
   * A key changed: the sockets opened with it check it again. After a resync (this replica's
   * pub/sub connection came back, and a revocation may have been missed meanwhile) every socket does.
   * A change is announced under each hash of the key, one notice each, and the key is forgotten
   * under one hash at a time: a socket opened with a rotated key's earlier secret is matched by that
   * secret's hash too, so it checks again once that secret's cached copy is gone (a second rotation
   * refuses it at once).
   */
  private onKeyChange(change: KeyChange): void {
    for (const connection of this.connections) {
      if (change.kind === 'resync' || hashesOf(connection.record).includes(change.hash)) void this.recheck(connection);
    }
  }

  private async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', () => socket.destroy());
    try {
      const key = upgradeKey(req.headers);
      const traffic = trafficAttributes(req.headers, undefined);
      const address = this.access.clients.of(req);
      const authenticated = await this.access.authenticate(key, randomUUID(), traffic, address);
      if (!authenticated) throw new GatewayError('auth_failed', 'Incorrect API key provided.', { code: 'invalid_api_key' });
      const upgradeTrace = traceOf(this.tracing, req);
      const cacheHeaders = upgradeCacheHeaders(req.headers);
      this.server.handleUpgrade(req, socket, head, (ws) => this.serve(ws, socket, { key, traffic, address, cacheHeaders }, authenticated.record, authenticated.context, upgradeTrace));
    } catch (error) {
      refuse(socket, asGatewayError(error));
    }
  }

  private serve(socket: WebSocket, transport: Duplex, caller: Pick<Connection, 'key' | 'traffic' | 'address' | 'cacheHeaders'>, record: ApiKeyRecord, context: routerv1.RequestContext, upgradeTrace: UpgradeTrace): void {
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    const connection: Connection = {
      socket,
      ...caller,
      record,
      context,
      graceTimer: undefined,
      trace: upgradeTrace,
      streams: new Map(),
      lastWrite: Promise.resolve(),
      closed,
      liveness: new Liveness({ osQueued: () => osQueuedBytes(transport) }),
      highWaterBytes: this.bounds.webSocketHighWaterBytes,
      maxBufferedBytes: this.bounds.webSocketMaxBufferedBytes,
    };
    this.connections.add(connection);
    socket.on('pong', () => connection.liveness.pong());
    socket.on('message', (data, isBinary) => {
      if (isBinary) return send(connection, errorFrame(null, new GatewayError('bad_request', 'Frames are JSON text.', { code: 'invalid_frame' })));
      void this.onFrame(connection, data.toString());
    });
    socket.on('close', () => {
      clearTimeout(connection.graceTimer);
      for (const controller of connection.streams.values()) controller.abort();
      connection.streams.clear();
      this.connections.delete(connection);
    });
    socket.on('error', () => socket.terminate());
    this.watchGrace(connection);
  }

  private async onFrame(connection: Connection, text: string): Promise<void> {
    // A socket the server is closing serves nothing more, whatever its peer still sends.
    if (connection.socket.readyState !== connection.socket.OPEN) return;
    // Held to the depth an HTTP body is, before parsing it (JSON.parse recurses): the body sits one
    // level inside the frame, and only the body nests.
    if (jsonTooDeep(text, this.limits.jsonDepth + 1)) return send(connection, errorFrame(null, tooDeep("The frame's body", 'body', this.limits.jsonDepth)));
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return send(connection, errorFrame(null, new GatewayError('bad_request', 'A frame is not valid JSON.', { code: 'invalid_json' })));
    }
    const claimed = typeof (json as { id?: unknown } | null)?.id === 'string' ? (json as { id: string }).id : null;
    // A refusal is tagged with the frame's id, unless a request still runs under it: the refusal
    // would read as that request's end.
    const refuse = (error: GatewayError): void =>
      send(connection, claimed !== null && connection.streams.has(claimed) ? { ...errorFrame(null, error), rejected_id: claimed } : errorFrame(claimed, error));
    // The keys an HTTP body may not hold anywhere, refused here as there.
    if (hasForbiddenJsonKey(json)) return refuse(forbiddenJsonKey());
    const parsed = clientFrameSchema.safeParse(json);
    if (!parsed.success) {
      return refuse(new GatewayError('bad_request', 'A frame is {"type":"chat.completions","id":"…","body":{…}} (with an optional "headers":{"x-openrouter-cache":"…"} of string values) or {"type":"cancel","id":"…"}.', { code: 'invalid_frame', param: 'type' }));
    }
    const frame = parsed.data;
    if (frame.type === 'cancel') {
      connection.streams.get(frame.id)?.abort();
      return;
    }
    if (this.closing) {
      return send(connection, errorFrame(frame.id, new GatewayError('unavailable', 'The server is shutting down; send the request again on a new socket.', { code: 'shutting_down' })));
    }
    if (connection.streams.has(frame.id)) {
      return refuse(new GatewayError('bad_request', `A request with the id "${frame.id}" is already in flight.`, { code: 'duplicate_id', param: 'id' }));
    }
    if (connection.streams.size >= this.bounds.maxWebSocketStreams) {
      return send(connection, errorFrame(frame.id, new GatewayError('rate_limited', `At most ${this.bounds.maxWebSocketStreams} requests may be in flight on one socket.`, { code: 'too_many_streams' })));
    }
    const controller = new AbortController();
    connection.streams.set(frame.id, controller);
    const span = this.requestSpan(connection, frame.id);
    // The status the request would have had over HTTP, for its span.
    let status = 200;
    try {
      await inSpan(span, connection.trace.parent, async () => {
        const refusal = await this.refusal(connection);
        if (!refusal) return this.chat(connection, frame.id, frame.body, controller.signal, frame.headers);
        status = toOpenAIError(refusal).status;
        this.cut(connection, frame.id, refusal);
      });
    } catch (error) {
      const failure = errorFrame(frame.id, controller.signal.aborted ? cancelled() : asGatewayError(error));
      status = failure.status;
      send(connection, failure);
    } finally {
      endSpan(span, status);
      connection.streams.delete(frame.id);
      this.onRequestEnd?.();
    }
  }

  /**
   * A server span for one request of a socket, as an HTTP request has: child of the client's trace
   * context at the upgrade (its own trace without one). None when tracing is off.
   */
  private requestSpan(connection: Connection, id: string): Span | undefined {
    if (!this.tracing.enabled) return undefined;
    const attributes = { 'http.route': PATH, 'openrouter.request_id': requestIdOf(connection, id) };
    return this.tracing.tracer.startSpan(`WS ${PATH} chat.completions`, { kind: SpanKind.SERVER, attributes }, connection.trace.parent);
  }

  /**
   * One request of a socket, metered, limited and budgeted exactly as over HTTP: one usage record
   * when it ends, whatever the ending (answered, failed, cancelled, socket closed).
   */
  private async chat(connection: Connection, id: string, body: unknown, signal: AbortSignal, frameHeaders?: Record<string, string>): Promise<void> {
    // The end user, as over HTTP: the upgrade's x-openrouter-user header, else each request's own.
    const endUser = connection.traffic.endUser ?? bodyEndUser(body) ?? '';
    const context = { ...connection.context, endUser, requestId: requestIdOf(connection, id) };
    // The request's span (active here) when tracing is on, as over HTTP; else the client's own headers.
    const traceHeaders = this.tracing.enabled ? this.tracing.headers() : connection.trace.headers;
    let reservation: BudgetReservation | undefined;
    let admission: Admission | undefined;
    let outcome = { cancelled: true, status: 499 };
    // Nothing new starts while the client has not read what it was sent.
    await drained(connection, signal);
    // Cancelled while it waited: it never started, so it is neither admitted nor metered.
    stopIfGone(connection, signal);
    const listeners: Array<() => void> = [];
    const exchange: MeteredExchange = {
      id: context.requestId,
      endpoint: PATH,
      body,
      receivedAtMs: Date.now(),
      context: () => context,
      budget: () => reservation,
      admission: () => admission,
      traceHeaders: () => traceHeaders,
      onEnd: (listener) => void listeners.push(listener),
      outcome: () => outcome,
    };
    // Metered from admission on, as over HTTP: a request refused by its rate limit or budget makes no record.
    let usage: UsageTrack | undefined;
    let plan: CachePlan | undefined;
    let storing: ChatAnswerStoring | undefined;
    let keeping: ChatCompletionKeeping | undefined;
    let streamed = false;
    try {
      const model = typeof (body as { model?: unknown } | null)?.model === 'string' ? (body as { model: string }).model : '';
      const admitted = await this.access.admit(connection.record, context, model, body);
      admission = admitted;
      if (this.budgets) {
        // Refused by its budget: it used nothing, and gets its rate-limit estimate back.
        reservation = await this.budgets.reserve({ requestId: context.requestId, tenant: context, body, receivedAtMs: exchange.receivedAtMs }).catch((error: unknown) => {
          void admitted.settle(0);
          throw error;
        });
      }
      // Cancelled while it was admitted, stopped as HTTP stops a client gone by then: it reached no
      // provider, so it is not metered; its token estimate goes back, its reservation is released below.
      if (signal.aborted) {
        void admitted.settle(0);
        throw cancelled();
      }
      usage = this.usage.trackExchange(exchange, 'chat');
      const request: chatv1.ChatRequest = parseChatRequest(body);
      checkChatBounds(request, this.bounds);
      streamed = request.stream;
      // `store: true` kept by the gateway, as over HTTP (docs/chat-completions-store.md).
      keeping = request.store === true && this.kept ? await this.kept.keeping(connection.record, context, request, body) : undefined;
      const clientWantsUsage = request.streamOptions?.includeUsage === true;
      // The response cache, as over HTTP (docs/caching.md): the upgrade's cache headers, or the frame's own.
      plan = await this.cache?.planFor('/v1/chat/completions', context, body, socketRequestCacheHeaders(connection.cacheHeaders, frameHeaders), connection.record);
      const hit = plan && (await this.cache?.lookup(plan, context.requestId, signal));
      if (hit?.completion) {
        const frames = socketHitFrames(id, request, clientWantsUsage, { ...hit, completion: hit.completion }, usage, { ...admission.headers, 'x-request-id': context.requestId }, keeping);
        for (const [i, frame] of frames.entries()) {
          // As a stream's chunks: each waits for the client to have read what it was sent before.
          if (i > 0) {
            await drained(connection, signal);
            stopIfGone(connection, signal);
          }
          send(connection, frame);
        }
        outcome = { cancelled: false, status: 200 };
        if (!request.stream) keeping?.whole(frames[0]?.type === 'completion' ? frames[0].data : undefined);
        else keeping?.streamEnded(!signal.aborted, usage);
        return;
      }
      if (request.stream) request.streamOptions = { extraJson: '', ...request.streamOptions, includeUsage: true };
      const opened = await usage.guard(openChat(this.router, context, request, signal, usage.calling));
      usage.routed(opened.decision);
      const headers = { ...routeHeaders(opened.decision), ...cacheStatusHeaders(plan), ...admission.headers, 'x-request-id': context.requestId };
      const served = opened.decision.model;
      storing = new ChatAnswerStoring(this.cache, plan, { id: context.requestId, budget: reservation }, opened.decision, usage, request.stream);
      if (!request.stream) {
        const completion = opened.first.completion;
        if (!completion) throw new GatewayError('upstream_error', 'The provider streamed an answer that was asked for whole.');
        const answered = usage.completion(completion);
        const data = usage.decorate(toOpenAICompletion(answered, served));
        send(connection, { type: 'completion', id, data: keeping ? keeping.stamp(data) : data, headers: { ...headers, ...usage.costHeaders() } });
        outcome = { cancelled: false, status: 200 };
        storing.whole(answered);
        keeping?.whole(data);
        return;
      }
      send(connection, { type: 'start', id, headers });
      for await (const chunk of clientChunks(opened, { usage, budget: reservation, clientWantsUsage, observe: storing.observe })) {
        send(connection, { type: 'chunk', id, data: keeping ? keeping.chunk(chunk) : chunk });
        await drained(connection, signal);
        // What the provider already sent (held in the pipeline) is not played out to nobody: the
        // request ends as cancelled, not as answered.
        stopIfGone(connection, signal);
      }
      send(connection, { type: 'done', id });
      outcome = { cancelled: false, status: 200 };
      storing.streamEnded(!signal.aborted);
      keeping?.streamEnded(!signal.aborted, usage);
    } catch (error) {
      storing?.streamEnded(false);
      // A stream (answered, or replayed from the cache) that failed or was cancelled is not kept.
      if (usage && streamed) keeping?.streamEnded(false, usage);
      usage?.failed(error);
      outcome = { cancelled: signal.aborted, status: signal.aborted ? 499 : toOpenAIError(asGatewayError(error)).status };
      throw error;
    } finally {
      // Whatever happened: requests waiting for this one's answer go on by themselves unless it is being stored.
      if (plan) this.cache?.abandon(plan);
      for (const listener of listeners) listener();
      // After the usage record settled it with the real cost; a no-op then, a release otherwise.
      const held = reservation;
      if (held) setImmediate(() => void held.release());
    }
  }

  /**
   * Why the socket's key may no longer be used, or undefined when it still may: revoked, deleted or
   * expired (401), or no longer allowed from the socket's address (403 `ip_not_allowed`: an allow
   * list added or changed since the upgrade). The key and its context as they are now replace the
   * socket's: a change of the key (its allowed models, policy, limits, tags) or of its tenants
   * applies to the socket's next request, as to HTTP's next one. Throws when the key store cannot be
   * read.
   */
  private async refusal(connection: Connection): Promise<GatewayError | undefined> {
    let current: Awaited<ReturnType<AccessService['authenticate']>>;
    try {
      current = await this.access.authenticate(connection.key, connection.context.requestId, connection.traffic, connection.address);
    } catch (error) {
      if (error instanceof GatewayError && error.code === 'ip_not_allowed') return error;
      throw error;
    }
    if (!current) return revoked();
    connection.record = current.record;
    connection.context = current.context;
    this.watchGrace(connection);
    return undefined;
  }

  /**
   * The socket is checked again when its secret stops being accepted, and so ended then, as a
   * revoked key's is: when the key expires (`expires_at`), or, for the secret a rotation replaced
   * (opened with it, or rotated since), when that secret's grace ends, whichever comes first. Set
   * again from the record at every check: a later rotation (which ends the grace at once, or starts
   * one for what was the current secret) or a changed expiry moves or drops it.
   */
  private watchGrace(connection: Connection): void {
    clearTimeout(connection.graceTimer);
    connection.graceTimer = undefined;
    if (connection.socket.readyState !== connection.socket.OPEN) return;
    const grace = this.access.keys.graceEnd(connection.key, connection.record)?.getTime();
    const expiry = connection.record.expiresAt === undefined ? undefined : Date.parse(connection.record.expiresAt);
    const ends = [grace, expiry].filter((t): t is number => t !== undefined && Number.isFinite(t));
    if (ends.length === 0) return;
    // At least 1 ms: a timer that fired a hair early finds the secret still accepted and waits the rest.
    const delay = Math.min(Math.max(Math.min(...ends) - Date.now(), 1), MAX_TIMER_MS);
    connection.graceTimer = setTimeout(() => {
      connection.graceTimer = undefined;
      void this.recheck(connection);
    }, delay);
    // The socket keeps the process up while it is open, not this timer.
    connection.graceTimer.unref();
  }

  /** After a change to the socket's key: a key no longer valid ends the socket and its streams. */
  private async recheck(connection: Connection): Promise<void> {
    if (connection.socket.readyState !== connection.socket.OPEN) return;
    try {
      const refusal = await this.refusal(connection);
      if (refusal) this.cut(connection, null, refusal);
    } catch {
      // The key store is unreachable: the next request on the socket checks again.
    }
  }

  /** Tells the client why, then ends its requests (each still metered) and closes the socket. */
  private cut(connection: Connection, id: string | null, refusal: GatewayError): void {
    send(connection, errorFrame(id, refusal));
    closeConnection(connection, KEY_REVOKED_CLOSE, refusal.code === 'ip_not_allowed' ? 'address not allowed' : 'api key revoked or expired');
  }

  /**
   * Shutdown: requests arriving from now on are refused (503 shutting_down), those in flight have
   * `graceMs` to finish; what is left then is cancelled (each gets its 499 error frame and is
   * metered as cancelled), and every socket is closed with 1001.
   */
  async close(graceMs = 0): Promise<void> {
    this.closing = true;
    clearInterval(this.heartbeat);
    await this.untilIdle(graceMs);
    // What is left is cancelled; each request sends its 499 frame as it unwinds, before its socket closes.
    for (const connection of this.connections) for (const controller of connection.streams.values()) controller.abort();
    await this.untilIdle(1_000);
    for (const connection of this.connections) connection.socket.close(1001, 'server shutting down');
    await within(Promise.all([...this.connections].map((c) => c.closed)), 1_000);
    for (const connection of this.connections) connection.socket.terminate();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Until no request is in flight on any socket, or `ms` passed. */
  private async untilIdle(ms: number): Promise<void> {
    const inFlight = (): number => [...this.connections].reduce((n, c) => n + c.streams.size, 0);
    if (inFlight() === 0 || ms <= 0) return;
    await within(new Promise<void>((resolve) => (this.onRequestEnd = () => inFlight() === 0 && resolve())), ms);
    this.onRequestEnd = undefined;
  }
}

/** Waits for `promise`, or `ms`, whichever comes first. */
async function within(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

/** A refused upgrade, answered as HTTP answers the same error: its status, headers (`retry-after`) and OpenAI's error body. */
function refuse(socket: Duplex, error: GatewayError): void {
  const { status, headers, body } = toOpenAIError(error);
  const text = JSON.stringify(body);
  const lines = Object.entries({ ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), connection: 'close' }).map(([name, value]) => `${name}: ${value}\r\n`);
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n${lines.join('')}\r\n${text}`);
}

/** The client's trace context, read once from a socket's upgrade request. */
interface UpgradeTrace {
  /** The remote parent of the socket's request spans; the root context without one, or with tracing off. */
  parent: Context;
  /** Its `traceparent`/`tracestate` headers, carried on usage events when tracing is off (as an HTTP request's are). */
  headers: Record<string, string>;
}

function traceOf(tracing: Tracing, req: IncomingMessage): UpgradeTrace {
  const headers: Record<string, string> = {};
  for (const name of ['traceparent', 'tracestate'] as const) {
    const value = req.headers[name];
    if (typeof value === 'string' && value.length <= 512) headers[name] = value;
  }
  return { parent: tracing.extract(headers), headers };
}

/** Runs `work` with `span` active (child calls, the router's included, are its children); just `work` without one. */
function inSpan<T>(span: Span | undefined, parent: Context, work: () => Promise<T>): Promise<T> {
  return span ? otelContext.with(trace.setSpan(parent, span), work) : work();
}

/** Ends a request's span as an HTTP request's ends: its status, an error from 500 on, and whether it was cancelled. */
function endSpan(span: Span | undefined, status: number): void {
  if (!span) return;
  span.setAttribute('http.response.status_code', status);
  if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
  if (status === 499) span.setAttribute('openrouter.cancelled', true);
  span.end();
}

/** A request's id: the socket's (from its upgrade), then the client's id for the request. */
function requestIdOf(connection: Connection, id: string): string {
  return `${connection.context.requestId}:${id}`.slice(0, 200);
}

/**
 * An error frame: the status, OpenAI's error body, and the headers HTTP would answer the same error
 * with when there are any (`retry-after`, `retry-after-ms`, and a rate-limit refusal's
 * `x-ratelimit-*` and `x-should-retry`, which HTTP sets from the same error in `ApiKeyGuard`).
 */
function errorFrame(id: string | null, error: GatewayError): Extract<ServerFrame, { type: 'error' }> {
  const response = toOpenAIError(error);
  const headers = { ...(error instanceof RateLimitedError ? error.headers : {}), ...response.headers };
  return { type: 'error', id, status: response.status, error: response.body, ...(Object.keys(headers).length > 0 ? { headers } : {}) };
}

/** The error of a request cancelled by its client, or by its socket closing. */
function revoked(): GatewayError {
  return new GatewayError('auth_failed', 'The API key was revoked or has expired.', { code: 'invalid_api_key' });
}

function cancelled(): GatewayError {
  return new GatewayError('cancelled', 'The request was cancelled.');
}

function send(connection: Connection, frame: ServerFrame): void {
  const socket = connection.socket;
  if (socket.readyState !== socket.OPEN) return;
  const text = JSON.stringify(frame);
  connection.lastWrite = new Promise<void>((resolve) =>
    socket.send(text, (error) => {
      if (!error) connection.liveness.wrote();
      resolve();
    }),
  );
  // Its length in characters: near enough to bytes for spacing pings.
  if (connection.liveness.sent(text.length)) socket.ping();
  if (socket.bufferedAmount > connection.maxBufferedBytes) closeConnection(connection, NOT_READING_CLOSE, 'client not reading: too much data waiting');
}

/**
 * Throws `cancelled` when the request was cancelled, or its socket is closing (from either side:
 * its requests are aborted then, not when the close completes).
 */
function stopIfGone(connection: Connection, signal: AbortSignal): void {
  if (connection.socket.readyState !== connection.socket.OPEN) abortAll(connection);
  if (signal.aborted) throw cancelled();
}

function abortAll(connection: Connection): void {
  for (const controller of connection.streams.values()) controller.abort();
}

/** Cuts a socket whose peer is gone, without a close frame, its requests aborted first as `closeConnection` does. */
function dropConnection(connection: Connection): void {
  abortAll(connection);
  connection.socket.terminate();
}

/**
 * Aborts every request of the socket down to its provider call (each is metered as cancelled),
 * then closes it. Not left to the socket's `close` event: that waits for the peer to answer the
 * close frame, up to 30 s, and a peer that never does would have its requests run on meanwhile.
 */
function closeConnection(connection: Connection, code: number, reason: string): void {
  abortAll(connection);
  connection.socket.close(code, reason);
}

/** Until the client has taken enough of what it was sent, or the socket closed, or the request was cancelled. */
async function drained(connection: Connection, signal: AbortSignal): Promise<void> {
  const socket = connection.socket;
  if (socket.bufferedAmount <= connection.highWaterBytes) return;
  let onAbort: () => void = () => undefined;
  const aborted = new Promise<void>((resolve) => (onAbort = resolve));
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    while (socket.bufferedAmount > connection.highWaterBytes && socket.readyState === socket.OPEN && !signal.aborted) {
      const waitedOn = connection.lastWrite;
      await Promise.race([waitedOn, connection.closed, aborted]);
      // Written, yet still over the mark (bytes the socket holds beyond our frames): check again shortly rather than spin.
      if (connection.lastWrite === waitedOn && socket.bufferedAmount > connection.highWaterBytes) await new Promise((resolve) => setTimeout(resolve, 20));
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}
