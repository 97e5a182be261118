import type { UsageBatchHandler, UsageSource } from '@openrouter/usage';

/**
 * A usage source whose start is held until `release()`, as a Kafka consumer's is while it joins its
 * group (or fails to reach the brokers): a service's start waits there, its HTTP server listening.
 */
export class HeldSource implements UsageSource {
  private releaseStart: () => void = () => undefined;
  private markStarting: () => void = () => undefined;
  /** Resolves once the service has asked the source to start. */
  readonly starting = new Promise<void>((resolve) => (this.markStarting = resolve));

  start(_handler: UsageBatchHandler): Promise<void> {
    this.markStarting();
    return new Promise((resolve) => (this.releaseStart = resolve));
  }
  release(): void {
    this.releaseStart();
  }
  async lag(): Promise<number> {
    return 0;
  }
  async close(): Promise<void> {}
}
