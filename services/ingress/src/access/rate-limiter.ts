import { randomUUID } from 'node:crypto';
import { GatewayError } from '@openrouter/errors';
import { sendIdempotent } from '@openrouter/service-runtime';
import type { CounterCharge, CounterStore } from './counter.store';
import type { GcraOutcome } from './gcra';

export type LimitScope = 'key' | 'project' | 'team' | 'org' | 'model' | 'end_user';
export type LimitKind = 'requests' | 'tokens';

/** One limit that applies to a request. */
export interface ApplicableLimit {
  scope: LimitScope;
  /** The scope's id (key id, project id, …). */
  id: string;
  kind: LimitKind;
  perMinute: number;
  /** How a refusal names it, when not `<scope> <id>` (an end user's id is a digest: its message says whose). */
  shown?: string;
}

/** The tokens a request may spend: what its token limits are charged when it is admitted. */
export interface TokenDemand {
  /** The prompt's estimate. */
  prompt: number;
  /** The most output tokens it may get, all its answers together. */
  output: number;
  /**
   * Whether the request set that maximum itself (`max_tokens` and the like). A maximum it did not
   * set is a default, reserved only up to what the tightest token limit holds beside the prompt:
   * asking for no maximum never makes a request too large.
   */
  outputAsked: boolean;
}

/** A request that spends no tokens (or whose token limits do not apply). */
export const NO_TOKENS: TokenDemand = { prompt: 0, output: 0, outputAsked: true };

/** What was charged, so the token charge can be corrected once the real usage is known. */
export interface Admission {
  headers: Record<string, string>;
  /**
   * Charges the difference between the real token count and what was reserved (a refund when it
   * used less, the whole reservation back when it used nothing); only the first call counts.
   */
  settle(actualTokens: number): Promise<void>;
}

export type FailMode = 'open' | 'closed';

const WINDOW_MS = 60_000;
const NOTHING: Admission = { headers: {}, settle: async () => undefined };

/**
 * Requests and tokens per minute, per key, project, team, organisation and model, checked all at once.
 * Redis trouble is handled by the fail mode: `open` lets the request through (reported via
 * `onStoreFailure`), `closed` refuses it with 503.
 */
export class RateLimiter {
  constructor(
    private readonly store: CounterStore,
    private readonly failMode: FailMode,
    private readonly onStoreFailure: (error: unknown) => void,
  ) {}

  async admit(limits: readonly ApplicableLimit[], demand: TokenDemand): Promise<Admission> {
    if (limits.length === 0) return NOTHING;
    const tokenLimits = limits.filter((l) => l.kind === 'tokens');
    const reserved = reservedTokens(tokenLimits, demand);
    // More tokens than a limit admits in a whole window can never be served: waiting does not
    // help, so no Retry-After, and `x-should-retry: false` stops the SDKs' automatic retries.
    const tooLarge = reserved > 0 ? tokenLimits.find((l) => reserved > l.perMinute) : undefined;
    if (tooLarge) {
      throw new RateLimitedError(
        'tokens',
        `Request too large for tokens per minute (TPM) on ${shownAs(tooLarge)}: Limit ${tooLarge.perMinute}, Requested ${reserved}. ` +
          'The input or output tokens must be reduced in order to run successfully.',
        undefined,
        { 'x-should-retry': 'false' },
      );
    }
    const charges = limits.map((l) => charge(l, l.kind === 'requests' ? 1 : reserved));
    // The take's own id in the store, for `release` and `settle` to name exactly it.
    const id = `request:${randomUUID()}`;
    let outcomes: GcraOutcome[];
    try {
      outcomes = await this.store.take(charges, id);
    } catch (error) {
      // Redis may have run it all the same (an answer that timed out, a connection that closed
      // after sending it): give back what it charged, and make it charge nothing if it runs later.
      // Under either fail mode the request is not held to it. One refused unsent never ran.
      if (!notSent(error)) void this.untilStored(() => this.store.release(id, charges));
      this.onStoreFailure(error);
      if (this.failMode === 'closed') throw new GatewayError('unavailable', 'Rate limits cannot be checked right now; the request was not served. Please retry.', { code: 'rate_limiter_unavailable' });
      return NOTHING;
    }
    const deniedAt = outcomes.findIndex((o) => !o.allowed);
    // A refused request is charged to none of its limits: the ones that would have admitted it
    // still have what they had before it.
    const headers = rateLimitHeaders(limits, deniedAt === -1 ? outcomes : outcomes.map((o, i) => (o.allowed ? uncharged(o, limits[i] as ApplicableLimit, charges[i] as CounterCharge) : o)));
    if (deniedAt !== -1) {
      // The limit that keeps it waiting longest: the one its message names, and Retry-After's wait.
      const longest = outcomes.reduce((at, o, i) => (o.retryAfterMs > (outcomes[at] as GcraOutcome).retryAfterMs ? i : at), deniedAt);
      const limit = limits[longest] as ApplicableLimit;
      const outcome = outcomes[longest] as GcraOutcome;
      const retryAfterMs = outcome.retryAfterMs;
      const what = limit.kind === 'requests' ? 'requests per minute (RPM)' : 'tokens per minute (TPM)';
      throw new RateLimitedError(
        limit.kind,
        `Rate limit reached for ${what} on ${shownAs(limit)}: limit ${limit.perMinute}, remaining ${outcome.remaining}` +
          (limit.kind === 'tokens' ? `, requested ${reserved}` : '') +
          `. Please try again in ${formatDuration(outcome.retryAfterMs)}.`,
        retryAfterMs,
        headers,
      );
    }
    let settled = false;
    // Each token limit's TAT as this request left it: a refund gives back only what is still ahead of it.
    const until = limits.flatMap((l, i) => (l.kind === 'tokens' ? [(outcomes[i] as GcraOutcome).nextTat] : []));
    return {
      headers,
      settle: async (actualTokens) => {
        // A second correction would charge the difference again.
        if (settled) return;
        settled = true;
        // A negative count is a bug where usage was counted: its refund would reach past this
        // request's own reservation into earlier ones. The reservation stands, as for a count that
        // is not a number (which the store ignores).
        if (actualTokens < 0) return;
        // What the request did not use is given back: its limits' TATs move back by it, in the
        // store's one script, never to before now, and by no more of it than is still to refill
        // (a long request's reservation has partly refilled, and later charges stand behind it).
        const delta = actualTokens - reserved;
        if (tokenLimits.length === 0 || delta === 0) return;
        const corrections = tokenLimits.map((l, i) => ({ ...charge(l, delta), until: until[i] ?? 0 }));
        await this.untilStored(() => this.store.settle(id, corrections));
      },
    };
  }

  /**
   * Sends a settle or a release until the store has it: again a little later after any failure,
   * one that may have run (a timeout) included, since the store applies each take's once.
   */
  private async untilStored(send: () => Promise<void>): Promise<void> {
    try {
      await sendIdempotent(send);
    } catch (error) {
      this.onStoreFailure(error);
    }
  }
}

/**
 * ioredis refused the command before writing it: the connection was not writable, and with no
 * offline queue it rejects at once. (A connection that closes rejects the commands it had sent as
 * well, which may have run: not this case.)
 */
function notSent(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith("Stream isn't writeable");
}

/**
 * What a request's token limits are charged at admission: its prompt and the most output it may
 * get, as OpenAI counts `max_tokens` into its TPM limits; settled to the real count when it ends.
 * An output maximum the request did not ask for (a default) is reserved only up to what the
 * tightest token limit holds beside the prompt, so a request is never too large by a default alone.
 */
export function reservedTokens(tokenLimits: readonly ApplicableLimit[], demand: TokenDemand): number {
  if (demand.outputAsked || tokenLimits.length === 0) return demand.prompt + demand.output;
  const tightest = Math.min(...tokenLimits.map((l) => l.perMinute));
  return demand.prompt + Math.min(demand.output, Math.max(0, tightest - demand.prompt));
}

/**
 * A 429 that carries the rate-limit headers of the decision, and the kind of limit its message
 * names: OpenAI's answer has it as the error's `type` (see `toOpenAIError`).
 */
export class RateLimitedError extends GatewayError {
  constructor(
    readonly limitKind: LimitKind,
    message: string,
    retryAfterMs: number | undefined,
    readonly headers: Record<string, string>,
  ) {
    super('rate_limited', message, { code: 'rate_limit_exceeded', retryAfterMs, retryable: false });
  }
}

/** An admitting outcome as it was before the request's charge. */
function uncharged(outcome: GcraOutcome, limit: ApplicableLimit, charged: CounterCharge): GcraOutcome {
  const interval = WINDOW_MS / limit.perMinute;
  return { ...outcome, remaining: Math.min(limit.perMinute, outcome.remaining + charged.cost), resetMs: Math.max(0, Math.ceil(outcome.resetMs - charged.cost * interval)) };
}

function charge(limit: ApplicableLimit, cost: number): CounterCharge {
  return { key: `rl:${limit.scope}:${limit.id}:${limit.kind}`, limit: limit.perMinute, windowMs: WINDOW_MS, cost };
}

/** OpenAI's headers, for the tightest request limit and the tightest token limit. */
export function rateLimitHeaders(limits: readonly ApplicableLimit[], outcomes: readonly GcraOutcome[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const kind of ['requests', 'tokens'] as const) {
    let tightest: { limit: ApplicableLimit; outcome: GcraOutcome } | undefined;
    limits.forEach((limit, i) => {
      const outcome = outcomes[i] as GcraOutcome;
      if (limit.kind === kind && (!tightest || outcome.remaining < tightest.outcome.remaining)) tightest = { limit, outcome };
    });
    if (!tightest) continue;
    headers[`x-ratelimit-limit-${kind}`] = String(tightest.limit.perMinute);
    headers[`x-ratelimit-remaining-${kind}`] = String(tightest.outcome.remaining);
    headers[`x-ratelimit-reset-${kind}`] = formatDuration(tightest.outcome.resetMs);
  }
  return headers;
}

/** OpenAI's duration style (Go's): `20ms`, `1.5s`, `6m0s`, `1h15m0s`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.ceil(ms))}ms`;
  const hours = Math.floor(ms / 3_600_000);
  const minutes = Math.floor((ms % 3_600_000) / 60_000);
  const seconds = Number(((ms % 60_000) / 1000).toFixed(3));
  if (hours > 0) return `${hours}h${minutes}m${seconds}s`;
  return minutes > 0 ? `${minutes}m${seconds}s` : `${seconds}s`;
}

/** A limit as a refusal names it: `key k1`, `project acme/search`, or its own wording. */
function shownAs(limit: ApplicableLimit): string {
  return limit.shown ?? `${limit.scope} ${limit.id}`;
}
