import type { usagev1 } from '@openrouter/contracts';
import type { Logger } from '@openrouter/observability';
import { inProcessUsageMessage } from '../event/usage-event.codec';
import type { PublishOptions, PublisherStatus, UsageBatchHandler, UsageMessage, UsagePublisher, UsageSource } from './usage-bus';

export interface InProcessUsageBusOptions {
  batchMaxEvents?: number;
  /**
   * How long a batch may gather before it is handed over (unless it is full first): every
   * ClickHouse insert writes parts for the events table and its materialized views, so one insert
   * per request would cost more than the request. 0 hands over on the next turn of the event loop.
   */
  maxWaitMs?: number;
  retryInitialMs?: number;
  retryMaxMs?: number;
  /** How long `close` waits for the consumer to take what is queued. */
  drainTimeoutMs?: number;
}

/**
 * The event bus of the embedded mode: ingress and billing in one process. Messages are those of
 * Kafka and go through the same handler, but carry the event itself, so nothing is encoded and
 * decoded on the way (`inProcessUsageMessage`); a failed batch is delivered
 * again (after a backoff) until the handler takes it, so nothing is dropped while the process runs.
 */
export class InProcessUsageBus implements UsagePublisher, UsageSource {
  private readonly queue: UsageMessage[] = [];
  private handler: UsageBatchHandler | undefined;
  private draining: Promise<void> | undefined;
  private closed = false;
  private wake: (() => void) | undefined;
  private readonly batchMaxEvents: number;
  private readonly maxWaitMs: number;
  /** Set by `close`: what is queued goes now, without waiting for a batch to fill. */
  private flushing = false;
  private readonly retryInitialMs: number;
  private readonly retryMaxMs: number;
  private readonly drainTimeoutMs: number;

  constructor(
    private readonly logger: Logger,
    options: InProcessUsageBusOptions = {},
  ) {
    this.batchMaxEvents = options.batchMaxEvents ?? 10_000;
    this.maxWaitMs = options.maxWaitMs ?? 0;
    this.retryInitialMs = options.retryInitialMs ?? 200;
    this.retryMaxMs = options.retryMaxMs ?? 10_000;
    this.drainTimeoutMs = options.drainTimeoutMs ?? 10_000;
  }

  async publish(event: usagev1.UsageEvent, options: PublishOptions = {}): Promise<void> {
    this.publishMessage(inProcessUsageMessage(event, options.headers));
  }

  /** Puts an already encoded message on the bus (tests use it for messages no producer would make). */
  publishMessage(message: UsageMessage): void {
    this.queue.push(message);
    this.kick();
  }

  status(): PublisherStatus {
    return { mode: 'direct', pending: this.queue.length, outboxBytes: 0 };
  }

  async start(handler: UsageBatchHandler): Promise<void> {
    if (this.handler) throw new Error('the in-process usage bus has a consumer already');
    this.handler = handler;
    this.kick();
  }

  async lag(): Promise<number> {
    return this.queue.length;
  }

  /** Waits (bounded) for the consumer to take every queued message, then stops delivering. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.flushing = true;
    this.wake?.();
    if (this.handler && this.queue.length > 0) {
      const deadline = Date.now() + this.drainTimeoutMs;
      while (this.queue.length > 0 && Date.now() < deadline) await new Promise((done) => setTimeout(done, 20));
      if (this.queue.length > 0) this.logger.error({ pending: this.queue.length }, 'usage events left undelivered at shutdown');
    }
    this.closed = true;
    this.wake?.();
    await this.draining;
  }

  private kick(): void {
    if (!this.handler || this.closed) return;
    if (this.draining) {
      this.wake?.();
      return;
    }
    this.draining = this.drain().finally(() => {
      this.draining = undefined;
      if (this.queue.length > 0 && !this.closed) this.kick();
    });
  }

  private async drain(): Promise<void> {
    const handler = this.handler;
    if (!handler) return;
    let delay = this.retryInitialMs;
    let stored = true;
    while (this.queue.length > 0 && !this.closed) {
      // Every batch gathers, not only the first: what arrives while a batch is stored waits for
      // the next one to fill or for the linger, as a Kafka fetch does, instead of going at once
      // in a small insert of its own (under steady traffic, an insert after every insert).
      if (stored) await this.gather();
      const batch = this.queue.slice(0, this.batchMaxEvents);
      try {
        await handler(batch);
        this.queue.splice(0, batch.length);
        delay = this.retryInitialMs;
        stored = true;
      } catch (error) {
        stored = false;
        this.logger.warn({ err: error, events: batch.length, retryInMs: delay }, 'usage batch not stored; retrying');
        await this.sleep(delay, () => this.closed);
        delay = Math.min(delay * 2, this.retryMaxMs);
      }
    }
  }

  /** Lets publishes gather into one batch: until it is full, `maxWaitMs` has passed, or `close` flushes. */
  private async gather(): Promise<void> {
    if (this.maxWaitMs === 0) {
      await new Promise((done) => setImmediate(done));
      return;
    }
    await this.sleep(this.maxWaitMs, () => this.queue.length >= this.batchMaxEvents || this.flushing || this.closed);
  }

  /** Waits `ms`, or less when `kick` finds `cutShort` true. */
  private async sleep(ms: number, cutShort: () => boolean): Promise<void> {
    if (cutShort()) return;
    await new Promise<void>((done) => {
      const timer = setTimeout(done, ms);
      this.wake = () => {
        if (cutShort()) {
          clearTimeout(timer);
          done();
        }
      };
    });
    this.wake = undefined;
  }
}
