import type { BudgetEventPublisher } from '@openrouter/budgets';
import type { GatewayConfig } from '@openrouter/config';
import { createTelemetry, UsageConsumerMetrics, type Logger, type TelemetryOptions } from '@openrouter/observability';
import { HealthModule, startHttpApp, type ServiceHandle } from '@openrouter/service-runtime';
import type { UsageSource } from '@openrouter/usage';
import { startReports, type ReportsHandle } from './reports/reports-server';
import { startUsagePipeline, type UsagePipelineHandle } from './usage/usage-pipeline';

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
}

export interface BillingHandle extends ServiceHandle {
  readonly usage: UsagePipelineHandle;
  /** Report RPCs (gRPC) and budget reconciliation. */
  readonly reports: ReportsHandle;
}

/** Starts the billing service: the usage pipeline into ClickHouse, and its health endpoints. */
export async function startBilling(config: GatewayConfig, logger: Logger, deps: BillingDependencies = {}): Promise<BillingHandle> {
  const telemetry = createTelemetry('billing', config.observability, deps.telemetry);
  const consumerMetrics = new UsageConsumerMetrics(telemetry.registry, config.usage.kafka.consumerGroup);
  const usage = await startUsagePipeline(config, logger, deps.usageSource, consumerMetrics, telemetry.tracing);
  consumerMetrics.readLagFrom(() => usage.lag());
  let reports: ReportsHandle | undefined;
  try {
    reports = await startReports(config, usage, logger, telemetry.registry, deps.budgetEvents);
    const http = await startHttpApp(HealthModule.register('billing', usage.readiness, telemetry.registry), config.billing.http, logger);
    logger.info({ httpPort: http.port, grpcPort: reports.grpcPort }, 'billing started');
    const read = reports;
    return {
      name: 'billing',
      httpPort: http.port,
      grpcPort: read.grpcPort,
      usage,
      reports: read,
      async close() {
        await read.close();
        await usage.close();
        await http.app.close();
        await telemetry.close();
      },
    };
  } catch (error) {
    await reports?.close();
    await usage.close();
    throw error;
  }
}
