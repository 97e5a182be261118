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

  /** Stops the timer, waits for a run in progress and gives the lease up. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
    await this.lease.release().catch((error: unknown) => this.logger.warn({ err: error, job: this.job }, 'could not release the reconciliation lease; it expires on its own'));
  }
}
