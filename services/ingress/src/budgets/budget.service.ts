import { randomUUID } from 'node:crypto';
import type { Capability, GatewayConfig } from '@openrouter/config';
import type { routerv1 } from '@openrouter/contracts';
import { accountAt, BudgetCatalog, budgetStoreUnavailable, forecastOf, fromMicros, ThresholdAlerts, toMicros, type AccountState, type Budget, type BudgetAccount, type BudgetEventPublisher, type BudgetLedger, type BudgetTenant, type SpendForecast } from '@openrouter/budgets';
import { GatewayError } from '@openrouter/errors';
import type { Logger } from '@openrouter/observability';
import { sendIdempotent } from '@openrouter/service-runtime';
import { Money, type PriceBook } from '@openrouter/usage';
import { countPromptTokens } from '../access/prompt-tokens';
import { REQUEST_BOUNDS } from '@openrouter/openai-wire';
import { renewalIntervalMs, repeatEvery, type Repeat } from './reservation-renewal';
import { audioDemandOf, audioPromptTokens, audioUnitMicros, countWithin, imagesAsked, makesImages, paddedPromptTokens, providerCalls, requestedTier, tierLeftToProvider, WorstCasePricing, type AudioDemand, type CandidateQuery } from './worst-case-cost';

export interface ReserveInput {
  requestId: string;
  /** Who asks, with the tenant routing policy its request is routed under (the deployments it may reach). */
  tenant: BudgetTenant & { policy?: routerv1.TenantPolicy | undefined };
  /** The request body as the client sent it (may be changed: the provider is told the output cap reserved for). */
  body: unknown;
  /** The request's headers, for the routing controls that may come as headers (`x-openrouter-models`, `x-openrouter-route`). */
  headers?: Readonly<Record<string, string | string[] | undefined>>;
  /**
   * When the request arrived (epoch ms): it is priced, and its budget periods chosen, at that
   * time, as its usage record is (a request that arrives just before a period ends belongs to it).
   */
  receivedAtMs?: number;
  /** The API endpoint (a route pattern): an image request's output and an audio request's worth are not in a token limit of its body. */
  endpoint?: string | undefined;
}

/**
 * Budget enforcement at ingress: before a request is routed, its worst-case cost is reserved
 * against every budget that applies, atomically; when it ends, the reservation is settled with
 * the real cost (or released). While it runs, its reservation is renewed, so a request that
 * outlives `budgets.reservationTtlMs` (a long stream, a slow reader) keeps the room it holds; only
 * a process that died stops renewing, and its reservations expire. Threshold crossings are
 * published once per budget and period, and a hard budget's refusal announces its 100 %.
 */
export class BudgetService {
  private readonly pricing: WorstCasePricing;
  private readonly open = new Map<string, BudgetReservation>();
  /** Reservation id → stops its renewals. */
  private readonly renewals = new Map<string, () => void>();
  /** Refusal announcements, settles and releases under way: closing waits for them. */
  private readonly background = new Set<Promise<void>>();
  private readonly alerts: ThresholdAlerts;
  /** Whether a request was admitted, fail mode open, before the budgets created through the API had loaded (logged once). */
  private admittedUnloaded = false;

  constructor(
    private readonly config: Pick<GatewayConfig, 'models' | 'routing' | 'budgets' | 'providers'>,
    prices: PriceBook,
    private readonly ledger: BudgetLedger,
    private readonly events: BudgetEventPublisher,
    private readonly logger: Logger,
    private readonly clock: () => number = Date.now,
    private readonly repeat: Repeat = repeatEvery,
    /** The budgets in force (configured, and created through the admin API); the configured ones alone by default. */
    readonly catalog: BudgetCatalog = BudgetCatalog.of(config.budgets.list),
  ) {
    this.alerts = new ThresholdAlerts(ledger, events, logger, clock, { forecastMinElapsedFraction: config.budgets.forecast.minElapsedFraction });
    this.pricing = new WorstCasePricing(config, prices);
  }

  /**
   * Reserves the request's worst-case cost, or throws `budget_exceeded` when a hard budget
   * cannot cover it. Resolves to undefined when no budget applies. First, under a budget or not,
   * refuses (400) a `service_tier` that a model the request may reach has no price for.
   */
  async reserve(input: ReserveInput): Promise<BudgetReservation | undefined> {
    const body = typeof input.body === 'object' && input.body !== null ? (input.body as Record<string, unknown>) : undefined;
    const tier = body ? requestedTier(body) : undefined;
    const audio = body ? audioDemandOf(input.endpoint, body, this.config.budgets.audio) : undefined;
    const tiered = body && tier !== undefined ? this.candidates(body, input, audio) : undefined;
    if (tiered) this.pricing.checkTier(tier, tiered);
    // The budgets as they stand when the request arrives: one changed meanwhile applies from the next.
    const book = this.catalog.book;
    if (!this.catalog.loaded) this.beforeLoaded(input.requestId);
    if (book.empty || !body) return undefined;
    const budgets = book.applicable(input.tenant);
    if (budgets.length === 0) return undefined;
    const now = input.receivedAtMs ?? this.clock();
    // An image generation or edit asks for no output limit (its `prompt` is not a legacy
    // completion's): each image is reserved at its model's `budgets.maxOutputTokens`, and its body
    // is left alone. An edit's uploaded images are prompt tokens, counted as a chat's images are.
    const image = makesImages(input.endpoint);
    // An audio request neither (a transcription's `prompt` is a hint, speech's `input` no embedding's):
    // it is reserved by its audio's length or its characters, and its model's maximum output.
    const whole = image || audio !== undefined;
    const embedding = !whole && isEmbedding(body);
    // Each legacy prompt is a provider call of its own, with its own answers and request fee.
    const calls = whole ? 1 : providerCalls(body);
    const models = tiered ?? this.candidates(body, input, audio);
    const price = this.pricing.priceAt(models, now, tier, input.tenant.policy, tier === undefined && tierLeftToProvider(body));
    const choices = (audio ? 1 : image ? imagesAsked(body) : (countWithin(body['n'], REQUEST_BOUNDS.choices) ?? 1)) * calls;
    const perChoice = embedding ? 0 : this.pricing.maxOutputTokens(models, whole ? {} : body);
    const outputTokens = perChoice * choices;
    // Its images at the dearest image cost of the models it may reach.
    const promptTokens = audio ? audioPromptTokens(audio) : paddedPromptTokens(countPromptTokens(body, () => this.pricing.imageCost(models)), calls);
    let promptMicros = price.inputMicros.times(promptTokens).plus(price.requestMicros.times(calls));
    if (audio) promptMicros = promptMicros.plus(audioUnitMicros(audio, price));
    // Each image asked for at the dearest per-image price (DALL·E's), on top of its tokens.
    if (image) promptMicros = promptMicros.plus(price.imageMicros.times(choices));
    const worst = ceil(promptMicros.plus(price.outputMicros.times(outputTokens)));
    const minStream = this.config.budgets.minStreamOutputTokens;
    // Only a stream of text may start with part of its worst case reserved: an image or a piece of audio is made whole.
    const partial = !whole && body['stream'] === true && minStream > 0 && outputTokens > minStream * choices;
    const floor = partial ? ceil(promptMicros.plus(price.outputMicros.times(minStream * choices))) : worst;

    const accounts = book.accountsAt(budgets, now);
    const id = `${input.requestId}:${randomUUID()}`;
    let outcome;
    try {
      outcome = await this.ledger.reserve({ id, lines: accounts.map((a) => a.line), worstMicros: worst, floorMicros: floor, ttlMs: this.config.budgets.reservationTtlMs });
    } catch (error) {
      // Redis may have made it all the same (a reply that timed out): give it back rather than
      // leave it held for a whole ttl by a request that holds nothing.
      this.inBackground(this.ledger.settle(id, accounts.map((a) => a.line), 0).then(() => undefined), 'budget reservation could not be given back', { reservation: id });
      if (this.config.budgets.failMode === 'closed') throw new GatewayError('unavailable', 'Budgets cannot be checked right now.', { code: 'budget_store_unavailable', cause: error });
      this.logger.warn({ err: error, requestId: input.requestId }, 'budget store unreachable: request admitted without a reservation (budgets.failMode open)');
      return undefined;
    }
    if (!outcome.ok) {
      const refusing = accounts[outcome.line];
      if (refusing) this.announceRefusal(refusing, outcome.spentMicros);
      const budget = refusing?.budget;
      const which = budget ? `The ${budget.period} budget "${budget.id}"` : 'A budget';
      throw new GatewayError('budget_exceeded', `${which} is exhausted: this request could cost more than is left.`, { code: 'budget_exceeded' });
    }
    const capped = outcome.amountMicros < worst;
    const hard = accounts.some((a) => a.budget.enforcement === 'hard');
    // Only absent limits are filled in: an invalid one is left for the handler to refuse (400).
    if (!capped && hard && !embedding && !whole && body['max_completion_tokens'] == null && body['max_tokens'] == null) {
      // The reservation assumed this many output tokens: the provider must not write more.
      body['max_tokens'] = perChoice;
    }
    if (capped && !whole) {
      // Ask the provider for no more output than the reservation pays for.
      // Never more than the request would get without a budget (a legacy completion's 16 included).
      const affordable = Math.min(perChoice, Math.max(1, Math.floor(new Money(outcome.amountMicros).minus(promptMicros).dividedBy(price.outputMicros).dividedBy(choices).toNumber())));
      const limit = REQUEST_BOUNDS.maxTokens;
      if (countWithin(body['max_completion_tokens'], limit) !== undefined) body['max_completion_tokens'] = affordable;
      else if (body['max_tokens'] == null || countWithin(body['max_tokens'], limit) !== undefined) body['max_tokens'] = affordable;
    }
    const reservation = new BudgetReservation(this, id, accounts, outcome.amountMicros, capped, promptMicros, price.outputMicros);
    this.open.set(id, reservation);
    this.keepRenewed(id);
    return reservation;
  }

  /**
   * Every public model the request may be served by (see `WorstCasePricing.candidates`); for a
   * request of an endpoint served only by models of one capability (images, embeddings,
   * moderations, audio), those of them with it.
   */
  private candidates(body: Record<string, unknown>, input: ReserveInput, audio: AudioDemand | undefined): string[] {
    const model = typeof body['model'] === 'string' ? body['model'] : '';
    const controls = routeControls(body, input.headers ?? {});
    // Lifecycles at the time of routing, which follows now (a long upload arrived well before it).
    const query: CandidateQuery = { model, fallbacks: controls.models, allowFallbacks: controls.allowFallbacks, tenant: input.tenant, atMs: this.clock() };
    if (audio) return this.pricing.serving(this.pricing.candidates(query, (models) => audioPromptTokens(audio) + this.pricing.maxOutputTokens(models, {})), audio.kind === 'transcription' ? 'transcription' : 'speech');
    // An image request's output is no legacy completion's 16 tokens, whatever its `prompt`.
    const image = makesImages(input.endpoint);
    const embedding = !image && isEmbedding(body);
    const calls = image ? 1 : providerCalls(body);
    const models = this.pricing.candidates(query, (models) => paddedPromptTokens(countPromptTokens(body, () => this.pricing.imageCost(models)), calls) + (embedding ? 0 : this.pricing.maxOutputTokens(models, image ? {} : body)));
    const capability = image ? 'images' : ENDPOINT_CAPABILITY.get(input.endpoint ?? '');
    return capability ? this.pricing.serving(models, capability) : models;
  }

  /**
   * A request that arrives before the budgets created through the admin API have loaded (the store
   * was not reachable at start): any of them may apply to it, unknown here. `budgets.failMode`
   * decides, as for a store that cannot be reached: `closed` refuses it (503), `open` lets it
   * through under the configured budgets alone, and says so once.
   */
  private beforeLoaded(requestId: string): void {
    if (this.config.budgets.failMode === 'closed') {
      throw new GatewayError('unavailable', 'Budgets cannot be checked right now: the budgets created through the admin API have not loaded yet.', { code: 'budget_store_unavailable' });
    }
    if (this.admittedUnloaded) return;
    this.admittedUnloaded = true;
    this.logger.warn({ requestId }, 'the budgets created through the admin API have not loaded yet: requests are admitted under the configured budgets alone until they do (budgets.failMode open)');
  }

  /**
   * Settles with the real cost (decimal text); a cost of 0 releases. Never throws. Closing waits
   * for it (its retries included): a settle cut off by the store's disconnection would leave the
   * reservation held for its whole ttl, and the spend to billing's reconciliation.
   */
  settle(reservation: BudgetReservation, cost: string): Promise<void> {
    const settling = this.settleNow(reservation, cost);
    this.background.add(settling);
    void settling.finally(() => this.background.delete(settling));
    return settling;
  }

  private async settleNow(reservation: BudgetReservation, cost: string): Promise<void> {
    this.stopRenewing(reservation.id);
    if (!this.open.delete(reservation.id)) return;
    let actual: number;
    try {
      actual = toMicros(cost);
    } catch {
      actual = reservation.amountMicros;
    }
    const lines = reservation.accounts.map((a) => a.line);
    // Sent again a little later after a failure (a timeout, a reconnection, a failover): a settle
    // applies once however often it arrives, so spend is not left to billing's reconciliation
    // (which may run rarely, or not at all) for a moment's outage.
    try {
      await sendIdempotent(async () => {
        const spent = await this.ledger.settle(reservation.id, lines, actual);
        if (actual > 0) await this.alerts.publishCrossed(reservation.accounts, spent);
      });
    } catch (error) {
      // The reservation expires on its own; the spend is corrected by billing's reconciliation.
      this.logger.error({ err: error, reservation: reservation.id }, 'budget reservation could not be settled');
    }
  }

  /**
   * Renews reservation `id` every third of its ttl until it is settled or released. Streams have
   * no overall time limit: without renewal, one that outlived the ttl would have its room swept
   * back and reserved by others while its real cost still lands on the budget.
   */
  private keepRenewed(id: string): void {
    const ttlMs = this.config.budgets.reservationTtlMs;
    let renewing = false;
    const stop = this.repeat(async () => {
      // One renewal at a time: a slow Redis must not pile them up.
      if (renewing) return;
      renewing = true;
      await this.renew(id, ttlMs).finally(() => (renewing = false));
    }, renewalIntervalMs(ttlMs));
    this.renewals.set(id, stop);
  }

  private async renew(id: string, ttlMs: number): Promise<void> {
    try {
      if (await this.ledger.renew(id, ttlMs)) return;
      // Settled meanwhile (nothing to do), or expired before it was renewed (Redis away for a ttl):
      // its room may be reserved again, and its settle still counts its spend.
      if (!this.open.has(id)) return;
      this.stopRenewing(id);
      this.logger.warn({ reservation: id }, 'budget reservation expired while its request was still running');
    } catch (error) {
      // The next renewal tries again; the reservation expires only after a whole ttl without one.
      this.logger.warn({ err: error, reservation: id }, 'budget reservation could not be renewed');
    }
  }

  private stopRenewing(id: string): void {
    this.renewals.get(id)?.();
    this.renewals.delete(id);
  }

  /**
   * Publishes what a hard budget's refusal implies (its thresholds up to 100 %, see
   * `ThresholdAlerts.publishRefused`) without holding up the 402.
   */
  private announceRefusal(account: BudgetAccount, spentMicros: number): void {
    this.inBackground(this.alerts.publishRefused(account, spentMicros).then(() => undefined), 'budget refusal could not be announced', { budget: account.budget.id });
  }

  /** Runs `work` without holding up the request; a failure is logged as `what`, with `context`. */
  private inBackground(work: Promise<void>, what: string, context: Record<string, string>): void {
    const running = work.catch((error: unknown) => this.logger.warn({ err: error, ...context }, what));
    this.background.add(running);
    void running.finally(() => this.background.delete(running));
  }

  /** Resolves once every refusal announcement, settle and release under way has finished (closing waits for them). */
  async idle(): Promise<void> {
    await Promise.all([...this.background]);
  }

  /** Reservations not yet settled (a request in flight). */
  get inFlight(): number {
    return this.open.size;
  }

  /** Where each budget that applies stands now (for tests). */
  async status(tenant?: BudgetTenant): Promise<Array<{ budget: Budget; account: BudgetAccount; spent: string; reserved: string }>> {
    const book = this.catalog.book;
    const standings = await this.standing(tenant ? book.applicable(tenant) : book.budgets);
    return standings.map(({ account, state }) => ({ budget: account.budget, account, spent: fromMicros(state.spentMicros), reserved: fromMicros(state.reservedMicros) }));
  }

  /**
   * Each budget's current period and where it stands in the ledger enforcement uses: its spend and
   * its live reservations, read in one atomic step that changes nothing, and its spend projected to
   * the period's end (undefined until `budgets.forecast.minElapsedFraction` of the period has
   * passed). A ledger that cannot be read is the budget store being unavailable (503
   * `budget_store_unavailable`), never a 500.
   */
  async standing(budgets: readonly Budget[]): Promise<Array<{ account: BudgetAccount; state: AccountState; forecast: SpendForecast | undefined }>> {
    const now = this.clock();
    const accounts = budgets.map((b) => accountAt(b, now));
    let states: AccountState[];
    try {
      states = await this.ledger.standing(accounts.map((a) => a.line.account));
    } catch (error) {
      throw budgetStoreUnavailable(error);
    }
    const fraction = this.config.budgets.forecast.minElapsedFraction;
    return accounts.map((account, i) => {
      const state = states[i] ?? { spentMicros: 0, reservedMicros: 0 };
      return { account, state, forecast: forecastOf(account, state.spentMicros, now, fraction) };
    });
  }

  async close(): Promise<void> {
    // Reservations still open expire after their ttl, as a stopped process's do.
    for (const id of [...this.renewals.keys()]) this.stopRenewing(id);
    await this.idle();
    await this.events.close();
    await this.ledger.close();
    await this.catalog.close();
  }
}

/** One request's hold on its budgets. */
export class BudgetReservation {
  /** Output tokens streamed so far, estimated (see `outputTokens`), not rounded. */
  private streamedTokens = 0;

  constructor(
    private readonly service: BudgetService,
    readonly id: string,
    readonly accounts: readonly BudgetAccount[],
    readonly amountMicros: number,
    /** Less than the worst case was reserved: the answer is capped to what it pays for. */
    readonly capped: boolean,
    private readonly promptMicros: Money,
    private readonly outputMicros: Money,
  ) {}

  /**
   * Counts a streamed delta of an estimated `tokens` of output (see `outputTokens`); false once
   * the answer's estimated cost at the worst-case price would pass what is reserved, so the stream
   * must end before this delta is sent.
   */
  admitDelta(tokens: number): boolean {
    const next = this.streamedTokens + tokens;
    const cost = this.promptMicros.plus(this.outputMicros.times(Math.ceil(next)));
    if (cost.greaterThan(this.amountMicros)) return false;
    this.streamedTokens = next;
    return true;
  }

  settle(cost: string): Promise<void> {
    return this.service.settle(this, cost);
  }

  release(): Promise<void> {
    return this.service.settle(this, '0');
  }
}

/** Endpoints whose requests the router sends only to models of one capability (besides images and audio). */
const ENDPOINT_CAPABILITY: ReadonlyMap<string, Capability> = new Map([
  ['/v1/embeddings', 'embeddings'],
  ['/v1/moderations', 'moderation'],
]);

function isEmbedding(body: Record<string, unknown>): boolean {
  return body['input'] !== undefined && body['messages'] === undefined && body['prompt'] === undefined;
}

/**
 * The request's fallback list and `allow_fallbacks`, from the body or else the routing headers
 * (as the chat handler applies them before routing). A malformed header counts as absent here:
 * the handler refuses the request with a 400 before anything is routed.
 */
function routeControls(body: Record<string, unknown>, headers: Readonly<Record<string, string | string[] | undefined>>): { models: string[]; allowFallbacks: boolean | undefined } {
  const header = headers['x-openrouter-models'];
  const listed = Array.isArray(body['models']) ? body['models'] : typeof header === 'string' ? header.split(',').map((m) => m.trim()) : [];
  let route: unknown = body['route'];
  const routeHeader = headers['x-openrouter-route'];
  if (route === undefined && typeof routeHeader === 'string') {
    try {
      route = JSON.parse(routeHeader) as unknown;
    } catch {
      route = undefined;
    }
  }
  const allow = typeof route === 'object' && route !== null ? (route as Record<string, unknown>)['allow_fallbacks'] : undefined;
  return { models: listed.filter((m): m is string => typeof m === 'string' && m.length > 0), allowFallbacks: typeof allow === 'boolean' ? allow : undefined };
}

/**
 * Whole micro-units, rounded up. An amount beyond what the ledger counts exactly (2^53 micro-units,
 * some nine billion in the currency: no budget holds that much) is held at that bound, so a hard
 * budget refuses it rather than the ledger failing as if it were unreachable.
 */
function ceil(micros: Money): number {
  return Math.min(micros.toDecimalPlaces(0, Money.ROUND_CEIL).toNumber(), Number.MAX_SAFE_INTEGER);
}
