import type { BreakerSettings } from '@openrouter/config';
import type { Clock } from '../stats/clock';
import { SlidingWindow } from '../stats/sliding-window';

const REQUESTS = 0;
const ERRORS = 1;

export type BreakerState = 'closed' | 'open' | 'half_open';

/** What `tryAcquire` hands out: the results of a call count according to how it was let through. */
export interface BreakerPermit {
  /** The single call let through a half-open circuit; only its result closes or reopens it. */
  readonly probe: boolean;
}

/** What a call's success changed, so that a later failure of the same call can take it back. */
interface CountedSuccess {
  /** The window's bucket it entered (the newest, after a clock step back, not the bucket of that time). */
  bucket: number;
  /** The breaker's `successes` just after it: unchanged while no later success was counted. */
  serial: number;
}

/**
 * One per call: the times the circuit had opened when it was let through, and its counted success
 * (a stream's first token), which the call may still fail after.
 */
class Permit implements BreakerPermit {
  success: CountedSuccess | undefined;

  constructor(
    readonly probe: boolean,
    readonly openings: number,
  ) {}
}

/**
 * A circuit breaker per deployment: consecutive failures or an error rate over a sliding window
 * open it; after the cooldown one probe is let through (half-open); its success closes the
 * circuit, its failure opens it again. While the circuit is open or half-open only the probe's
 * result changes it: a slow call let through before it opened neither closes nor reopens it, nor
 * counts once a probe closed it again (it says how the deployment was before it failed).
 * A call that fails after its success was counted (a stream cut off after its first token) counts
 * once, as a failure: its success is taken back. Such a call (one given a permit) enters the
 * window as a success at its first answer event, but ends the failures in a row only when it
 * ends without failing (`finished`): streams that overlap, each failing after its first token,
 * are failures in a row, however their first tokens and failures interleave.
 * Hand-written rather than cockatiel's: the router must read the state without running a call
 * (to rank and explain candidates), decide success at the first streamed event rather than when
 * a promise settles, and run on an injected clock.
 */
export class CircuitBreaker {
  private state: BreakerState = 'closed';
  private consecutive = 0;
  private openUntil = 0;
  /** The probe in flight while half-open. */
  private probe: Permit | undefined;
  /** Successes counted so far, and times the circuit opened: what tells a counted success was the latest, in the same window. */
  private successes = 0;
  private openings = 0;
  /** Calls and failures over the last `windowMs`. */
  private readonly window: SlidingWindow;

  constructor(
    private readonly settings: BreakerSettings,
    private readonly clock: Clock,
  ) {
    this.window = new SlidingWindow(settings.windowMs, 2);
  }

  /** The state as routing sees it now: an open circuit whose cooldown passed reads half-open. */
  current(): BreakerState {
    if (this.state !== 'open') return this.state;
    const now = this.clock.now();
    // Further than a cooldown away, the clock was set back since the circuit opened: the cooldown
    // starts over now, rather than keeping the deployment out for as long as the step.
    if (this.openUntil - now > this.settings.cooldownMs) this.openUntil = now + this.settings.cooldownMs;
    return now >= this.openUntil ? 'half_open' : 'open';
  }

  /** A permit when a call may go out now (in half-open, the single probe), else undefined. */
  tryAcquire(): BreakerPermit | undefined {
    const state = this.current();
    if (state === 'closed') return new Permit(false, this.openings);
    if (state === 'open' || this.probe) return undefined;
    this.state = 'half_open';
    this.probe = new Permit(true, this.openings);
    return this.probe;
  }

  /** True when a call could go out now (without reserving anything). */
  available(): boolean {
    const state = this.current();
    return state === 'closed' || (state === 'half_open' && !this.probe);
  }

  /**
   * The call answered (a stream: its first answer event arrived): a success in the window. The
   * probe closes the circuit now. Any other call given a permit may still fail (a stream, after
   * its first token): it ends the failures in a row once it has ended without failing
   * (`finished`). Without a permit: a whole call let through while closed, a success at once.
   */
  success(permit?: BreakerPermit): void {
    if (permit !== undefined && permit === this.probe) {
      this.state = 'closed';
      this.probe = undefined;
      this.consecutive = 0;
      this.window.clear();
    }
    if (this.state !== 'closed' || this.stale(permit)) return;
    const bucket = this.record(true);
    this.successes++;
    if (permit instanceof Permit) permit.success = { bucket, serial: this.successes };
    else this.consecutive = 0;
  }

  /**
   * The call whose success was counted ended without failing on the deployment's side (a stream
   * answered to its end, or ended by its client or by a refusal of the request itself): the
   * failures in a row end here. Nothing for a call whose success was not counted, or was counted
   * before the circuit last opened.
   */
  finished(permit: BreakerPermit): void {
    if (!(permit instanceof Permit) || permit.success === undefined) return;
    permit.success = undefined;
    if (!this.stale(permit) && this.state === 'closed') this.consecutive = 0;
  }

  /**
   * The call failed in a way that says the deployment is unwell, before or after its success was
   * counted (a stream that fails after its first token).
   */
  failure(permit?: BreakerPermit): void {
    if (permit !== undefined && permit === this.probe) return this.open();
    if (this.state !== 'closed' || this.stale(permit)) return;
    // Its success was counted (the circuit has not opened since, emptying the window): the failure takes its place.
    if (permit instanceof Permit && permit.success) return this.failAfterSuccess(permit, permit.success);
    this.consecutive++;
    this.record(false);
    this.openIfUnwell();
  }

  /**
   * A call whose success was counted failed after all: it counts once, as a failure. Its success
   * did not end the failures in a row (only a call that finished does), so this one adds to them
   * whatever other calls answered meanwhile.
   */
  private failAfterSuccess(permit: Permit, earlier: CountedSuccess): void {
    permit.success = undefined;
    // The window holds the call already (unless it has left it): its success becomes an error.
    if (!this.window.addToBucket(earlier.bucket, this.clock.now(), ERRORS)) this.record(false);
    this.consecutive++;
    // A probe that closed the circuit and then failed, before any other call succeeded, failed as the probe: reopen.
    if (permit.probe && earlier.serial === this.successes) return this.open();
    this.openIfUnwell();
  }

  /**
   * The call ended without saying anything about the deployment's health (the client went away,
   * or the request itself was refused): no success, no failure, and a probe frees its slot.
   */
  release(permit: BreakerPermit): void {
    if (permit === this.probe) this.probe = undefined;
  }

  snapshot(): { state: BreakerState; consecutiveFailures: number; windowRequests: number; windowErrorRate: number; openUntil: number } {
    const [requests = 0, errors = 0] = this.window.totalsAt(this.clock.now());
    return {
      state: this.current(),
      consecutiveFailures: this.consecutive,
      windowRequests: requests,
      windowErrorRate: requests ? errors / requests : 0,
      openUntil: this.state === 'open' ? this.openUntil : 0,
    };
  }

  /**
   * Let through before the circuit last opened: its result says how the deployment was before
   * the failures that opened it, which a probe has been judged on since.
   */
  private stale(permit: BreakerPermit | undefined): boolean {
    return permit instanceof Permit && permit.openings !== this.openings;
  }

  private open(): void {
    this.state = 'open';
    this.probe = undefined;
    this.openings++;
    this.openUntil = this.clock.now() + this.settings.cooldownMs;
  }

  private openIfUnwell(): void {
    if (this.consecutive >= this.settings.consecutiveFailures || this.tooManyErrors()) this.open();
  }

  /** Counts a call in the window; returns the bucket it went into. */
  private record(ok: boolean): number {
    const now = this.clock.now();
    const bucket = this.window.add(now, REQUESTS);
    if (!ok) this.window.add(now, ERRORS);
    return bucket;
  }

  private tooManyErrors(): boolean {
    const [requests = 0, errors = 0] = this.window.totalsAt(this.clock.now());
    return requests >= this.settings.minRequests && errors / requests >= this.settings.errorRate;
  }
}

/** One breaker per deployment, plus Retry-After cooldowns. */
export class CircuitBreakers {
  private readonly breakers = new Map<string, CircuitBreaker>();
  private readonly cooldowns = new Map<string, number>();

  constructor(
    private readonly settings: BreakerSettings,
    readonly clock: Clock,
  ) {}

  of(deploymentId: string): CircuitBreaker {
    let breaker = this.breakers.get(deploymentId);
    if (!breaker) this.breakers.set(deploymentId, (breaker = new CircuitBreaker(this.settings, this.clock)));
    return breaker;
  }

  /** Skip the deployment until `until` (a provider's Retry-After). */
  coolDown(deploymentId: string, until: number): void {
    this.cooldowns.set(deploymentId, Math.max(until, this.cooldowns.get(deploymentId) ?? 0));
  }

  coolingUntil(deploymentId: string): number {
    const until = this.cooldowns.get(deploymentId) ?? 0;
    return until > this.clock.now() ? until : 0;
  }
}
