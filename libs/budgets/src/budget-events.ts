import { Partitioners, type Kafka, type Producer } from 'kafkajs';
import { budgetv1 } from '@openrouter/contracts';
import type { KafkaUsageConfig } from '@openrouter/config';
import type { Logger } from '@openrouter/observability';
import { createKafka, withTimeout } from '@openrouter/usage';

/** The schema version of spend crossings: every consumer reads it. */
export const BUDGET_SCHEMA_VERSION = 1;
/** The schema version of forecast crossings (`kind` FORECAST), which a consumer of version 1 alone skips. */
export const BUDGET_FORECAST_SCHEMA_VERSION = 2;
export const BUDGET_SCHEMA_NAME = 'openrouter.budget.v1.BudgetEvent';

/** Where threshold crossings go: Kafka (`openrouter.budget.v1`) or, in embedded mode, this process. */
export interface BudgetEventPublisher {
  /** Resolves once the bus has the event; rejects when it could not take it. */
  publish(event: budgetv1.BudgetEvent): Promise<void>;
  close(): Promise<void>;
}

export type BudgetEventHandler = (event: budgetv1.BudgetEvent) => void;

/** The embedded mode's budget topic: events go to the subscribers in this process. */
export class InProcessBudgetBus implements BudgetEventPublisher {
  private readonly handlers = new Set<BudgetEventHandler>();

  constructor(private readonly logger: Logger) {}

  subscribe(handler: BudgetEventHandler): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  async publish(event: budgetv1.BudgetEvent): Promise<void> {
    // Encoded and decoded as on Kafka, so subscribers get exactly what a consumer would.
    const copy = budgetv1.BudgetEvent.decode(budgetv1.BudgetEvent.encode(event).finish());
    for (const handler of this.handlers) {
      try {
        handler(copy);
      } catch (error) {
        this.logger.warn({ err: error, eventId: event.eventId }, 'budget event subscriber failed');
      }
    }
  }

  async close(): Promise<void> {
    this.handlers.clear();
  }
}

/** Budget events on Kafka: protobuf payload keyed by organisation, `acks: all`, idempotent producer. */
export class KafkaBudgetPublisher implements BudgetEventPublisher {
  private readonly kafka: Kafka;
  private producer: Promise<Producer> | undefined;

  constructor(
    private readonly config: KafkaUsageConfig,
    private readonly topic: string,
    private readonly logger: Logger,
  ) {
    this.kafka = createKafka(config, logger, 'budget-producer');
  }

  async publish(event: budgetv1.BudgetEvent): Promise<void> {
    const producer = await this.connect();
    try {
      await withTimeout(
        producer.send({
          topic: this.topic,
          acks: -1,
          messages: [
            {
              key: event.scope?.orgId ?? '',
              value: Buffer.from(budgetv1.BudgetEvent.encode(event).finish()),
              headers: { 'content-type': 'application/x-protobuf', schema: BUDGET_SCHEMA_NAME },
            },
          ],
        }),
        this.config.sendTimeoutMs,
        'Kafka send',
      );
    } catch (error) {
      this.producer = undefined;
      await producer.disconnect().catch(() => undefined);
      throw error;
    }
  }

  async close(): Promise<void> {
    const producer = this.producer;
    this.producer = undefined;
    await (await producer?.catch(() => undefined))?.disconnect().catch(() => undefined);
  }

  private connect(): Promise<Producer> {
    this.producer ??= (async () => {
      const producer = this.kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner });
      await withTimeout(producer.connect(), this.config.sendTimeoutMs, 'Kafka connect');
      const admin = this.kafka.admin();
      await admin.connect();
      try {
        if (!(await admin.listTopics()).includes(this.topic)) {
          await admin.createTopics({ topics: [{ topic: this.topic, numPartitions: this.config.partitions, replicationFactor: this.config.replicationFactor }], waitForLeaders: true });
        }
      } finally {
        await admin.disconnect();
      }
      return producer;
    })().catch((error: unknown) => {
      this.producer = undefined;
      this.logger.warn({ err: error }, 'Kafka is unreachable for budget events');
      throw error;
    });
    return this.producer;
  }
}
