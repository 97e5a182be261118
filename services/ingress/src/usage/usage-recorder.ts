import { randomUUID } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { routerv1, usagev1, type chatv1 } from '@openrouter/contracts';
import { GatewayError, type ErrorKind } from '@openrouter/errors';
import type { UsageConfig } from '@openrouter/config';
import type { Logger } from '@openrouter/observability';
import { emptyUsageEvent, priceEvent, type PriceBook, type PricedUsage, type TokenCounts, type UsagePublisher } from '@openrouter/usage';
import { countPromptTokens } from '../access/prompt-tokens';
import type { Admission } from '../access/rate-limiter';
import type { BudgetReservation } from '../budgets/budget.service';
import { requestedTier } from '../budgets/worst-case-cost';
import { arrivedAtMs, deliveredWhole, onResponseClose } from '../routes/client-connection';
import { RAW_END_USER_IDS, type EndUserIds } from './end-user-ids';
import { completionOutputTokens, outputTokens } from './output-tokens';

export type UsageOperation = 'chat' | 'completion' | 'embedding' | 'moderation' | 'image' | 'transcription' | 'translation' | 'speech';

/** What metering needs of one request, whatever carried it (an HTTP exchange, a WebSocket frame). */
export interface MeteredExchange {
  readonly id: string;
  /** The API endpoint the request came through (a route pattern, `/v1/messages`; `/v1/ws` for a WebSocket frame), for metrics. */
  readonly endpoint?: string;
  readonly body: unknown;
  readonly receivedAtMs: number;
  context(): routerv1.RequestContext | undefined;
  budget(): BudgetReservation | undefined;
  /** What the request was charged to its rate limits, corrected by its record's tokens. */
  admission(): Admission | undefined;
  traceHeaders(): Record<string, string>;
  /** Calls `listener` once, when the exchange has ended one way or another. */
  onEnd(listener: () => void): void;
  /** How it ended: abandoned before the answer was complete, and the (HTTP-equivalent) status. */
  outcome(): { cancelled: boolean; status: number };
}

/** An HTTP request/response pair as a metered exchange. */
export function httpExchange(req: FastifyRequest, reply: FastifyReply): MeteredExchange {
  req.metered = true;
  const delivered = deliveredWhole(reply.raw);
  return {
    id: String(req.id),
    endpoint: req.routeOptions.url,
    body: req.body,
    receivedAtMs: arrivedAtMs(reply),
    context: () => req.requestContext,
    budget: () => req.budget,
    admission: () => req.admission,
    traceHeaders: () => req.traceHeaders ?? traceHeaders(req),
    onEnd: (listener) => onResponseClose(reply, listener),
    outcome: () => ({ cancelled: !delivered(), status: reply.raw.statusCode }),
  };
}

const OPERATIONS: Record<UsageOperation, usagev1.Operation> = {
  chat: usagev1.Operation.OPERATION_CHAT,
  completion: usagev1.Operation.OPERATION_COMPLETION,
  embedding: usagev1.Operation.OPERATION_EMBEDDING,
  moderation: usagev1.Operation.OPERATION_MODERATION,
  image: usagev1.Operation.OPERATION_IMAGE,
  transcription: usagev1.Operation.OPERATION_TRANSCRIPTION,
  translation: usagev1.Operation.OPERATION_TRANSLATION,
  speech: usagev1.Operation.OPERATION_SPEECH,
};

/** Header with the request's exact cost (a decimal string in the model's price currency). */
export const COST_HEADER = 'x-openrouter-cost';

/** Told of every metered request when it ends (metrics), with its routing decision when there was one. */
export type UsageObserver = (event: usagev1.UsageEvent, decision: routerv1.RouteDecision | undefined, endpoint: string | undefined) => void;

/**
 * Meters API requests: each tracked request yields exactly one usage event, published when its
 * response ends (answered, failed or abandoned by the client), priced with the price in effect
 * when the request arrived.
 */
export class UsageRecorder {
  private readonly inFlight = new Set<Promise<void>>();
  /** Requests being metered whose event is not written yet. */
  private readonly open = new Set<UsageTrack>();
  private onClosed: (() => void) | undefined;

  constructor(
    private readonly publisher: UsagePublisher,
    private readonly prices: PriceBook,
    private readonly logger: Logger,
    private readonly observer?: UsageObserver,
    /** What a record keeps of the end user (`usage.endUsers`); default: the id as sent. */
    readonly endUserId: EndUserIds = RAW_END_USER_IDS,
    readonly endUsers: UsageConfig['endUsers'] = 'raw',
  ) {}

  /** Starts metering a request; call first in the handler, before anything can throw. */
  track(req: FastifyRequest, reply: FastifyReply, operation: UsageOperation): UsageTrack {
    return this.opened(new UsageTrack(this, httpExchange(req, reply), operation));
  }

  /** Starts metering a request that did not come over HTTP (a WebSocket frame). */
  trackExchange(exchange: MeteredExchange, operation: UsageOperation): UsageTrack {
    return this.opened(new UsageTrack(this, exchange, operation));
  }

  private opened(track: UsageTrack): UsageTrack {
    if (!track.isFinished()) this.open.add(track);
    return track;
  }

  /** A request's event was written (or it had none to write). */
  closed(track: UsageTrack): void {
    this.open.delete(track);
    this.onClosed?.();
  }

  price(
    event: Pick<usagev1.UsageEvent, 'servedModel' | 'deployment' | 'receivedAtMs' | 'tokens' | 'status'> & Partial<Pick<usagev1.UsageEvent, 'audioMs' | 'characters' | 'imagePromptTokens' | 'images'>> & { serviceTier?: string | undefined },
    calls?: ReadonlyArray<{ servedModel: string; deployment: string; tokens: TokenCounts; served?: boolean }>,
  ): PricedUsage {
    return priceEvent(this.prices, event, calls);
  }

  /** Tells the observer (metrics) of a metered request; a failure of it is logged, never thrown into the request. */
  observe(event: usagev1.UsageEvent, decision: routerv1.RouteDecision | undefined, endpoint: string | undefined): void {
    try {
      this.observer?.(event, decision, endpoint);
    } catch (error) {
      this.logger.error({ err: error, requestId: event.requestId }, 'usage: the metrics of a metered request could not be recorded');
    }
  }

  publish(event: usagev1.UsageEvent, headers: Record<string, string>): void {
    const done = this.publisher.publish(event, { headers }).catch((error: unknown) => {
      // The outbox refused it (full or unwritable): loud, since this is a lost record.
      this.logger.error({ err: error, eventId: event.eventId, orgId: event.tenant?.orgId }, 'usage event could not be recorded');
    });
    this.inFlight.add(done);
    void done.finally(() => this.inFlight.delete(done));
  }

  /**
   * Shutdown, after the servers closed (every request has ended, answered or cut): waits for the
   * requests still writing their event — one cut inside a call writes it once the call has
   * unwound — up to `timeoutMs`, then for every event handed to the publisher.
   */
  async drain(timeoutMs = 5_000): Promise<void> {
    if (this.open.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      const allClosed = new Promise<void>((resolve) => (this.onClosed = () => this.open.size === 0 && resolve()));
      await Promise.race([allClosed, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
      clearTimeout(timer);
      this.onClosed = undefined;
      if (this.open.size > 0) {
        // Calls that outlive the grace (an embedding runs on to the router's deadline without its
        // client): written now, cut by the shutdown, charged as a cut call is, rather than lost.
        this.logger.warn({ requests: this.open.size }, 'requests still in a provider call at shutdown: their usage is recorded as cancelled');
        for (const track of [...this.open]) track.cutAtShutdown();
      }
    }
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }
}

/** `cacheWrite1h`: of `cacheWrite`, the writes kept an hour (priced apart). */
type Usage = { prompt: number; completion: number; cachedRead: number; cacheWrite: number; cacheWrite1h: number; reasoning: number; estimated: boolean; reported: boolean };

const noUsage = (): Usage => ({ prompt: 0, completion: 0, cachedRead: 0, cacheWrite: 0, cacheWrite1h: 0, reasoning: 0, estimated: false, reported: false });

/** Adds token counts into `into` (estimated when either is). */
function addCounts(into: Omit<Usage, 'reported'>, c: Omit<Usage, 'reported'>): void {
  into.prompt += c.prompt;
  into.completion += c.completion;
  into.cachedRead += c.cachedRead;
  into.cacheWrite += c.cacheWrite;
  into.cacheWrite1h += c.cacheWrite1h;
  into.reasoning += c.reasoning;
  into.estimated ||= c.estimated;
}

/**
 * One provider call of a request. A legacy completion with several prompts makes one per prompt,
 * each routed on its own, so each is priced at its own deployment and pays its own request fee.
 */
interface CallMeter {
  readonly decision: routerv1.RouteDecision;
  /**
   * The call's own prompt tokens, counted only for an answer whose usage never came (then kept).
   * Set by a request metered call by call (a legacy completion, whatever its number of prompts).
   */
  readonly promptTokens: (() => number) | undefined;
  promptEstimate?: number;
  readonly usage: Usage;
  /** Output tokens estimated from what it streamed (see `outputTokens`), not rounded. */
  outputEstimate: number;
  answered: boolean;
  /** Abandoned while its deployment was working on it, before it answered: its prompt was spent. */
  abandoned: boolean;
  /** Its answer is whole (its completion or its usage came, or the next call followed it): it pays its request fee whatever becomes of the rest. */
  complete: boolean;
}

/** One request's metering: what was routed, the tokens, when the first token left. */
export class UsageTrack {
  private readonly event: usagev1.UsageEvent;
  private readonly usage = noUsage();
  /** Every routed call, in order; the record names the first. */
  private readonly calls: CallMeter[] = [];
  /** Output tokens estimated from what was streamed (see `outputTokens`), not rounded. */
  private streamedTokens = 0;
  private errorKind: ErrorKind | undefined;
  private finished = false;
  /** Calls in flight (`guard`): the record waits for them, so an answer that arrives is metered. */
  private pending = 0;
  private ended = false;
  private priced: { key: string; value: PricedUsage } | undefined;
  private decision: routerv1.RouteDecision | undefined;
  /** The deployment being called when no decision has arrived yet, and how to count that call's own prompt (a request metered call by call). */
  private inCall: { route: routerv1.RouteDecision; promptTokens: (() => number) | undefined } | undefined;
  /** The request was abandoned while a deployment was working on it, before its first answer event. */
  private abandonedInCall = false;
  /** Written at shutdown while a call was still in flight. */
  private shutdownCut = false;
  /** The response was cut short because the answer failed (`cutByFailure`). */
  private failureCut = false;
  /** The service tier the request asked for (`requestedTier`), and the one the provider says served it. */
  private readonly requestedTier: string | undefined;
  private servedTier: string | undefined;
  /** What a request answered from the response cache costs: 0, in the first answer's currency. */
  private cachedCost: PricedUsage | undefined;

  constructor(
    private readonly recorder: UsageRecorder,
    private readonly exchange: MeteredExchange,
    operation: UsageOperation,
  ) {
    // The client's request id is not unique (clients reuse one across calls): the record gets its own.
    this.event = emptyUsageEvent(randomUUID(), exchange.receivedAtMs);
    this.event.requestId = exchange.id.slice(0, 256);
    this.event.operation = OPERATIONS[operation];
    const body = exchange.body as { model?: unknown; stream?: unknown } | null | undefined;
    this.event.requestedModel = typeof body?.model === 'string' ? body.model.slice(0, 256) : '';
    this.event.stream = body?.stream === true;
    this.requestedTier = body !== null && typeof body === 'object' ? requestedTier(body as Record<string, unknown>) : undefined;
    exchange.onEnd(() => {
      this.ended = true;
      if (this.pending === 0) this.finish();
    });
  }

  /**
   * A call's routing decision; what arrives next (chunks, completion, usage) is that call's. The
   * record names the first call's. A request metered call by call (a legacy completion: one call
   * per prompt) passes how to count each one's prompt tokens (`countPromptTokens` of what it
   * sends), asked only when the call's usage never came, even when only its first call was made;
   * a chat request's single call's are the request body's.
   */
  routed(decision: routerv1.RouteDecision, promptTokens?: () => number): void {
    // A legacy stream's next prompt is called once the previous one's answer has ended.
    const previous = this.calls.at(-1);
    if (previous?.answered) previous.complete = true;
    this.calls.push({ decision, promptTokens, usage: noUsage(), outputEstimate: 0, answered: false, abandoned: false, complete: false });
    this.inCall = undefined;
    if (this.event.servedModel) return;
    this.decision = decision;
    this.event.servedModel = decision.model;
    this.event.provider = decision.provider;
    this.event.deployment = decision.deployment;
    this.event.upstreamModel = decision.upstreamModel;
    this.event.taskType = decision.taskType;
    this.event.experiment = decision.experiment;
    this.event.experimentArm = decision.experimentArm;
    this.event.attempts = decision.attemptDetails.map((a) => ({
      provider: a.provider,
      deployment: a.deployment,
      status: a.errorKind ? usagev1.AttemptStatus.ATTEMPT_STATUS_ERROR : usagev1.AttemptStatus.ATTEMPT_STATUS_OK,
      errorKind: a.errorKind,
      latencyMs: a.latencyMs,
    }));
  }

  /**
   * The route so far, before the router's decision (`openChat`'s `onCalling`): the deployment
   * being called, or none while the router backs off after a failed call. A request the client
   * abandons during a call is charged to that deployment: the prompt, counted here, since the
   * provider may bill the prompt it started on; nothing for an answer nobody saw begin. A request
   * metered call by call passes the call's own prompt tokens, as to `routed`; its later calls
   * are then charged so too.
   */
  readonly calling = (route: routerv1.RouteDecision, promptTokens?: () => number): void => {
    if (this.event.servedModel && !promptTokens) return;
    // A request of an experiment arm counts for the arm even when nothing serves it.
    if (route.experiment && !this.event.experiment) {
      this.event.experiment = route.experiment;
      this.event.experimentArm = route.experimentArm;
    }
    // After a failed call the router is between calls (backing off): nothing is being spent.
    const inProgress = route.attemptDetails.at(-1)?.status === routerv1.RouteAttemptStatus.ROUTE_ATTEMPT_STATUS_IN_PROGRESS;
    this.inCall = inProgress ? { route, promptTokens } : undefined;
  };

  /** Records the error kind of a failed call, then rethrows it. */
  async guard<T>(call: Promise<T>): Promise<T> {
    this.pending++;
    try {
      return await call;
    } catch (error) {
      this.failed(error);
      throw error;
    } finally {
      // The client left during the call: the record is written once the handler has taken in
      // what the call returned (its routing and answer), on the next turn of the loop.
      if (--this.pending === 0 && this.ended) setImmediate(() => this.finish());
    }
  }

  /** Shutdown outlasted the call still in flight: the record is written now, as cancelled. */
  cutAtShutdown(): void {
    this.shutdownCut = true;
    this.finish();
  }

  failed(error: unknown): void {
    this.errorKind ??= error instanceof GatewayError ? error.kind : 'internal';
  }

  /**
   * Takes a whole answer and returns it as the client is to get it: with the usage it is billed
   * at, the gateway's estimate, when the provider reported none.
   */
  completion(completion: chatv1.ChatCompletion): chatv1.ChatCompletion {
    this.markFirstToken();
    // The answer's own length stands in for its output when the provider reports no usage, as a stream's does.
    const tokens = completionOutputTokens(completion);
    this.streamedTokens += tokens;
    const call = this.calls.at(-1);
    if (call) {
      call.outputEstimate += tokens;
      call.answered = call.complete = true;
    }
    if (completion.serviceTier) this.servedTier = completion.serviceTier;
    if (completion.usage) {
      this.addUsage(completion.usage);
      return completion;
    }
    return { ...completion, usage: this.tokens() };
  }

  chunk(chunk: chatv1.ChatChunk): void {
    if (chunk.choices.length > 0) this.markFirstToken();
    const tokens = outputTokens(chunk);
    this.streamedTokens += tokens;
    const call = this.calls.at(-1);
    if (call) {
      call.outputEstimate += tokens;
      if (chunk.choices.length > 0) call.answered = true;
    }
    if (chunk.serviceTier) this.servedTier = chunk.serviceTier;
    if (chunk.usage) this.addUsage(chunk.usage);
  }

  /** The usage of an answer with input only (an embedding, a moderation). */
  embedding(usage: chatv1.Usage | undefined): void {
    if (usage) this.addUsage(usage);
  }

  /**
   * The usage of generated images: the provider's (GPT Image models), else the prompt's estimate;
   * of its prompt tokens, `inputImageTokens` are an edit's input images (priced at `imageInput`);
   * `made`, the images the answer carries, each priced at `perImage` (DALL·E's way).
   */
  images(usage: chatv1.Usage | undefined, inputImageTokens = 0, made = 0): void {
    if (usage) this.addUsage(usage);
    this.event.imagePromptTokens = usage ? inputImageTokens : 0;
    this.event.images = made;
  }

  /**
   * A transcription's or translation's usage: its tokens (the provider's, else the adapter's
   * estimate of the prompt and the text) and the audio's length, billed per minute of it.
   */
  transcription(usage: chatv1.Usage | undefined, audioMs: number): void {
    if (usage) this.addUsage(usage);
    this.event.audioMs = audioMs;
  }

  /**
   * Speech's usage: its tokens (the provider's, else the input's estimate) and the characters
   * spoken, billed per million. Told at its first audio (the characters: the provider bills the
   * input it accepted, whatever becomes of the stream), and at its end with the provider's usage.
   */
  speech(usage: chatv1.Usage | undefined, characters: number): void {
    this.markFirstToken();
    if (usage) this.addUsage(usage);
    this.event.characters = characters;
  }

  /**
   * A streamed answer that cannot carry an error (speech's audio) failed after it began: its
   * response is cut short for the client to see the failure. Recorded as that error, not as a
   * client that left.
   */
  cutByFailure(error: unknown): void {
    this.failed(error);
    this.failureCut = true;
  }

  /**
   * The request was answered from the response cache (docs/caching.md): no provider was called.
   * Its record names the route that first served the answer and keeps that answer's tokens (what
   * the cache delivered), costs 0 in the first answer's currency, and carries what the answer
   * cost then as `cache_saved_cost`: cost sums stay what was spent, and the saving is reported
   * beside them.
   */
  cacheHit(origin: { model: string; provider: string; deployment: string; upstreamModel: string; cost: PricedUsage }, usage: chatv1.Usage | undefined): void {
    this.markFirstToken();
    this.event.servedModel = origin.model;
    this.event.provider = origin.provider;
    this.event.deployment = origin.deployment;
    this.event.upstreamModel = origin.upstreamModel;
    this.event.cacheHit = true;
    this.event.cacheSavedCost = origin.cost.amount;
    this.cachedCost = { amount: '0', currency: origin.cost.currency, priceVersion: origin.cost.priceVersion };
    if (usage) this.addUsage(usage);
  }

  /** The cost so far (final once the answer's usage arrived). */
  cost(): PricedUsage {
    this.fillTokens();
    if (this.cachedCost) return this.cachedCost;
    const { servedModel, deployment, receivedAtMs, tokens, audioMs, characters, imagePromptTokens, images } = this.event;
    // Asked for the response (headers, body) before the request has ended: an answer being sent is
    // a served request, and pays the request fee as its record will.
    const status = this.event.status === usagev1.Status.STATUS_UNSPECIFIED ? usagev1.Status.STATUS_OK : this.event.status;
    // The tier the provider reports having served, else the one asked for: a tier the model's
    // pricing does not declare (`default`, OpenAI's answer for the standard tier) is priced standard.
    const serviceTier = this.servedTier ?? this.requestedTier;
    if (this.perCall()) {
      // Each call pays its request fee once its answer was whole, or when the request was served
      // or abandoned (as one call is): a call that answered keeps its fee when a later one fails.
      const served = status === usagev1.Status.STATUS_OK || status === usagev1.Status.STATUS_CANCELLED;
      const calls = this.calls.map((c) => ({ servedModel: c.decision.model, deployment: c.decision.deployment, tokens: callTokens(c), served: served || c.complete || c.abandoned }));
      return this.recorder.price({ servedModel, deployment, receivedAtMs, tokens, status, serviceTier }, calls);
    }
    // Asked for up to three times a request (headers, body, record), mostly for the same tokens.
    const key = `${servedModel}\n${deployment}\n${status}\n${serviceTier}\n${tokens?.prompt}\n${tokens?.completion}\n${tokens?.cachedRead}\n${tokens?.cacheWrite}\n${tokens?.cacheWrite1h}\n${audioMs}\n${characters}\n${imagePromptTokens}\n${images}`;
    if (this.priced?.key !== key) this.priced = { key, value: this.recorder.price({ servedModel, deployment, receivedAtMs, tokens, status, serviceTier, audioMs, characters, imagePromptTokens, images }) };
    return this.priced.value;
  }

  /** The tokens so far, as the client's usage chunk shows them (estimated until the provider's usage arrived). */
  tokens(): chatv1.Usage {
    this.fillTokens();
    const t = this.event.tokens;
    const prompt = t?.prompt ?? 0;
    const completion = t?.completion ?? 0;
    return { promptTokens: prompt, completionTokens: completion, totalTokens: prompt + completion, cachedReadTokens: t?.cachedRead ?? 0, cacheWriteTokens: t?.cacheWrite ?? 0, reasoningTokens: t?.reasoning ?? 0, estimated: t?.estimated ?? false, ...(t?.cacheWrite1h ? { cacheWrite1hTokens: t.cacheWrite1h } : {}) };
  }

  costHeaders(): Record<string, string> {
    return { [COST_HEADER]: this.cost().amount };
  }

  /**
   * Adds `cost` to an OpenAI response object's `usage`, as OpenRouter does: a JSON number (the
   * exact decimal is in the `x-openrouter-cost` header and the usage record).
   */
  decorate<T>(body: T): T {
    const usage = (body as { usage?: unknown } | null)?.usage;
    if (typeof usage === 'object' && usage !== null) (usage as Record<string, unknown>)['cost'] = Number(this.cost().amount);
    return body;
  }

  private markFirstToken(): void {
    if (this.event.firstTokenAtMs === 0) this.event.firstTokenAtMs = Date.now();
  }

  private addUsage(u: chatv1.Usage): void {
    const call = this.calls.at(-1);
    // A call's usage comes with the end of its answer.
    if (call) call.complete = true;
    const counts = { prompt: u.promptTokens, completion: u.completionTokens, cachedRead: u.cachedReadTokens, cacheWrite: u.cacheWriteTokens, cacheWrite1h: u.cacheWrite1hTokens ?? 0, reasoning: u.reasoningTokens, estimated: u.estimated };
    for (const usage of call ? [this.usage, call.usage] : [this.usage]) {
      usage.reported = true;
      addCounts(usage, counts);
    }
  }

  /**
   * Metered call by call: a request that made several calls, or one whose calls count their own
   * prompts (a legacy completion cut or left in its first call is estimated at that call's
   * prompt, not at every prompt of the body, most of which were never sent).
   */
  private perCall(): boolean {
    return this.calls.length > 1 || this.calls[0]?.promptTokens !== undefined;
  }

  private fillTokens(): void {
    if (this.perCall()) {
      // Each call by its own usage, or its estimate when that never came (a stream cut or left in that call).
      const t = noUsage();
      for (const call of this.calls) addCounts(t, callTokens(call));
      this.event.tokens = eventTokens(t);
      return;
    }
    const u = this.usage;
    if (!u.reported && this.event.servedModel && (this.event.firstTokenAtMs > 0 || this.abandonedInCall)) {
      // The answer started (or was being worked on) but its usage never came (the client left): estimate what was spent.
      this.event.tokens = { prompt: countPromptTokens(this.exchange.body), completion: Math.ceil(this.streamedTokens), cachedRead: 0, cacheWrite: 0, reasoning: 0, estimated: true };
      return;
    }
    this.event.tokens = eventTokens(u);
  }

  isFinished(): boolean {
    return this.finished;
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    try {
      this.write();
    } finally {
      this.recorder.closed(this);
    }
  }

  private write(): void {
    const context = this.exchange.context();
    if (!context) return;
    const event = this.event;
    const outcome = this.exchange.outcome();
    const status = outcome.status;
    // A client that left during a call may still have been written its 499 by the time the call
    // unwound (or its answer arrived: an embedding's call runs on without the client).
    const cancelled = (outcome.cancelled && !this.failureCut) || this.shutdownCut || this.errorKind === 'cancelled' || status === CLIENT_CLOSED_REQUEST;
    event.completedAtMs = Math.max(Date.now(), event.receivedAtMs);
    event.latencyMs = event.completedAtMs - event.receivedAtMs;
    event.ttftMs = event.firstTokenAtMs > 0 ? Math.max(0, event.firstTokenAtMs - event.receivedAtMs) : 0;
    event.tenant = {
      orgId: context.orgId,
      projectId: context.projectId,
      teamId: context.teamId,
      appId: context.appId,
      costCenter: context.costCenter,
      keyId: context.keyId,
      endUser: this.recorder.endUserId(context.orgId, context.endUser),
      tags: { ...context.tags },
    };
    if (cancelled && this.inCall) {
      // The first call is the record's (its deployment, its attempts); a later one only adds its cost.
      const first = !event.servedModel;
      const { route, promptTokens } = this.inCall;
      this.routed(route, promptTokens);
      const call = this.calls.at(-1);
      if (call) call.abandoned = true;
      this.abandonedInCall ||= first;
    }
    event.cancelled = cancelled;
    event.httpStatus = status;
    const errorKind = this.errorKind ?? (status >= 400 ? kindOfStatus(status) : undefined);
    event.status = cancelled ? usagev1.Status.STATUS_CANCELLED : errorKind ? usagev1.Status.STATUS_ERROR : usagev1.Status.STATUS_OK;
    event.errorKind = event.status === usagev1.Status.STATUS_ERROR ? (errorKind ?? 'internal') : '';
    // A cache hit made no provider call: it has no attempts.
    if (event.provider && !event.cacheHit) {
      // The routing decision's failed attempts (retried or failed over) come before the one that served.
      const details = this.decision?.attemptDetails ?? [];
      const earlier = details.slice(0, -1).map((a) => ({
        provider: a.provider,
        deployment: a.deployment,
        status: a.errorKind ? usagev1.AttemptStatus.ATTEMPT_STATUS_ERROR : usagev1.AttemptStatus.ATTEMPT_STATUS_OK,
        errorKind: a.errorKind,
        latencyMs: a.latencyMs,
      }));
      // A call that reported its usage ended at the provider, answered, even if its client had left.
      const attemptStatus = cancelled
        ? this.usage.reported
          ? usagev1.AttemptStatus.ATTEMPT_STATUS_OK
          : usagev1.AttemptStatus.ATTEMPT_STATUS_CANCELLED
        : errorKind
          ? usagev1.AttemptStatus.ATTEMPT_STATUS_ERROR
          : usagev1.AttemptStatus.ATTEMPT_STATUS_OK;
      event.attempts = [
        ...earlier,
        {
          provider: event.provider,
          deployment: event.deployment,
          status: attemptStatus,
          errorKind: attemptStatus === usagev1.AttemptStatus.ATTEMPT_STATUS_OK ? '' : (errorKind ?? ''),
          // Like every other attempt: the provider's time to its first answer event, as the router
          // measured it; not the whole request, which includes the streamed answer and the client.
          // (A call abandoned before it answered ran until the client left.)
          latencyMs: this.abandonedInCall ? event.latencyMs : (details.at(-1)?.latencyMs ?? (event.ttftMs > 0 ? event.ttftMs : event.latencyMs)),
        },
      ];
    }
    const cost = this.cost();
    event.cost = { amount: cost.amount, currency: cost.currency, priceVersion: cost.priceVersion };
    // The record's tokens correct the token limits' estimate (a request that used nothing gets it
    // back), in the same turn as the budget's settle.
    void this.exchange.budget()?.settle(cost.amount);
    void this.exchange.admission()?.settle((event.tokens?.prompt ?? 0) + (event.tokens?.completion ?? 0));
    // The record first: metrics never stand between a request and its usage record.
    this.recorder.publish(event, this.exchange.traceHeaders());
    this.recorder.observe(event, this.decision, this.exchange.endpoint);
  }
}

/**
 * A call's tokens: its provider's usage, else (it began to answer, or was abandoned while its
 * deployment worked on it) its own prompt and the answer streamed so far.
 */
function callTokens(call: CallMeter): Omit<Usage, 'reported'> {
  const u = call.usage;
  if (u.reported || !(call.answered || call.abandoned)) return { prompt: u.prompt, completion: u.completion, cachedRead: u.cachedRead, cacheWrite: u.cacheWrite, cacheWrite1h: u.cacheWrite1h, reasoning: u.reasoning, estimated: u.estimated };
  call.promptEstimate ??= call.promptTokens?.() ?? 0;
  return { prompt: call.promptEstimate, completion: Math.ceil(call.outputEstimate), cachedRead: 0, cacheWrite: 0, cacheWrite1h: 0, reasoning: 0, estimated: true };
}

/** A usage record's tokens; the hour-long cache writes only when there are some. */
function eventTokens(u: Omit<Usage, 'reported'>): usagev1.Tokens {
  return { prompt: u.prompt, completion: u.completion, cachedRead: u.cachedRead, cacheWrite: u.cacheWrite, reasoning: u.reasoning, estimated: u.estimated, ...(u.cacheWrite1h > 0 ? { cacheWrite1h: u.cacheWrite1h } : {}) };
}

/** The status of a request whose client went away before its response was written. */
const CLIENT_CLOSED_REQUEST = 499;

function kindOfStatus(status: number): ErrorKind {
  switch (status) {
    case 400:
    case 413:
    case 415:
    case 422:
      return 'bad_request';
    case 401:
      return 'auth_failed';
    case 402:
      return 'budget_exceeded';
    case 403:
      return 'permission_denied';
    case 404:
      return 'not_found';
    case 429:
      return 'rate_limited';
    case CLIENT_CLOSED_REQUEST:
      return 'cancelled';
    case 503:
      return 'unavailable';
    case 504:
      return 'timeout';
    default:
      return status >= 500 ? 'upstream_error' : 'bad_request';
  }
}

/** W3C trace context of the request, carried on the usage message. */
function traceHeaders(req: FastifyRequest): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const name of ['traceparent', 'tracestate'] as const) {
    const value = req.headers[name];
    if (typeof value === 'string' && value.length <= 512) headers[name] = value;
  }
  return headers;
}

