import type { usagev1 } from '@openrouter/contracts';
import type { Logger } from '@openrouter/observability';
import { inProcessUsageMessage } from '../event/usage-event.codec';
import type { FileOutbox } from '../kafka/file-outbox';
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
  /**
   * Where events wait while the consumer cannot store them (its ClickHouse is down) and what is
   * still queued when `close` gives up: on disk, fsynced, and handed to the consumer again, oldest
   * first, before anything newer, once it stores again (or by the next start, which finds them
   * there). The bus closes it. Without one, events wait in memory: a crash, or a shutdown that
   * outlasts `drainTimeoutMs`, loses them.
   */
  outbox?: FileOutbox;
}

/**
 * The event bus of the embedded mode: ingress and billing in one process. Messages are those of
 * Kafka and go through the same handler, but carry the event itself, so nothing is encoded and
 * decoded on the way (`inProcessUsageMessage`); a failed batch is delivered
 * again (after a backoff) until the handler takes it. With an outbox, a batch the handler refused
 * and everything after it wait on disk until it takes them again, so an outage of the store that
 * outlives the process loses nothing either.
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
  private readonly outbox: FileOutbox | undefined;
  /** Events go to the outbox: it holds some that must reach the consumer first. */
  private spilling = false;
  /** Published while spilling, for the next append. */
  private readonly toSpill: Array<{ message: UsageMessage; done: () => void }> = [];
  private spillWriting: Promise<void> | undefined;

  constructor(
    private readonly logger: Logger,
    options: InProcessUsageBusOptions = {},
  ) {
    this.batchMaxEvents = options.batchMaxEvents ?? 10_000;
    this.maxWaitMs = options.maxWaitMs ?? 0;
    this.retryInitialMs = options.retryInitialMs ?? 200;
    this.retryMaxMs = options.retryMaxMs ?? 10_000;
    this.drainTimeoutMs = options.drainTimeoutMs ?? 10_000;
    this.outbox = options.outbox;
    this.spilling = this.outbox !== undefined && !this.outbox.isEmpty();
  }

  async publish(event: usagev1.UsageEvent, options: PublishOptions = {}): Promise<void> {
    await this.publishMessage(inProcessUsageMessage(event, options.headers));
  }

  /**
   * Puts a message on the bus: in memory, or behind what waits in the outbox (resolved once it is
   * fsynced there). Tests use it for messages no producer would make.
   */
  async publishMessage(message: UsageMessage): Promise<void> {
    if (this.outbox && this.spilling) await this.spillOne(message);
    else this.queue.push(message);
    this.kick();
  }

  /**
   * Appends a message to the outbox with those published while the previous append was written:
   * one write and one fsync for all of them, so an outage at full traffic is not one fsync per event.
   */
  private spillOne(message: UsageMessage): Promise<void> {
    return new Promise((resolve) => {
      this.toSpill.push({ message, done: resolve });
      this.spillWriting ??= this.writeSpilled();
    });
  }

  private async writeSpilled(): Promise<void> {
    const outbox = this.outbox;
    try {
      while (outbox && this.toSpill.length > 0) {
        const group = this.toSpill.splice(0);
        const messages: UsageMessage[] = [];
        for (const { message } of group) {
          const error = encodeFailure(message);
          if (error === undefined) {
            messages.push(message);
            continue;
          }
          // An event protobuf cannot encode (a count past its field's range) cannot be written
          // anywhere: it stays in memory, where the consumer reads the event it carries (and
          // dead-letters it), and the rest of its group is written all the same.
          this.logger.error({ err: error, key: message.key }, 'a usage event could not be encoded for the outbox; kept in memory');
          this.queue.push(message);
        }
        try {
          await outbox.append(messages);
        } catch (error) {
          // The outbox is full or unwritable: memory is all that is left.
          this.logger.error({ err: error, events: messages.length }, 'usage events could not be written to the outbox; kept in memory');
          this.queue.push(...messages);
        }
        for (const g of group) g.done();
      }
    } finally {
      // In the same turn as the last check: a message pushed after it starts a new writer.
      this.spillWriting = undefined;
    }
  }

  /** Nothing waits on disk, nor is being written there. */
  private outboxDrained(outbox: FileOutbox): boolean {
    return outbox.isEmpty() && this.spillWriting === undefined;
  }

  status(): PublisherStatus {
    return { mode: this.spilling ? 'outbox' : 'direct', pending: this.queue.length + (this.outbox?.size ?? 0), outboxBytes: this.outbox?.bytes ?? 0 };
  }

  async start(handler: UsageBatchHandler): Promise<void> {
    if (this.handler) throw new Error('the in-process usage bus has a consumer already');
    this.handler = handler;
    this.kick();
  }

  async lag(): Promise<number> {
    return this.queue.length + (this.outbox?.size ?? 0);
  }

  /** Waits (bounded) for the consumer to take every queued message, then stops delivering. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.flushing = true;
    this.wake?.();
    if (this.handler && this.queue.length > 0) {
      const deadline = Date.now() + this.drainTimeoutMs;
      while (this.queue.length > 0 && Date.now() < deadline) await new Promise((done) => setTimeout(done, 20));
    }
    this.closed = true;
    this.wake?.();
    await this.draining;
    await this.spillWriting;
    await this.keepForNextStart();
  }

  /** What the consumer did not take goes to the outbox (when there is one) for the next start. */
  private async keepForNextStart(): Promise<void> {
    const outbox = this.outbox;
    if (outbox) {
      // Through the writer publishes use: what it cannot write comes back to the queue.
      await this.spill();
      if (!outbox.isEmpty()) this.logger.warn({ events: outbox.size }, 'usage events kept in the outbox for the next start');
      await outbox.close().catch((error: unknown) => this.logger.error({ err: error }, 'the usage outbox could not be closed'));
    }
    if (this.queue.length > 0) this.logger.error({ pending: this.queue.length }, 'usage events left undelivered at shutdown');
  }

  private kick(): void {
    if (!this.handler || this.closed) return;
    if (this.draining) {
      this.wake?.();
      return;
    }
    this.draining = this.drain().finally(() => {
      this.draining = undefined;
      if ((this.queue.length > 0 || this.spilling) && !this.closed) this.kick();
    });
  }

  private async drain(): Promise<void> {
    const handler = this.handler;
    if (!handler) return;
    let delay = this.retryInitialMs;
    let stored = true;
    const backOff = async (): Promise<void> => {
      await this.sleep(delay, () => this.closed);
      delay = Math.min(delay * 2, this.retryMaxMs);
    };
    while (!this.closed) {
      if (this.outbox && this.spilling) {
        // What waits on disk goes first, oldest first; the bus leaves the outbox once it is empty.
        if (await this.handOverOutbox(this.outbox, handler)) delay = this.retryInitialMs;
        else await backOff();
        continue;
      }
      if (this.queue.length === 0) return;
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
        const spilled = await this.spill();
        this.logger.warn(
          { err: error, events: spilled ? this.outbox?.size : batch.length, retryInMs: delay },
          spilled ? 'usage batch not stored; events wait in the outbox until it is' : 'usage batch not stored; retrying',
        );
        await backOff();
      }
    }
  }

  /**
   * Moves what is queued to the outbox, and later publishes with it, through the one writer (what
   * it cannot write comes back to the queue, and the bus leaves the outbox once that is empty);
   * false without an outbox.
   */
  private async spill(): Promise<boolean> {
    if (!this.outbox) return false;
    this.spilling = true;
    await Promise.all(this.queue.splice(0).map((message) => this.spillOne(message)));
    return true;
  }

  /** Hands the outbox's oldest events to the consumer; false when it did not take them. */
  private async handOverOutbox(outbox: FileOutbox, handler: UsageBatchHandler): Promise<boolean> {
    try {
      const peek = await outbox.peek(this.batchMaxEvents);
      if (peek.records.length === 0) {
        // Empty, or an append still being written: it is handed over on the next turn.
        if (this.outboxDrained(outbox)) this.spilling = false;
        else await new Promise((done) => setTimeout(done, 5));
        return true;
      }
      await handler(peek.records);
      await outbox.ack(peek, peek.records.length);
      if (this.outboxDrained(outbox)) {
        this.spilling = false;
        this.logger.info('usage events waiting in the outbox are stored');
      }
      return true;
    } catch (error) {
      this.logger.warn({ err: error, events: outbox.size }, 'usage events in the outbox not stored yet; retrying');
      return false;
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

/** Why a message's value cannot be made (it is encoded then, once, for the outbox to write), or undefined. */
function encodeFailure(message: UsageMessage): unknown {
  try {
    void message.value;
    return undefined;
  } catch (error) {
    return error;
  }
}
