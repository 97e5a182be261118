import type { Logger } from '@openrouter/observability';
import { randomId } from './batches/batch-record';

/**
 * Claims on work that any replica may run (batches, background responses): one holder at a time,
 * for a lease it renews while it runs, so that a replica that dies lets its work go within a lease.
 */

/**
 * Renews a claim every third of its lease (`renew` answers whether it is still the holder's) while
 * its work runs: `lost` when it is no longer the holder's, `failed` when the store could not be
 * reached (the next renewal tries again). Returns what stops renewing.
 */
export function renewWhileRunning(renew: () => Promise<boolean>, leaseMs: number, lost: () => void, failed: (error: unknown) => void): () => void {
  const timer = setInterval(() => {
    renew().then((held) => {
      if (!held) lost();
    }, failed);
  }, Math.max(50, Math.floor(leaseMs / 3)));
  timer.unref();
  return () => clearInterval(timer);
}

/** Claims held in this process (for the stores of a gateway without Redis). */
export class MemoryClaims {
  private readonly claims = new Map<string, { holder: string; until: number }>();

  constructor(private readonly now: () => number) {}

  /** Claims `id` for `holder` for `ms` when no other holder's claim runs; true when claimed (or extended). */
  claim(id: string, holder: string, ms: number): boolean {
    const claim = this.claims.get(id);
    if (claim && claim.until > this.now() && claim.holder !== holder) return false;
    this.claims.set(id, { holder, until: this.now() + ms });
    return true;
  }

  /** Extends `holder`'s running claim; false when it is no longer its own. */
  renew(id: string, holder: string, ms: number): boolean {
    const claim = this.claims.get(id);
    if (!claim || claim.holder !== holder || claim.until <= this.now()) return false;
    claim.until = this.now() + ms;
    return true;
  }

  release(id: string, holder: string): void {
    if (this.claims.get(id)?.holder === holder) this.claims.delete(id);
  }

  /** The work is gone: so is its claim, whoever held it. */
  drop(id: string): void {
    this.claims.delete(id);
  }
}

/**
 * What a replica's runner of claimed work shares (batches, background responses): its holder name,
 * a look for work every `pollMs` from `start` until `stopLooking`, the tasks it started (a closing
 * runner waits for them), and warnings logged at most once a minute (a store that is away would
 * otherwise log at every look).
 */
export abstract class ClaimRunner {
  protected readonly holder = randomId('ingress-', 16);
  protected readonly tasks = new Set<Promise<void>>();
  protected closed = false;
  /** Aborted as the runner stops taking work: a wait between two tries ends at once. */
  protected readonly closing = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private lastWarning = 0;

  constructor(
    protected readonly logger: Logger,
    private readonly pollMs: number,
    /** What a look that failed is logged as. */
    private readonly lookFailed: string,
  ) {}

  start(): void {
    this.schedule(0);
  }

  /** One look for work: claims what it may run and starts it (`track`). */
  protected abstract look(): Promise<void>;

  /** Takes no more work; the tasks running go on. */
  protected stopLooking(): void {
    this.closed = true;
    this.closing.abort();
    clearTimeout(this.timer);
  }

  protected track(task: Promise<void>): void {
    this.tasks.add(task);
    void task.finally(() => this.tasks.delete(task));
  }

  protected warn(error: unknown, message: string): void {
    if (Date.now() - this.lastWarning < 60_000) return;
    this.lastWarning = Date.now();
    this.logger.warn({ err: error }, message);
  }

  private schedule(ms: number): void {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      this.look()
        .catch((error: unknown) => this.warn(error, this.lookFailed))
        .finally(() => this.schedule(this.pollMs));
    }, ms);
    this.timer.unref();
  }
}
