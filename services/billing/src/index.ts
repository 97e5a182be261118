import type { GatewayConfig } from '@openrouter/config';
import type { Logger } from '@openrouter/observability';
import { HealthModule, startHttpApp, type ServiceHandle } from '@openrouter/service-runtime';
import type { UsageSource } from '@openrouter/usage';
import { startUsagePipeline, type UsagePipelineHandle } from './usage/usage-pipeline';

export type { IngestStats } from './usage/usage-ingest.service';
export type { UsagePipelineHandle } from './usage/usage-pipeline';

export interface BillingDependencies {
  /** The embedded gateway's in-process usage bus; without it billing consumes Kafka per `usage.bus`. */
  usageSource?: UsageSource;
}

export interface BillingHandle extends ServiceHandle {
  readonly usage: UsagePipelineHandle;
}

/** Starts the billing service: the usage pipeline into ClickHouse, and its health endpoints. */
export async function startBilling(config: GatewayConfig, logger: Logger, deps: BillingDependencies = {}): Promise<BillingHandle> {
  const usage = await startUsagePipeline(config, logger, deps.usageSource);
  try {
    const http = await startHttpApp(HealthModule.register('billing', usage.readiness), config.billing.http, logger);
    logger.info({ httpPort: http.port }, 'billing started');
    return {
      name: 'billing',
      httpPort: http.port,
      usage,
      async close() {
        await usage.close();
        await http.app.close();
      },
    };
  } catch (error) {
    await usage.close();
    throw error;
  }
}
