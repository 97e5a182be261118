import { Partitioners, type Producer } from 'kafkajs';
import type { KafkaUsageConfig } from '@openrouter/config';
import type { Logger } from '@openrouter/observability';
import { createKafka, slicesOf, withTimeout, type DeadLetterSink, type UsageMessage } from '@openrouter/usage';

/** Headers a dead letter carries besides the original ones. */
export const DLQ_HEADERS = {
  reason: 'x-dlq-reason',
  topic: 'x-dlq-source-topic',
  partition: 'x-dlq-source-partition',
  offset: 'x-dlq-source-offset',
  at: 'x-dlq-at',
} as const;

/** Poison usage messages to `openrouter.usage.v1.dlq`, unchanged, with the reason in headers. */
export class KafkaDeadLetterSink implements DeadLetterSink {
  private producer: Producer | undefined;

  constructor(
    private readonly config: KafkaUsageConfig,
    private readonly logger: Logger,
  ) {}

  async send(items: Array<{ message: UsageMessage; reason: string }>): Promise<void> {
    const producer = await this.connect();
    const at = new Date().toISOString();
    const letters = items.map(({ message, reason }) => ({
      key: message.key,
      value: message.value,
      headers: {
        ...message.headers,
        [DLQ_HEADERS.reason]: reason.slice(0, 1000),
        [DLQ_HEADERS.at]: at,
        ...(message.origin ? { [DLQ_HEADERS.topic]: message.origin.topic, [DLQ_HEADERS.partition]: String(message.origin.partition), [DLQ_HEADERS.offset]: message.origin.offset } : {}),
      },
    }));
    try {
      // In sends the broker takes (the dead-letter topic has one partition: one batch per send),
      // each timed on its own, as the publisher times its sends: a batch of many bad messages
      // takes many sends, and one timeout for all of them would fail it on every retry on a
      // cluster slow enough, storing nothing of the batch and sending its letters again each time.
      for (const slice of slicesOf(letters, this.config.maxSendBytes)) {
        await withTimeout(producer.send({ topic: this.config.dlqTopic, acks: -1, messages: slice }), this.config.sendTimeoutMs, 'dead-letter send');
      }
    } catch (error) {
      // A send that failed or timed out may leave the idempotent producer's sequence numbers out
      // of step with the broker's: the next send starts with a new producer.
      const failed = this.producer;
      this.producer = undefined;
      await failed?.disconnect().catch(() => undefined);
      throw error;
    }
  }

  async close(): Promise<void> {
    await this.producer?.disconnect().catch(() => undefined);
    this.producer = undefined;
  }

  private async connect(): Promise<Producer> {
    if (this.producer) return this.producer;
    const producer = createKafka(this.config, this.logger, 'billing-dlq').producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    await withTimeout(producer.connect(), this.config.sendTimeoutMs, 'dead-letter connect');
    this.producer = producer;
    return producer;
  }
}

/** Embedded mode: dead letters are logged (reason and origin, never the payload) and kept in memory. */
export class MemoryDeadLetterSink implements DeadLetterSink {
  readonly letters: Array<{ message: UsageMessage; reason: string }> = [];

  constructor(
    private readonly logger: Logger,
    private readonly keep = 1_000,
  ) {}

  async send(items: Array<{ message: UsageMessage; reason: string }>): Promise<void> {
    for (const item of items) {
      this.logger.error({ reason: item.reason, key: item.message.key }, 'poison usage message dropped to the in-memory dead letters');
      this.letters.push(item);
    }
    if (this.letters.length > this.keep) this.letters.splice(0, this.letters.length - this.keep);
  }

  async close(): Promise<void> {}
}
