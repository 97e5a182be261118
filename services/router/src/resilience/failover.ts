import type { RetrySettings } from '@openrouter/config';
import { routerv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import type { Candidate, RoutePlan } from '../routing/route-planner';
import { stopwatch, type Clock, type Random } from '../stats/clock';
import type { LiveStats } from '../stats/deployment-stats';
import { backoffDelay, sleep } from './backoff';
import type { CircuitBreakers } from './circuit-breaker';

const MAX_COOLDOWN_MS = 10 * 60_000;

/** Opens one call to one deployment; the iterator's first `next()` is the call's first answer event. */
export type AttemptOpener<T> = (candidate: Candidate, signal: AbortSignal) => AsyncIterator<T>;

/**
 * Told about every attempt's outcome, with its failure if it failed (gray releases watch the canary
 * this way). `cutShort`: the attempt was stopped by the request's deadline before its own timeout,
 * so its failure says nothing about the deployment.
 */
export type AttemptListener = (candidate: Candidate, attempt: routerv1.RouteAttempt, failure: GatewayError | undefined, cutShort: boolean) => void;

/** Told when the call that answered fails on the deployment's side after its first answer event (a stream cut off). */
export type AnswerFailureListener = (candidate: Candidate, failure: GatewayError) => void;

/** Told just before each call to a deployment, with the attempts made before it. */
export type CallListener = (candidate: Candidate, earlier: readonly routerv1.RouteAttempt[]) => void;

export interface FailoverDependencies {
  retry: RetrySettings;
  contextFallback: boolean;
  breakers: CircuitBreakers;
  stats: LiveStats;
  clock: Clock;
  random: Random;
}

export interface Served<T> {
  candidate: Candidate;
  attempts: routerv1.RouteAttempt[];
  first: T;
  rest: AsyncIterator<T>;
  /** Call once the answer has been fully relayed (or failed after the first event). */
  finish(error?: unknown): void;
}

/**
 * Tries the plan's deployments in order until one produces its first answer event (the first
 * that `options.commits`; those before it are held back and served with it): retryable
 * failures (rate limits, 5xx, timeouts, lost connections) move on after a jittered backoff,
 * within the total deadline and attempt budget (a later streamed attempt is not started with less
 * time left than its deployment's expected first token, and one the deadline stops counts against
 * no one); a deployment cooling down after a Retry-After (429, or 503/529 overloaded) is
 * waited for when the wait fits `maxRetryAfterMs` and the deadline, else skipped; a context-length
 * failure of a chat request moves to a model with a larger window when fallbacks are allowed
 * (`RoutePlan.contextFallback`); anything else is the
 * client's answer at once. Once a first answer event arrived
 * nothing is retried, so a stream never fails over after the client saw a token.
 */
export async function serveWithFailover<T>(
  plan: RoutePlan,
  open: AttemptOpener<T>,
  signal: AbortSignal,
  deps: FailoverDependencies,
  options: {
    stream: boolean;
    tokens: number;
    onAttempt?: AttemptListener;
    onCall?: CallListener;
    onAnswerFailed?: AnswerFailureListener;
    /**
     * Whether an event commits the request to its deployment (default: every event). Events before
     * the first that does (a stream's opening chunk that only names the role) are held back: the
     * attempt's timeout still runs and a failure still moves on, since the client has seen nothing.
     */
    commits?: (event: T) => boolean;
    /**
     * Whether a candidate may still be called, asked before each attempt: the plan was made before
     * failover began, and what it chose may have become wrong meanwhile (a gray release's canary
     * rolled back by this request's own failure). Unset: every candidate may.
     */
    eligible?: (candidate: Candidate) => boolean;
    /**
     * The most the whole failover may take, attempts and backoffs together, for a call something
     * else waits on (a guardrail's moderation call, before its request is routed): the deadline is
     * the earlier of this and `deadlineMs`, and no attempt runs past it, a non-streamed one
     * included (which otherwise gets `completionTimeoutMs`). Unset: `deadlineMs` only stops new attempts.
     */
    timeoutMs?: number;
  },
): Promise<Served<T>> {
  const { retry, breakers, stats, clock } = deps;
  const budget = options.timeoutMs;
  const deadline = clock.now() + Math.min(retry.deadlineMs, budget ?? Infinity);
  // The time one attempt may take, left alone by the deadline (a bounded call's whole budget at most).
  const attemptTimeoutMs = Math.min(options.stream ? retry.attemptTimeoutMs : retry.completionTimeoutMs, budget ?? Infinity);
  // Streams and bounded calls: the deadline cuts an attempt short. An unbounded non-streamed
  // attempt is not: a long generation is not abandoned and paid for twice.
  const deadlineBounds = options.stream || budget !== undefined;
  const attempts: routerv1.RouteAttempt[] = [];
  let queue = [...plan.candidates];
  /** Every deployment queued for this request, tried or not: a larger-context fallback adds none twice. */
  const queued = new Set(queue.map((c) => c.deployment.id));
  const retryable = new Set<string>();
  let lastError: GatewayError | undefined;
  /** The earliest a deployment left out for its Retry-After takes calls again (0: none was). */
  let skippedUntil = 0;
  let cursor = 0;

  let round = 0;
  const next = (): Candidate | undefined => {
    for (;;) {
      while (cursor < queue.length) {
        const candidate = queue[cursor++];
        if (!candidate) continue;
        if (round > 0 && !retryable.has(candidate.deployment.id)) continue;
        if (options.eligible && !options.eligible(candidate)) continue;
        if (breakers.of(candidate.deployment.id).available()) return candidate;
      }
      // Every candidate was tried: go round again over those that failed retryably.
      if (retryable.size === 0 || round >= retry.maxAttempts) return undefined;
      round++;
      cursor = 0;
    }
  };

  while (attempts.length < retry.maxAttempts) {
    const candidate = next();
    if (!candidate) break;
    let delay = attempts.length > 0 ? backoffDelay(attempts.length, retry, deps.random) : 0;
    // A deployment that sent Retry-After is waited for when the wait fits, else left out of this request.
    const cooling = breakers.coolingUntil(candidate.deployment.id);
    if (cooling) {
      const wait = cooling - clock.now();
      if (wait > retry.maxRetryAfterMs || clock.now() + wait >= deadline) {
        skippedUntil = skippedUntil ? Math.min(skippedUntil, cooling) : cooling;
        continue;
      }
      delay = Math.max(delay, wait);
    }
    if (attempts.length > 0 || delay > 0) {
      if (clock.now() + delay >= deadline) break;
      // A later streamed attempt gets only the time left before the deadline. With less than the
      // deployment usually takes to its first token (as ranking expects it) it would most likely be
      // cut off for nothing but load and cost, so it is not made: the earlier attempt's failure stands.
      if (options.stream && attempts.length > 0 && deadline - clock.now() - delay < Math.min(candidate.latencyMs, retry.attemptTimeoutMs)) continue;
      try {
        await sleep(delay, signal);
      } catch {
        throw new GatewayError('cancelled', 'The client went away.');
      }
    }
    // A client gone before the call (while a guardrail's moderation call ran, before failover
    // began) would not stop it: the call's signal hears only of aborts from now on.
    if (signal.aborted) throw new GatewayError('cancelled', 'The client went away.');
    const breaker = breakers.of(candidate.deployment.id);
    const permit = breaker.tryAcquire();
    if (!permit) continue;
    const deploymentStats = stats.of(candidate.deployment.id);
    deploymentStats.begin(clock.now(), options.tokens);
    // Durations on the monotonic clock: the wall clock set back during a call would time it negative.
    const elapsed = stopwatch(clock);
    const call = new AbortController();
    const onAbort = (): void => call.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    let timedOut = false;
    const left = deadline - clock.now();
    // The deadline, not the attempt's own timeout, bounds a later attempt with less time left than
    // its own timeout (the first one always has the whole budget).
    const cutShort = deadlineBounds && attempts.length > 0 && left < attemptTimeoutMs;
    const timer = setTimeout(
      () => {
        timedOut = true;
        // The reason tells whoever watches the attempt's signal (its telemetry) a timeout from a client gone.
        call.abort(new GatewayError('timeout', `The deployment ${candidate.deployment.id} did not answer in time.`));
      },
      // A non-streamed answer arrives whole: its attempt gets the time a full generation takes.
      deadlineBounds ? Math.max(1, Math.min(attemptTimeoutMs, left)) : attemptTimeoutMs,
    );
    let iterator: AsyncIterator<T>;
    const held: T[] = [];
    options.onCall?.(candidate, attempts);
    try {
      iterator = openAttempt(open, candidate, call.signal);
      for (;;) {
        const next = await iterator.next();
        if (next.done) break;
        held.push(next.value);
        if (!options.commits || options.commits(next.value)) break;
      }
      if (held.length === 0) throw new GatewayError('upstream_error', 'The provider returned an empty answer.');
    } catch (error) {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      deploymentStats.end();
      if (signal.aborted) {
        breaker.release(permit);
        throw new GatewayError('cancelled', 'The client went away.', { cause: error });
      }
      const failure = timedOut ? new GatewayError('timeout', `The deployment ${candidate.deployment.id} did not answer in time.`, { cause: error }) : GatewayError.from(error);
      // Stopped by the router's own deadline before its attempt timeout: the deployment was not
      // given its time, so this says nothing about its health (like a refusal of this request).
      const stoppedByDeadline = timedOut && cutShort;
      // A refusal of this request (bad input, too long) says nothing about the deployment's health.
      if (failure.retryable && !stoppedByDeadline) breaker.failure(permit);
      else breaker.release(permit);
      const attempt = attemptRecord(candidate, elapsed(), failure);
      attempts.push(attempt);
      options.onAttempt?.(candidate, attempt, failure, stoppedByDeadline);
      if (stoppedByDeadline) {
        // The deadline has passed: no attempt starts now, and the client hears the failure that
        // led here (this attempt's timeout only when nothing failed before it).
        lastError ??= failure;
        break;
      }
      lastError = failure;
      const retryAfterMs = waitAsked(failure);
      if (retryAfterMs) breakers.coolDown(candidate.deployment.id, clock.now() + Math.min(retryAfterMs, MAX_COOLDOWN_MS));
      if (failure.kind === 'context_length_exceeded' && deps.contextFallback && plan.contextFallback) {
        const larger = plan.largerContext(candidate.model, queued);
        for (const c of larger) queued.add(c.deployment.id);
        queue = [...queue.slice(cursor).filter((c) => c.model.contextWindow > candidate.model.contextWindow), ...larger];
        // The larger windows are a new first round: none of them has failed this request yet.
        cursor = 0;
        round = 0;
        retryable.clear();
        continue;
      }
      if (!failure.retryable) throw failure;
      if ((retryAfterMs ?? 0) <= retry.maxRetryAfterMs) retryable.add(candidate.deployment.id);
      continue;
    }
    clearTimeout(timer);
    const ttft = elapsed();
    // Counted at the first answer event (a half-open circuit closes as soon as the probe answers);
    // a stream that fails after it has this success replaced by its failure, and one that does not
    // ends the deployment's failures in a row when it ends (see `finish`).
    breaker.success(permit);
    deploymentStats.observeFirstEvent(ttft, options.stream);
    const attempt = attemptRecord(candidate, ttft, undefined);
    attempts.push(attempt);
    options.onAttempt?.(candidate, attempt, undefined, false);
    let finished = false;
    const [first, ...after] = held as [T, ...T[]];
    return {
      candidate,
      attempts,
      first,
      rest: after.length === 0 ? iterator : withLeading(after, iterator),
      finish: (error?: unknown) => {
        if (finished) return;
        finished = true;
        signal.removeEventListener('abort', onAbort);
        deploymentStats.end();
        if (error === undefined) {
          if (options.stream) deploymentStats.observeLatency(elapsed());
          breaker.finished(permit);
          return;
        }
        // As before the first event: only a failure on the deployment's side counts against it; a
        // refusal of the request (content filter, bad request) or a client gone leaves its success.
        const failure = GatewayError.from(error);
        if (signal.aborted || !failure.retryable) {
          breaker.finished(permit);
          return;
        }
        breaker.failure(permit);
        // Whoever counted the first answer event as a success (a gray release) counts this failure instead.
        options.onAnswerFailed?.(candidate, failure);
      },
    };
  }
  // Deployments left out for their Retry-After: the client learns when capacity is back.
  if (skippedUntil && (!lastError || lastError.retryable)) {
    const retryAfterMs = Math.max(0, skippedUntil - clock.now());
    throw new GatewayError('rate_limited', `The providers serving \`${plan.requested}\` asked for a pause (rate limited or overloaded); retry after ${Math.ceil(retryAfterMs / 1000)} s.`, { retryAfterMs, code: 'rate_limit_exceeded' });
  }
  if (lastError) throw lastError;
  throw plan.refusal ?? new GatewayError('unavailable', `No deployment can serve \`${plan.requested}\` right now.`, { code: 'no_available_deployment' });
}

/**
 * The wait a failure asks for: a Retry-After on a 429, or on a 503/529 overloaded answer (the
 * provider saying when it will have room again). Either cools the deployment down for that long.
 */
function waitAsked(failure: GatewayError): number | undefined {
  return failure.kind === 'rate_limited' || failure.kind === 'overloaded' ? failure.retryAfterMs || undefined : undefined;
}

/** The iterator's events after `leading`, which were read from it already; returning returns it. */
function withLeading<T>(leading: T[], iterator: AsyncIterator<T>): AsyncIterator<T> {
  return {
    next: () => (leading.length > 0 ? Promise.resolve({ done: false, value: leading.shift() as T }) : iterator.next()),
    return: async (value?: unknown) => (await iterator.return?.(value)) ?? { done: true, value: undefined },
  };
}

/** Opens an attempt; a synchronous throw (no adapter for the provider, say) fails this deployment only. */
function openAttempt<T>(open: AttemptOpener<T>, candidate: Candidate, signal: AbortSignal): AsyncIterator<T> {
  try {
    return open(candidate, signal);
  } catch (error) {
    if (error instanceof GatewayError) throw error;
    throw new GatewayError('unavailable', `The deployment ${candidate.deployment.id} could not be called.`, { cause: error });
  }
}

function attemptRecord(candidate: Candidate, latencyMs: number, error: GatewayError | undefined): routerv1.RouteAttempt {
  return {
    model: candidate.model.id,
    provider: candidate.deployment.provider,
    deployment: candidate.deployment.id,
    status: error ? routerv1.RouteAttemptStatus.ROUTE_ATTEMPT_STATUS_ERROR : routerv1.RouteAttemptStatus.ROUTE_ATTEMPT_STATUS_OK,
    errorKind: error?.kind ?? '',
    latencyMs: Math.max(0, Math.round(latencyMs)),
    upstreamStatus: error?.upstreamStatus ?? 0,
  };
}
