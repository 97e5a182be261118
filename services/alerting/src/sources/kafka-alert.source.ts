import type { Consumer, ConsumerConfig, Kafka } from 'kafkajs';
import type { GatewayConfig } from '@openrouter/config';
import type { Logger } from '@openrouter/observability';
import { ConsumerLag, ConsumerSupervisor, createKafka, ensureUsageTopics, headerText, isUsageBatchSchema, kafkaConsumerRun, unpackUsageBatch, type ConsumerStatus, type UsageMessage } from '@openrouter/usage';

/** How long start-up waits out retriable Kafka errors (topic leaders not elected yet) before failing. */
const SETUP_PATIENCE_MS = 60_000;

/** Runs `work` again after retriable KafkaJS errors, with backoff, until it succeeds or `patienceMs` passed. */
export async function retryWhileRetriable(logger: Logger, patienceMs: number, work: () => Promise<void>): Promise<void> {
  const deadline = Date.now() + patienceMs;
  for (let delay = 200; ; delay = Math.min(delay * 2, 3_000)) {
    try {
      await work();
      return;
    } catch (error) {
      const retriable = typeof error === 'object' && error !== null && (error as { retriable?: unknown }).retriable === true;
      if (!retriable || Date.now() + delay > deadline) throw error;
      logger.warn({ err: error, retryInMs: delay }, 'Kafka is not ready for the alerting consumer yet; retrying');
      await new Promise((done) => setTimeout(done, delay));
    }
  }
}

export interface AlertInputHandlers {
  usage(messages: UsageMessage[]): Promise<void>;
  budget(value: Buffer, headers: Record<string, string>): void;
  /**
   * Whether this replica may take batches now (it holds the alerting lease). A batch fetched after
   * it lost the lease is refused before anything of it is taken or committed: the active replica
   * reads it from the group's committed offset.
   */
  mayTake?(): boolean;
}

/** Thrown for a batch a replica that no longer holds the lease fetched: kafkajs then commits nothing of it. */
export class StandingBy extends Error {
  constructor() {
    super('this alerting replica no longer holds the lease: the batch is left to the active one');
  }
}

/** The part of a fetched Kafka batch the source reads (headers as decoded: a value may be null). */
export interface AlertBatch {
  topic: string;
  partition: number;
  messages: ReadonlyArray<{ key: Buffer | null; value: Buffer | null; headers?: Parameters<typeof headerText>[0]; offset: string }>;
}

/** Told of each record skipped because taking it threw: where it is, and the error (never the record). */
export type SkippedRecord = (where: { topic: string; partition: number; offset: string }, error: unknown) => void;

/**
 * Hands one batch to the handlers, each record guarded: a record that cannot be taken (a header
 * that will not read, a payload the handler throws on) is skipped and reported, and the records
 * after it are still taken. Without the guard the error would fail the whole batch, and kafkajs,
 * retrying forever, would fetch the same record again and again: alerting would take no input for
 * good while its readiness stayed green.
 */
export async function takeAlertBatch(batch: AlertBatch, usageTopic: string, handlers: AlertInputHandlers, skipped: SkippedRecord): Promise<void> {
  // Thrown before any record is taken, so the consumer resolves and commits nothing of the batch.
  if (handlers.mayTake && !handlers.mayTake()) throw new StandingBy();
  const where = (offset: string) => ({ topic: batch.topic, partition: batch.partition, offset });
  if (batch.topic !== usageTopic) {
    for (const m of batch.messages) {
      try {
        if (m.value) handlers.budget(m.value, headerText(m.headers));
      } catch (error) {
        skipped(where(m.offset), error);
      }
    }
    return;
  }
  const records: Array<{ offset: string; messages: UsageMessage[] }> = [];
  for (const m of batch.messages) {
    try {
      records.push({ offset: m.offset, messages: usageMessagesOf(batch, m) });
    } catch (error) {
      skipped(where(m.offset), error);
    }
  }
  try {
    await handlers.usage(records.flatMap((r) => r.messages));
  } catch {
    // Record by record, to skip only the one that throws; copies of events already counted are
    // recognised by their ids and not counted again.
    for (const r of records) await handlers.usage(r.messages).catch((error: unknown) => skipped(where(r.offset), error));
  }
}

/** A usage record as the usage messages it carries (a batch record unpacks into its events). */
function usageMessagesOf(batch: AlertBatch, m: AlertBatch['messages'][number]): UsageMessage[] {
  const message = { key: m.key?.toString('utf8') ?? '', value: m.value ?? Buffer.alloc(0), headers: headerText(m.headers), origin: { topic: batch.topic, partition: batch.partition, offset: m.offset } };
  return isUsageBatchSchema(message.headers['schema']) ? unpackUsageBatch(message) : [message];
}

/**
 * Reads the usage topic and the budget topic in the consumer group `alerting`. Alerting works on
 * recent windows, so a new group starts at the end of the topics rather than replaying history;
 * offsets are committed after each batch was taken into the aggregates. A consumer kafkajs gives up
 * on (a non-retriable error, e.g. a batch compressed with a codec it cannot read) is replaced by a
 * fresh one with backoff (`ConsumerSupervisor`); meanwhile `isRunning()` is false.
 */
export class KafkaAlertSource {
  private readonly kafka: Kafka;
  private supervisor: ConsumerSupervisor | undefined;
  /** The group starts at the end of the topic: a partition it has not committed on is behind by nothing. */
  private readonly consumerLag: ConsumerLag;
  private skippedRecords = 0;

  constructor(
    private readonly config: Pick<GatewayConfig, 'usage' | 'budgets' | 'observability'>,
    private readonly logger: Logger,
  ) {
    this.kafka = createKafka(config.usage.kafka, logger, 'alerting');
    this.consumerLag = new ConsumerLag(this.kafka, config.usage.kafka.topic, config.observability.alerting.consumerGroup, 'latest');
  }

  async start(handlers: AlertInputHandlers): Promise<void> {
    // Topics just created (here or by billing) may not be served by their leaders yet: retriable
    // errors are waited out rather than ending the service.
    await retryWhileRetriable(this.logger, SETUP_PATIENCE_MS, async () => {
      await ensureUsageTopics(this.kafka, this.config.usage.kafka);
      await this.ensureTopic(this.config.budgets.topic);
    });
    // Fetches wait for a batch as billing's do (`usage.consumer.minBytes`, `maxWaitMs`): a fetch per
    // event would cost the consumer milliseconds of CPU for every request the gateway serves.
    const fetch = this.config.usage.consumer;
    const options: ConsumerConfig = {
      groupId: this.config.observability.alerting.consumerGroup,
      allowAutoTopicCreation: false,
      minBytes: fetch.minBytes,
      maxWaitTimeInMs: fetch.maxWaitMs,
      retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 300, maxRetryTime: 5_000 },
    };
    this.supervisor = new ConsumerSupervisor({
      group: options.groupId,
      logger: this.logger,
      create: () => kafkaConsumerRun(this.kafka.consumer(options), (consumer) => this.consume(consumer, handlers)),
    });
    await this.supervisor.start();
  }

  private async consume(consumer: Consumer, handlers: AlertInputHandlers): Promise<void> {
    const usageTopic = this.config.usage.kafka.topic;
    const budgetTopic = this.config.budgets.topic;
    await retryWhileRetriable(this.logger, SETUP_PATIENCE_MS, async () => {
      await consumer.connect();
      await consumer.subscribe({ topics: [usageTopic, budgetTopic], fromBeginning: false });
    });
    await consumer.run({
      eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
        await takeAlertBatch(batch, usageTopic, handlers, this.skip);
        const last = batch.messages[batch.messages.length - 1];
        if (last) resolveOffset(last.offset);
        await heartbeat();
      },
    });
  }

  /** Records skipped since the start because taking them threw. */
  get skipped(): number {
    return this.skippedRecords;
  }

  /**
   * Counts and logs a skipped record by where it is (enough to fetch it) and the error's name: not
   * its message, which can quote the payload (JSON.parse does), nor the record's key or headers.
   */
  private readonly skip: SkippedRecord = (where, error) => {
    this.skippedRecords++;
    const failure = { name: error instanceof Error ? error.name : typeof error };
    this.logger.error({ ...where, failure, skipped: this.skippedRecords }, 'alerting input record skipped: it could not be taken');
  };

  /** Usage messages not yet committed by the group. */
  lag(): Promise<number> {
    return this.consumerLag.read();
  }

  /** False from a crash kafkajs gives up on until a fresh consumer fetched again. */
  isRunning(): boolean {
    return this.supervisor?.isRunning() ?? false;
  }

  status(): ConsumerStatus {
    return this.supervisor?.status() ?? { state: 'starting' };
  }

  async close(): Promise<void> {
    await this.supervisor?.close();
    await this.consumerLag.close();
  }

  private async ensureTopic(topic: string): Promise<void> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      if (!(await admin.listTopics()).includes(topic)) {
        const k = this.config.usage.kafka;
        await admin.createTopics({ topics: [{ topic, numPartitions: k.partitions, replicationFactor: k.replicationFactor }], waitForLeaders: true }).catch((error: unknown) => {
          this.logger.warn({ err: error, topic }, 'could not create the budget topic');
        });
      }
    } finally {
      await admin.disconnect();
    }
  }
}
