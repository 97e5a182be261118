import type { Logger } from '@openrouter/observability';

/**
 * Sends a change's announcement to the other replicas again, in the background, after sending it
 * failed: after each of `delaysMs` in turn while it keeps failing, one chain at a time. When every
 * try fails the replicas still find the change at their periodic version check.
 */
export class Reannouncer {
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  /** `what`: the kind of change, as the log names it ("tenant", "budget"). */
  constructor(
    private readonly publish: () => Promise<void>,
    private readonly what: string,
    private readonly delaysMs: readonly number[],
    private readonly logger: Logger,
  ) {}

  /** Starts announcing again, unless a chain is under way (it sends the latest state anyway). */
  start(): void {
    this.attempt(0);
  }

  /** Stops (the process is closing: the other replicas' version checks catch up). */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private attempt(attempt: number): void {
    if (this.timer || this.closed) return;
    const delay = this.delaysMs[attempt];
    if (delay === undefined) {
      this.logger.warn(`a ${this.what} change could not be announced: the other replicas pick it up at their next version check`);
      return;
    }
    this.timer = setTimeout(() => {
      this.publish().then(
        () => {
          this.timer = undefined;
          this.logger.info({ attempt: attempt + 1 }, `${this.what} change announced`);
        },
        () => {
          this.timer = undefined;
          this.attempt(attempt + 1);
        },
      );
    }, delay);
    this.timer.unref();
  }
}
