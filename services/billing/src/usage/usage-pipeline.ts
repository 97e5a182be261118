import type { GatewayConfig } from '@openrouter/config';
import type { Logger, ReadinessCheck, Tracing, UsageConsumerMetrics } from '@openrouter/observability';
import type { ClickHouseTarget, DeadLetterSink, UsageBatchHandler, UsageSource } from '@openrouter/usage';
import { KafkaDeadLetterSink, MemoryDeadLetterSink } from './dead-letter.sink';
import { KafkaUsageSource } from './kafka-usage.source';
import { ClickHouseUsageEventRepository } from './usage-event.repository';
import { TimedUsageEventRepository } from './timed-usage-event.repository';
import { UsageBatchCoalescer } from './usage-batch-coalescer';
import { UsageIngestService, type IngestStats } from './usage-ingest.service';

/** What a running usage pipeline shows: lag for readiness and metrics, counters for tests. */
export interface UsagePipelineHandle {
  lag(): Promise<number>;
  stats(): IngestStats;
  readonly store: ClickHouseTarget;
  readiness: ReadinessCheck[];
  close(): Promise<void>;
}

/**
 * Billing's usage pipeline: consumes usage events (Kafka, or the in-process bus the embedded
 * gateway hands in) into the store. Started only once the store answers and is migrated
 * (`openUsageStore`): nothing is consumed, so nothing committed, before it can be stored. The
 * store is the caller's, open before and closed after the pipeline.
 */
export async function startUsagePipeline(config: GatewayConfig, logger: Logger, store: ClickHouseTarget, given?: UsageSource, metrics?: UsageConsumerMetrics, tracing?: Tracing): Promise<UsagePipelineHandle> {
  let source: UsageSource | undefined;
  let deadLetters: DeadLetterSink | undefined;
  try {
    const clickhouse = new ClickHouseUsageEventRepository(store.client, store.database, store.kind);
    const repository = metrics ? new TimedUsageEventRepository(clickhouse, metrics) : clickhouse;
    const kafka = given === undefined && config.usage.bus === 'kafka';
    deadLetters = kafka ? new KafkaDeadLetterSink(config.usage.kafka, logger) : new MemoryDeadLetterSink(logger);
    const ingest = new UsageIngestService(repository, deadLetters, logger, metrics);
    const consumer = kafka ? new KafkaUsageSource(config.usage, logger) : undefined;
    source = given ?? consumer;
    // Chunks handed in together (Kafka partitions, or bus batches) are prepared as they arrive and
    // stored together, one insert at a time.
    const coalesced = new UsageBatchCoalescer(ingest, config.usage.consumer.batchMaxEvents, config.usage.consumer.coalesceLingerMs).handle;
    // Each stored chunk is a consumer span linked to the request spans that produced its events
    // (their `traceparent` headers). Headers are only read when tracing is on.
    const handle: UsageBatchHandler = tracing?.enabled
      ? (messages) => tracing.consume(`${config.usage.kafka.topic} process`, messages.map((m) => m.headers), () => coalesced(messages))
      : coalesced;
    if (source) await source.start(handle);
    else logger.warn('usage.bus is in-process but billing runs on its own: no usage events will arrive (use usage.bus: kafka)');

    const active = source;
    if (consumer) metrics?.readRunningFrom(() => consumer.isRunning());
    // The store's own check (`clickhouse`) is the caller's, from before the pipeline started.
    const readiness: ReadinessCheck[] = [
      {
        // A Kafka consumer kafkajs stopped for good (a batch it cannot decode) fails this while a
        // fresh one is tried, even though the broker still answers the lag query. Advisory: billing
        // still answers its report RPCs (invoices, usage, exports) from ClickHouse meanwhile, and a
        // replica not ready would leave the Service, and those with it, for the whole Kafka outage.
        // The consumer's state is watched by `openrouter_usage_consumer_running` and its alert.
        name: 'usage-consumer',
        advisory: true,
        check: async () => active !== undefined && (consumer?.isRunning() ?? true) && (await active.lag()) >= 0,
        details: async () => ({ bus: kafka ? 'kafka' : 'in-process', ...(consumer ? consumer.status() : {}), lag: active ? await active.lag() : null, ...ingest.stats() }),
      },
    ];
    const dlq = deadLetters;
    return {
      lag: () => (active ? active.lag() : Promise.resolve(0)),
      stats: () => ingest.stats(),
      store,
      readiness,
      async close() {
        // Stop taking messages first; a batch in flight finishes or stays uncommitted.
        if (kafka) await active?.close();
        await dlq.close();
      },
    };
  } catch (error) {
    if (given === undefined) await source?.close().catch(() => undefined);
    await deadLetters?.close().catch(() => undefined);
    throw error;
  }
}
