import { performance } from 'node:perf_hooks';
import type { Logger } from '@openrouter/observability';
import type { Lease, LeaseHold } from '@openrouter/service-runtime';

/** What the active replica runs: started on taking the lease, stopped on losing it. */
export type StartActive = () => Promise<StopActive>;
export type StopActive = () => Promise<void>;

export interface ActiveReplicaOptions {
  /** The lease's time to live in Redis. */
  ttlMs: number;
  /** The active replica renews every this long (a third of the time to live by default). */
  renewEveryMs?: number;
  /** A standby tries to take the lease every this long (the renewal interval by default). */
  tryEveryMs?: number;
  /** After a failed renewal, the next one is tried this soon (a fifteenth of the time to live by default). */
  retryEveryMs?: number;
  /**
   * The share of the time to live after the last renewal sent that succeeded past which the active
   * replica stops: before the key can expire and another replica take it (2/3 by default).
   */
  safeShare?: number;
  /** A monotonic clock in ms (wall-clock jumps must not stretch the lease). */
  clock?: () => number;
  /** Told each change of role. */
  onRole?: (active: boolean) => void;
}

export type ReplicaRole = 'active' | 'standby';

/**
 * One replica of several competing for a lease; the holder runs `start`'s work, the others stand
 * by and try to take the lease every `tryEveryMs`. The holder renews every `renewEveryMs`; it
 * counts itself active only until `safeShare` of the time to live after the last renewal it sent
 * that succeeded (measured from the send, so never later than the key's own expiry), and stops its
 * work when that passes without a renewal — a Redis that does not answer, a long pause — or at
 * once when a renewal finds the key another's. `isActive()` is that deadline, read at the moment:
 * what must never happen on two replicas (a notification) asks it right before doing it, so a late
 * timer after a pause cannot let it through.
 */
export class ActiveReplica {
  private readonly renewEveryMs: number;
  private readonly tryEveryMs: number;
  private readonly retryEveryMs: number;
  private readonly safeMs: number;
  private readonly clock: () => number;
  /** Active until then (monotonic ms); 0 while standby. */
  private validUntil = 0;
  /** After taking a lease that was lost rather than handed over: not active before this time. */
  private activeNotBefore = 0;
  /** Moves at every stand-by and release, so a hold's reply sent before one is ignored. */
  private generation = 0;
  private stop: StopActive | undefined;
  /** Starts and stops, one at a time. */
  private transition: Promise<void> = Promise.resolve();
  private attemptTimer: NodeJS.Timeout | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private attempting: Promise<void> | undefined;
  private closed = false;
  private role: ReplicaRole = 'standby';

  constructor(
    private readonly lease: Lease,
    private readonly start: StartActive,
    private readonly logger: Logger,
    private readonly options: ActiveReplicaOptions,
  ) {
    const { ttlMs } = options;
    this.renewEveryMs = options.renewEveryMs ?? Math.max(1, Math.floor(ttlMs / 3));
    this.tryEveryMs = options.tryEveryMs ?? this.renewEveryMs;
    this.retryEveryMs = options.retryEveryMs ?? Math.max(1, Math.floor(ttlMs / 15));
    this.safeMs = Math.floor(ttlMs * (options.safeShare ?? 2 / 3));
    if (this.renewEveryMs >= this.safeMs) throw new RangeError(`the lease must be renewed (every ${this.renewEveryMs} ms) well within its safe share of ${this.safeMs} ms`);
    this.clock = options.clock ?? (() => performance.now());
  }

  /** Whether this replica may act as the active one at this moment. */
  isActive(): boolean {
    return this.role === 'active' && this.clock() < this.validUntil;
  }

  /**
   * Whether this replica still holds the lease safely at this moment, active or stopping: while it
   * shuts down it keeps delivering what it had queued until the lease is given up or runs out.
   */
  holdsLease(): boolean {
    return this.clock() < this.validUntil;
  }

  /** What it is: active (its work started, or starting), or standing by. */
  get current(): ReplicaRole {
    return this.role;
  }

  /** Starts competing; the first attempt is made now. */
  begin(): void {
    this.schedule(0);
  }

  /** Stops competing, stops the work if it runs, then gives the lease up so a standby takes over at its next attempt. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.attemptTimer);
    clearTimeout(this.expiryTimer);
    await this.attempting;
    await this.standBy('shutting down', 'info', true);
    await this.transition;
    this.validUntil = 0;
    await this.lease.release().catch((error: unknown) => this.logger.warn({ err: error }, 'could not release the alerting lease; it expires on its own'));
  }

  private schedule(delayMs: number): void {
    if (this.closed) return;
    this.attemptTimer = setTimeout(() => {
      this.attempting = this.attempt().finally(() => (this.attempting = undefined));
    }, delayMs);
    this.attemptTimer.unref();
  }

  private async attempt(): Promise<void> {
    const sentAt = this.clock();
    // Every stand-by and release moves it: a reply to a hold sent before one of them is stale.
    const generation = this.generation;
    let state: LeaseHold;
    try {
      state = this.lease.holdState ? await this.lease.holdState() : (await this.lease.hold()) ? 'renewed' : 'held-by-other';
    } catch (error) {
      if (this.closed) return;
      if (this.role === 'active') this.logger.warn({ err: error, activeForMs: Math.max(0, Math.round(this.validUntil - this.clock())) }, 'alerting lease renewal failed; retrying');
      else this.logger.debug({ err: error }, 'alerting lease could not be tried');
      this.schedule(this.role === 'active' ? this.retryEveryMs : this.tryEveryMs);
      return;
    }
    if (this.closed) return;
    if (generation !== this.generation) {
      // Sent before this replica stood by or gave the lease up: what it says no longer holds.
      this.schedule(this.tryEveryMs);
      return;
    }
    const held = state !== 'held-by-other';
    // An answer that came too late to count (a pause, a hung connection): another replica may hold the key by now.
    if (held && this.clock() >= sentAt + this.safeMs) {
      this.logger.warn({ waitedMs: Math.round(this.clock() - sentAt) }, 'alerting lease answer came too late to count; trying again');
      this.schedule(this.retryEveryMs);
      return;
    }
    if (state === 'taken' && this.role === 'standby') {
      // Found free without being handed over: the key expired, was evicted or lost in a failover,
      // and its previous holder may still count itself active for up to its safe span. This
      // replica keeps the lease and starts only once that span has passed since now.
      this.activeNotBefore = this.clock() + this.safeMs;
      this.logger.info({ waitMs: this.safeMs }, 'alerting lease taken after it was lost, not handed over: waiting out any previous holder before becoming active');
    } else if (state === 'handed-over') {
      this.activeNotBefore = 0;
    }
    if (held) {
      this.validUntil = Math.max(this.validUntil, sentAt + this.safeMs);
      if (this.role === 'standby' && this.clock() >= this.activeNotBefore) {
        this.watchExpiry();
        this.becomeActive();
      } else if (this.role === 'active') {
        this.watchExpiry();
      }
    } else if (this.role === 'active') {
      await this.standBy('the lease is held by another replica', 'warn');
    }
    const holding = held && this.role === 'standby';
    this.schedule(this.role === 'active' ? this.renewEveryMs : holding ? Math.min(this.renewEveryMs, Math.max(1, Math.ceil(this.activeNotBefore - this.clock()))) : this.tryEveryMs);
  }

  /** Stops the work when the active span ends without a renewal, whatever the renewal under way is doing. */
  private watchExpiry(): void {
    clearTimeout(this.expiryTimer);
    this.expiryTimer = setTimeout(() => {
      if (this.role === 'active' && this.clock() >= this.validUntil) void this.standBy('the lease could not be renewed in time', 'warn');
      else if (this.role === 'active') this.watchExpiry();
    }, Math.max(0, this.validUntil - this.clock()));
    this.expiryTimer.unref();
  }

  private becomeActive(): void {
    this.role = 'active';
    this.logger.info({ activeForMs: Math.round(this.validUntil - this.clock()) }, 'alerting lease gained: this replica is the active one');
    this.options.onRole?.(true);
    this.transition = this.transition.then(async () => {
      // Lost while the previous stop was under way: nothing to start.
      if (this.role !== 'active') return;
      try {
        this.stop = await this.start();
      } catch (error) {
        this.logger.error({ err: error }, 'alerting could not start as the active replica; giving the lease up and standing by');
        this.generation += 1;
        this.role = 'standby';
        this.validUntil = 0;
        clearTimeout(this.expiryTimer);
        this.options.onRole?.(false);
        // Another replica may start where this one could not.
        await this.lease.release().catch(() => undefined);
        return;
      }
      // Lost while starting: stopped at once.
      if (this.role !== 'active') await this.stopWork();
    });
  }

  /** `stillHeld`: giving the lease up at shutdown, so it holds (without renewals) until released: the work may finish delivering meanwhile. */
  private async standBy(reason: string, level: 'info' | 'warn', stillHeld = false): Promise<void> {
    this.generation += 1;
    if (this.role === 'active') {
      this.role = 'standby';
      if (!stillHeld) this.validUntil = 0;
      clearTimeout(this.expiryTimer);
      this.options.onRole?.(false);
      this.logger[level]({ reason }, level === 'warn' ? 'alerting lease lost: this replica stops and stands by' : 'alerting lease given up: this replica stops');
      this.transition = this.transition.then(() => this.stopWork());
    }
    await this.transition;
  }

  private async stopWork(): Promise<void> {
    const stop = this.stop;
    this.stop = undefined;
    if (!stop) return;
    await stop().catch((error: unknown) => this.logger.error({ err: error }, 'alerting did not stop cleanly'));
  }
}
