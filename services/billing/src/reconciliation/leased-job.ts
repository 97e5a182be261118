import type { Logger, ReconciliationJob, ReconciliationMetrics } from '@openrouter/observability';
import { SOLE_LEASE, type Lease } from '@openrouter/service-runtime';

export interface LeasedJobOptions {
  /** Held by the replica that runs the job (default: this process alone). */
  lease?: Lease;
  metrics?: ReconciliationMetrics;
}

/**
 * A periodic job that one billing replica at a time runs, the holder of its lease; one run at a
 * time in this process. Each run is counted (ran, not_leader, failed) with the corrections it made.
 */
export class LeasedJob<T> {
  private readonly lease: Lease;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;

  constructor(
    private readonly job: ReconciliationJob,
    private readonly run: () => Promise<T>,
    /** How many corrections a run's result made. */
    private readonly corrections: (result: T) => number,
    private readonly logger: Logger,
    private readonly options: LeasedJobOptions = {},
  ) {
    this.lease = options.lease ?? SOLE_LEASE;
  }

  start(intervalMs: number): void {
    if (intervalMs <= 0) return;
    this.timer = setInterval(() => {
      this.running ??= this.runIfLeased()
        .catch((error: unknown) => this.logger.warn({ err: error, job: this.job }, 'reconciliation failed; retrying next interval'))
        .finally(() => (this.running = undefined));
    }, intervalMs);
    this.timer.unref();
  }

  /** One run when this replica holds the lease; undefined when another does. */
  async runIfLeased(): Promise<T | undefined> {
    const metrics = this.options.metrics;
    try {
      if (!(await this.lease.hold())) {
        metrics?.notLeader(this.job);
        return undefined;
      }
      const result = await this.run();
      metrics?.ran(this.job, this.corrections(result));
      return result;
    } catch (error) {
      metrics?.failed(this.job);
      throw error;
    }
  }

  /**
   * Whether this replica has held the lease without a break since the run began, renewing it for
   * another term: to be asked right before a run changes anything. A run may outlive the lease's
   * life (renewed only when a run starts), or the key may be lost in a failover; another replica
   * then takes the lease and may do the same work, which a relative correction must not be. A lease
   * found free (`taken`, `handed-over`) counts as lost too: another replica may have held it and
   * done the work meanwhile.
   */
  async stillHeld(): Promise<boolean> {
    if (this.lease.holdState) return (await this.lease.holdState()) === 'renewed';
    return this.lease.hold();
  }

  /** Stops the timer, waits for a run in progress and gives the lease up. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
    await this.lease.release().catch((error: unknown) => this.logger.warn({ err: error, job: this.job }, 'could not release the reconciliation lease; it expires on its own'));
  }
}
