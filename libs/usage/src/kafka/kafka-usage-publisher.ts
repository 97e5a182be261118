import { Partitioners, type Kafka, type Producer } from 'kafkajs';
import type { KafkaUsageConfig, OutboxConfig } from '@openrouter/config';
import type { usagev1 } from '@openrouter/contracts';
import type { Logger } from '@openrouter/observability';
import type { PublishOptions, PublisherStatus, UsageMessage, UsagePublisher } from '../bus/usage-bus';
import { packUsageMessages } from '../event/usage-batch.codec';
import { UsageMessageEncoder } from '../event/usage-event.codec';
import { FileOutbox } from './file-outbox';
import { createKafka, ensureUsageTopics, withTimeout } from './kafka-client';
import { RepeatedFailureLog } from './repeated-failure-log';
import { slicesOf } from './send-slices';

/** A replay that keeps failing is logged at warn at least this often (and when its error is new). */
const REPLAY_WARN_EVERY_MS = 60_000;
/** While replays fail, the interval between them doubles from `replayIntervalMs` up to this. */
export const REPLAY_MAX_INTERVAL_MS = 30_000;

export interface KafkaUsagePublisherOptions {
  kafka: KafkaUsageConfig;
  outbox: Omit<OutboxConfig, 'dir'> & { dir: string };
  /** Name in the Kafka client id, e.g. `ingress`. */
  clientName?: string;
}

interface Pending {
  message: UsageMessage;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Publishes usage events to Kafka: idempotent producer, `acks: all`, keyed by organisation, in
 * batches, each organisation's events of a batch packed into `UsageEventBatch` messages. When
 * Kafka does not take a batch in time, the batch and every event after it go to the durable
 * outbox on disk until Kafka is back, and the outbox is replayed in order before events go direct
 * again. `close` flushes everything accepted to Kafka or to the outbox.
 *
 * While Kafka is down, one producer's connection attempt is awaited by one replay after another
 * (kafkajs retries it), not a new producer each time; replays back off to `REPLAY_MAX_INTERVAL_MS`;
 * and kafkajs's own lines about the outage are at debug, the replay's rate-limited warning saying
 * what fails. A producer is replaced only after a send failed (a new idempotent producer id).
 */
export class KafkaUsagePublisher implements UsagePublisher {
  private producer: Producer | undefined;
  /** `producer` has connected (kafkajs reconnects it on its own afterwards). */
  private connected = false;
  private mode: 'direct' | 'outbox' = 'direct';
  private readonly pending: Pending[] = [];
  private readonly encoder = new UsageMessageEncoder();
  private flushing: Promise<void> | undefined;
  private readonly replayFailures = new RepeatedFailureLog(REPLAY_WARN_EVERY_MS);
  private lingerTimer: NodeJS.Timeout | undefined;
  private replayTimer: NodeJS.Timeout | undefined;
  private replaying: Promise<void> | undefined;
  /** Until the next replay: `replayIntervalMs`, doubled after each failed one up to `REPLAY_MAX_INTERVAL_MS`. */
  private replayDelayMs: number;
  private topicsReady = false;
  private closed = false;

  private constructor(
    private readonly options: KafkaUsagePublisherOptions,
    private readonly outbox: FileOutbox,
    private readonly logger: Logger,
    private readonly kafka: Kafka,
  ) {
    this.replayDelayMs = options.outbox.replayIntervalMs;
  }

  /** Opens the outbox (replaying what an earlier run left) and connects; Kafka may be down. */
  static async start(options: KafkaUsagePublisherOptions, logger: Logger): Promise<KafkaUsagePublisher> {
    let publisher: KafkaUsagePublisher | undefined;
    // Made before the outbox is opened: it can fail (an unreadable usage.kafka.ssl.ca) with nothing open yet.
    const kafka = createKafka(options.kafka, logger, options.clientName ?? 'usage-producer', { quiet: () => publisher?.mode === 'outbox', cappedIdempotentRetries: true });
    const outbox = await FileOutbox.open(options.outbox.dir, { maxBytes: options.outbox.maxBytes, segmentBytes: options.outbox.segmentBytes, logger });
    try {
      publisher = new KafkaUsagePublisher(options, outbox, logger, kafka);
      if (!outbox.isEmpty()) {
        logger.warn({ events: outbox.size, bytes: outbox.bytes }, 'usage outbox holds events from an earlier run; replaying them');
        publisher.mode = 'outbox';
        publisher.scheduleReplay(0);
      } else {
        const started = publisher;
        await started.connect().catch((error: unknown) => {
          logger.warn({ err: error }, 'Kafka is unreachable at start-up; usage events go to the outbox until it is back');
          started.mode = 'outbox';
          started.scheduleReplay();
        });
      }
      return publisher;
    } catch (error) {
      // Nothing may keep the outbox's directory locked: a retry (or the next start) opens it.
      await publisher?.disconnect();
      await outbox.close().catch((closing: unknown) => logger.error({ err: closing }, 'the usage outbox could not be closed'));
      throw error;
    }
  }

  publish(event: usagev1.UsageEvent, options: PublishOptions = {}): Promise<void> {
    if (this.closed) return Promise.reject(new Error('the usage publisher is closed'));
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ message: this.encoder.encode(event, options.headers), resolve, reject });
      if (this.pending.length >= this.options.kafka.batchMaxEvents) this.flushNow();
      else this.lingerTimer ??= setTimeout(() => this.flushNow(), this.options.kafka.lingerMs);
    });
  }

  status(): PublisherStatus {
    return { mode: this.mode, pending: this.pending.length + this.outbox.size, outboxBytes: this.outbox.bytes };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.flushNow();
    while (this.flushing) await this.flushing;
    if (this.replayTimer) clearTimeout(this.replayTimer);
    await this.replaying;
    // One last, short attempt to hand the outbox to Kafka; what stays is replayed by the next run.
    if (!this.outbox.isEmpty()) await this.replayOnce().catch(() => undefined);
    if (!this.outbox.isEmpty()) this.logger.warn({ events: this.outbox.size }, 'usage outbox kept on disk for the next start');
    await this.disconnect();
    await this.outbox.close();
  }

  private flushNow(): void {
    if (this.lingerTimer) {
      clearTimeout(this.lingerTimer);
      this.lingerTimer = undefined;
    }
    if (this.flushing || this.pending.length === 0) return;
    this.flushing = this.flushLoop().finally(() => {
      this.flushing = undefined;
      if (this.pending.length > 0) this.flushNow();
    });
  }

  /** One batch at a time, so events leave in the order they were published. */
  private async flushLoop(): Promise<void> {
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, this.options.kafka.batchMaxEvents);
      const messages = batch.map((p) => p.message);
      if (this.mode === 'direct') {
        try {
          await this.send(messages);
          for (const p of batch) p.resolve();
          continue;
        } catch (error) {
          this.logger.warn({ err: error, events: messages.length }, 'Kafka did not take usage events; writing them to the outbox');
          this.mode = 'outbox';
          this.scheduleReplay();
        }
      }
      try {
        await this.outbox.append(messages);
        for (const p of batch) p.resolve();
      } catch (error) {
        this.logger.error({ err: error, events: messages.length }, 'usage events could not be written to the outbox');
        for (const p of batch) p.reject(error);
      }
    }
  }

  private scheduleReplay(delayMs = this.replayDelayMs): void {
    if (this.replayTimer || this.closed) return;
    this.replayTimer = setTimeout(() => {
      this.replayTimer = undefined;
      this.replaying = this.replayOnce()
        .then(() => {
          this.replayFailures.succeeded();
          this.replayDelayMs = this.options.outbox.replayIntervalMs;
        })
        .catch((error: unknown) => {
          this.replayDelayMs = nextReplayDelay(this.replayDelayMs, this.options.outbox.replayIntervalMs);
          // At warn when it starts, when its error is new and every minute while it lasts, so a
          // replay that never succeeds (Kafka down, a disk failing) is seen; the other retries at debug.
          const { level, failures, failingForMs } = this.replayFailures.failed(error);
          this.logger[level](
            { err: error, pending: this.outbox.size, failures, failingForMs, retryInMs: this.replayDelayMs },
            'usage outbox replay failed; trying again later',
          );
        })
        .finally(() => {
          this.replaying = undefined;
          if (this.mode === 'outbox') this.scheduleReplay();
        });
    }, delayMs);
    this.replayTimer.unref();
  }

  /**
   * Sends the outbox to Kafka oldest first; when it is empty, events go direct again. It connects
   * first, so an empty outbox is no sign that Kafka is back.
   */
  private async replayOnce(): Promise<void> {
    await this.connect();
    for (;;) {
      const peek = await this.outbox.peek(this.options.kafka.batchMaxEvents);
      if (peek.records.length === 0) break;
      await this.send(peek.records);
      await this.outbox.ack(peek, peek.records.length);
    }
    // Appends still in progress keep the outbox non-empty, so nothing can overtake them.
    if (this.outbox.isEmpty() && this.mode === 'outbox') {
      this.mode = 'direct';
      this.logger.info('Kafka is back; usage outbox replayed');
    }
  }

  /**
   * Sends events in as few requests as the broker takes: an organisation's events together, as few
   * messages as `eventsPerMessage` allows (the outbox keeps events one by one, so what it replays
   * is packed the same way), in sends of at most `maxSendBytes`. When a later send fails, the
   * earlier ones may have arrived: the whole batch goes to the outbox, and consumers drop repeats.
   */
  private async send(messages: UsageMessage[]): Promise<void> {
    const producer = await this.connect();
    const { topic, eventsPerMessage, maxSendBytes, sendTimeoutMs } = this.options.kafka;
    try {
      for (const slice of slicesOf(packUsageMessages(messages, eventsPerMessage), maxSendBytes)) {
        await withTimeout(producer.send({ topic, acks: -1, messages: slice }), sendTimeoutMs, 'Kafka send');
      }
    } catch (error) {
      // A send that failed or timed out may leave the idempotent producer's sequence numbers
      // out of step with the broker's: the next connection starts with a new producer.
      await this.disconnect();
      throw error;
    }
  }

  /**
   * The producer, connected. A connection attempt that timed out is not abandoned: kafkajs goes
   * on retrying it, and the next call waits on the same attempt instead of starting another.
   */
  private async connect(): Promise<Producer> {
    const producer = (this.producer ??= this.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
      // Capped on purpose, though kafkajs warns that a capped idempotent producer may lose its
      // exactly-once guarantee (it leaves retries unbounded for one). A send here is bounded by
      // `sendTimeoutMs`, after which the producer is disconnected and replaced; but kafkajs's
      // retrier does not stop with its producer: its next try connects the cluster again. With
      // unbounded retries, every send abandoned during an outage would go on trying for as long as
      // Kafka is down, then send its batch and keep connections nobody closes. What the cap
      // gives up is covered another way: a batch that failed goes to the outbox and a new producer
      // sends it again, so delivery is at least once, and consumers drop repeats by event id. The
      // warning, which says nothing more, is logged at debug (`cappedIdempotentRetries`).
      retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 1_000 },
    }));
    if (!this.connected) {
      await withTimeout(producer.connect(), this.options.kafka.sendTimeoutMs, 'Kafka connect');
      // Unless the producer was replaced meanwhile (a send failed).
      if (this.producer === producer) this.connected = true;
    }
    if (!this.topicsReady) {
      await withTimeout(ensureUsageTopics(this.kafka, this.options.kafka), this.options.kafka.sendTimeoutMs * 2, 'Kafka topic check');
      this.topicsReady = true;
    }
    return producer;
  }

  private async disconnect(): Promise<void> {
    const producer = this.producer;
    this.producer = undefined;
    this.connected = false;
    await producer?.disconnect().catch(() => undefined);
  }
}

/** The wait before the next replay after one failed: doubled, up to `REPLAY_MAX_INTERVAL_MS` (or the configured interval, when longer). */
export function nextReplayDelay(currentMs: number, intervalMs: number): number {
  return Math.min(Math.max(intervalMs, REPLAY_MAX_INTERVAL_MS), Math.max(currentMs, 1) * 2);
}
