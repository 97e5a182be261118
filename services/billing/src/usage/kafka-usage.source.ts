import type { Consumer, ConsumerConfig, Kafka, KafkaMessage } from 'kafkajs';
import type { UsageConfig } from '@openrouter/config';
import type { Logger } from '@openrouter/observability';
import {
  ConsumerLag,
  ConsumerSupervisor,
  createKafka,
  ensureUsageTopics,
  firstHeader,
  headerText,
  isUsageBatchSchema,
  kafkaConsumerRun,
  unpackUsageBatch,
  type ConsumerStatus,
  type UsageBatchHandler,
  type UsageMessage,
  type UsageSource,
} from '@openrouter/usage';

/**
 * Reads `openrouter.usage.v1` in the consumer group `billing` with `eachBatch`, a `UsageEventBatch`
 * record as the events it holds. A batch's offsets are committed only after the handler stored
 * it; while the handler fails (ClickHouse down) the same messages are retried with backoff,
 * heartbeating, so the consumer waits instead of losing or skipping anything. A rebalance
 * mid-retry leaves the batch uncommitted for the next owner. Partitions are consumed
 * concurrently, each handing its chunks to the handler (which may join them into one insert:
 * `UsageBatchCoalescer`); each partition commits only its own offsets.
 *
 * A consumer kafkajs gives up on (a non-retriable error, e.g. a batch compressed with a codec it
 * cannot read) is replaced by a fresh one with backoff (`ConsumerSupervisor`); meanwhile
 * `isRunning()` is false and `status()` says why.
 */
export class KafkaUsageSource implements UsageSource {
  private readonly kafka: Kafka;
  private supervisor: ConsumerSupervisor | undefined;
  /** The group reads the topic from its start (`fromBeginning`): a partition it has not committed on is behind by all of it. */
  private readonly consumerLag: ConsumerLag;

  constructor(
    private readonly config: UsageConfig,
    private readonly logger: Logger,
  ) {
    this.kafka = createKafka(config.kafka, logger, 'billing');
    this.consumerLag = new ConsumerLag(this.kafka, config.kafka.topic, config.kafka.consumerGroup, 'earliest');
  }

  async start(handler: UsageBatchHandler): Promise<void> {
    const { kafka: k, consumer: c } = this.config;
    await ensureUsageTopics(this.kafka, k);
    const options: ConsumerConfig = {
      groupId: k.consumerGroup,
      allowAutoTopicCreation: false,
      maxWaitTimeInMs: c.maxWaitMs,
      minBytes: c.minBytes,
      maxBytesPerPartition: c.maxBytesPerPartition,
      maxBytes: c.maxBytesPerPartition * 4,
      retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 300, maxRetryTime: 5_000 },
    };
    this.supervisor = new ConsumerSupervisor({
      group: k.consumerGroup,
      logger: this.logger,
      create: () => kafkaConsumerRun(this.kafka.consumer(options), (consumer) => this.consume(consumer, handler)),
    });
    await this.supervisor.start();
  }

  private async consume(consumer: Consumer, handler: UsageBatchHandler): Promise<void> {
    const { kafka: k, consumer: c } = this.config;
    await consumer.connect();
    await consumer.subscribe({ topic: k.topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: c.partitionsConsumedConcurrently,
      eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
        // Chunks of at most `batchMaxEvents` events, cut between records (a batch record's events
        // share its offset); each is stored, then its offsets committed.
        let chunk: UsageMessage[] = [];
        let lastOffset: string | undefined;
        const storeChunk = async (): Promise<boolean> => {
          let delay = c.retryInitialMs;
          for (;;) {
            if (!isRunning() || isStale()) return false;
            try {
              await handler(chunk);
              break;
            } catch (error) {
              this.logger.warn({ err: error, partition: batch.partition, offset: chunk[0]?.origin?.offset, events: chunk.length, retryInMs: delay }, 'usage batch not stored; retrying, offsets not committed');
              await new Promise((done) => setTimeout(done, delay));
              await heartbeat().catch(rethrowRebalance);
              delay = Math.min(delay * 2, c.retryMaxMs);
            }
          }
          if (lastOffset !== undefined) {
            resolveOffset(lastOffset);
            await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: (BigInt(lastOffset) + 1n).toString() }]);
          }
          await heartbeat();
          chunk = [];
          return true;
        };
        for (const record of batch.messages) {
          const message = new KafkaRecordMessage(record, batch.topic, batch.partition);
          const events = isUsageBatchSchema(firstHeader(record.headers?.['schema'])) ? unpackUsageBatch(message) : [message];
          // The chunk so far, up to the previous record, when this record's events would not fit.
          if (chunk.length > 0 && chunk.length + events.length > c.batchMaxEvents && !(await storeChunk())) return;
          for (const event of events) chunk.push(event);
          lastOffset = record.offset;
        }
        if (chunk.length > 0) await storeChunk();
      },
    });
  }

  /** Messages in the topic not yet committed by the group (the consumer lag). */
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
}

const EMPTY = Buffer.alloc(0);

/**
 * A consumed record as a usage message. Only the payload is read for every message; key and
 * headers are turned into text when asked, i.e. for dead letters.
 */
class KafkaRecordMessage implements UsageMessage {
  readonly origin: { topic: string; partition: number; offset: string };

  constructor(
    private readonly record: KafkaMessage,
    topic: string,
    partition: number,
  ) {
    this.origin = { topic, partition, offset: record.offset };
  }

  get key(): string {
    return this.record.key?.toString('utf8') ?? '';
  }

  get value(): Buffer {
    return this.record.value ?? EMPTY;
  }

  get headers(): Record<string, string> {
    return headerText(this.record.headers);
  }
}

/**
 * The group is rebalancing, or this member left it (its session lapsed): the heartbeat's answer
 * that it must rejoin. Thrown out of the batch handler, kafkajs rejoins and the chunk, uncommitted,
 * goes to whichever member owns its partition then. Swallowed, the member kept retrying a
 * failing store on partitions it might no longer own, held every rebalance up for its whole
 * timeout, and stored what the new owner had already stored once the store came back.
 */
const REJOIN_ERRORS: ReadonlySet<string> = new Set(['REBALANCE_IN_PROGRESS', 'UNKNOWN_MEMBER_ID', 'ILLEGAL_GENERATION', 'FENCED_INSTANCE_ID']);

/** Rethrows a heartbeat's demand to rejoin; other heartbeat failures (the broker away a moment) wait for the next try. */
function rethrowRebalance(error: unknown): void {
  if (error instanceof Error && REJOIN_ERRORS.has((error as Error & { type?: unknown }).type as string)) throw error;
}

