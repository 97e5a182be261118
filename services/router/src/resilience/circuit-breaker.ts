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

const CALL: BreakerPermit = { probe: false };
const PROBE: BreakerPermit = { probe: true };

/**
 * A circuit breaker per deployment: consecutive failures or an error rate over a sliding window
 * open it; after the cooldown one probe is let through (half-open); its success closes the
 * circuit, its failure opens it again. While the circuit is open or half-open only the probe's
 * result changes it: a slow call let through before it opened neither closes nor reopens it.
 * Hand-written rather than cockatiel's: the router must read the state without running a call
 * (to rank and explain candidates), decide success at the first streamed event rather than when
 * a promise settles, and run on an injected clock.
 */
export class CircuitBreaker {
  private state: BreakerState = 'closed';
  private consecutive = 0;
  private openUntil = 0;
  private probeInFlight = false;
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
    if (this.state === 'open' && this.clock.now() >= this.openUntil) return 'half_open';
    return this.state;
  }

  /** A permit when a call may go out now (in half-open, the single probe), else undefined. */
  tryAcquire(): BreakerPermit | undefined {
    const state = this.current();
    if (state === 'closed') return CALL;
    if (state === 'open' || this.probeInFlight) return undefined;
    this.state = 'half_open';
    this.probeInFlight = true;
    return PROBE;
  }

  /** True when a call could go out now (without reserving anything). */
  available(): boolean {
    const state = this.current();
    return state === 'closed' || (state === 'half_open' && !this.probeInFlight);
  }

  /** The call succeeded. Without a permit: a call let through while closed. */
  success(permit: BreakerPermit = CALL): void {
    if (permit.probe && this.state === 'half_open') {
      this.state = 'closed';
      this.probeInFlight = false;
      this.consecutive = 0;
      this.window.clear();
    }
    if (this.state !== 'closed') return;
    this.consecutive = 0;
    this.record(true);
  }

  /** The call failed in a way that says the deployment is unwell. */
  failure(permit: BreakerPermit = CALL): void {
    if (permit.probe && this.state === 'half_open') return this.open();
    if (this.state !== 'closed') return;
    this.consecutive++;
    this.record(false);
    if (this.consecutive >= this.settings.consecutiveFailures || this.tooManyErrors()) this.open();
  }

  /**
   * The call ended without saying anything about the deployment's health (the client went away,
   * or the request itself was refused): no success, no failure, and a probe frees its slot.
   */
  release(permit: BreakerPermit = CALL): void {
    if (permit.probe && this.state === 'half_open') this.probeInFlight = false;
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

  private open(): void {
    this.state = 'open';
    this.probeInFlight = false;
    this.openUntil = this.clock.now() + this.settings.cooldownMs;
  }

  private record(ok: boolean): void {
    const now = this.clock.now();
    this.window.add(now, REQUESTS);
    if (!ok) this.window.add(now, ERRORS);
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
