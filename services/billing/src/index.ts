import type { BudgetEventPublisher } from '@openrouter/budgets';
import type { GatewayConfig } from '@openrouter/config';
import { createTelemetry, UsageConsumerMetrics, type Logger, type ReadinessCheck, type TelemetryOptions } from '@openrouter/observability';
import { HealthModule, startHttpApp, STOPPING, waitForUsageBus, type ServiceHandle } from '@openrouter/service-runtime';
import type { UsageSource } from '@openrouter/usage';
import { startReports, type ReportsHandle } from './reports/reports-server';
import { startUsagePipeline, type UsagePipelineHandle } from './usage/usage-pipeline';
import { openUsageStore } from './usage/usage-store';

export type { IngestStats } from './usage/usage-ingest.service';
export { KafkaUsageSource } from './usage/kafka-usage.source';
export type { UsagePipelineHandle } from './usage/usage-pipeline';

export interface BillingDependencies {
  /** The embedded gateway's in-process usage bus; without it billing consumes Kafka per `usage.bus`. */
  usageSource?: UsageSource;
  /**
   * The embedded gateway's in-process budget bus, where the budget reconciliation publishes the
   * threshold crossings no settle published; without it they go to Kafka when `usage.bus` is kafka.
   */
  budgetEvents?: BudgetEventPublisher;
  /** Tracing exporter override (tests). */
  telemetry?: TelemetryOptions;
  /** Aborted when the process is told to stop during the start: the waits for ClickHouse and Kafka end, and the start with them. */
  stopping?: AbortSignal;
}

export interface BillingHandle extends ServiceHandle {
  readonly usage: UsagePipelineHandle;
  /** Report RPCs (gRPC) and budget reconciliation. */
  readonly reports: ReportsHandle;
}

/**
 * Starts the billing service: its health endpoints first, then, once the usage store answers and
 * is migrated and the Kafka brokers answer (a ClickHouse server or a Kafka started after billing is
 * waited for, `/ready` failing and saying so meanwhile), the usage pipeline into it and the report
 * RPCs. Resolves when all of it runs.
 */
export async function startBilling(config: GatewayConfig, logger: Logger, deps: BillingDependencies = {}): Promise<BillingHandle> {
  const telemetry = createTelemetry('billing', config.observability, { logger, ...deps.telemetry });
  const consumerMetrics = new UsageConsumerMetrics(telemetry.registry, config.usage.kafka.consumerGroup);
  const store = openUsageStore(config, logger, deps.stopping);
  // Billing's own Kafka consumer (not the embedded gateway's bus): its brokers are waited for, and
  // the usage topics created, alongside the store; nothing is consumed before both are there.
  const retry = { initialDelayMs: config.usage.consumer.retryInitialMs, maxDelayMs: config.usage.consumer.retryMaxMs, signal: deps.stopping };
  const bus = deps.usageSource === undefined && config.usage.bus === 'kafka' ? waitForUsageBus(config.usage, 'billing', logger, retry) : undefined;
  // Billing serves `/ready` from the beginning, to say what it waits for, but is ready only once
  // the whole start is done: its store migrated, the usage pipeline consuming (its Kafka consumer
  // joined its group) and the report RPCs listening. Until then `starting` fails; it is taken out
  // of the list when the start is done, and with it the wait for Kafka's check (`kafka`): from
  // then on `usage-consumer` says whether Kafka answers.
  const starting: ReadinessCheck = { name: 'starting', check: async () => false };
  // `/ready` reads this list on each request: the pipeline's checks join it once it runs.
  const waits: ReadinessCheck[] = [...(bus ? [bus.readiness('kafka')] : []), starting];
  const readiness: ReadinessCheck[] = [store.wait.readiness('clickhouse'), ...waits];
  let http: Awaited<ReturnType<typeof startHttpApp>> | undefined;
  let usage: UsagePipelineHandle | undefined;
  let reports: ReportsHandle | undefined;
  try {
    http = await startHttpApp(HealthModule.register('billing', readiness, telemetry.registry), config.billing.http, logger);
    await store.wait.ready;
    await bus?.ready;
    const pipeline = await startUsagePipeline(config, logger, store.target, deps.usageSource, consumerMetrics, telemetry.tracing);
    usage = pipeline;
    readiness.push(...pipeline.readiness);
    consumerMetrics.readLagFrom(() => pipeline.lag());
    reports = await startReports(config, pipeline, logger, telemetry.registry, deps.budgetEvents);
    for (const done of waits) readiness.splice(readiness.indexOf(done), 1);
    logger.info({ httpPort: http.port, grpcPort: reports.grpcPort }, 'billing started');
    const read = reports;
    const listening = http;
    return {
      name: 'billing',
      httpPort: listening.port,
      grpcPort: read.grpcPort,
      usage: pipeline,
      reports: read,
      async close() {
        readiness.push(STOPPING);
        await read.close();
        await pipeline.close();
        await store.target.client.close();
        await listening.app.close();
        await telemetry.close();
      },
    };
  } catch (error) {
    store.wait.stop();
    bus?.stop();
    await reports?.close();
    await usage?.close();
    await store.target.client.close().catch(() => undefined);
    await http?.app.close();
    throw error;
  }
}
