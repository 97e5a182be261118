import type { GatewayConfig } from '@openrouter/config';
import { RedisBudgetLedger } from '@openrouter/budgets';
import { GrpcServerHandle } from '@openrouter/grpc';
import type { Logger } from '@openrouter/observability';
import { Redis } from 'ioredis';
import { BudgetReconciler } from '../budgets/budget-reconciler';
import type { UsagePipelineHandle } from '../usage/usage-pipeline';
import { billingGrpcBinding } from './billing.grpc.controller';
import { ClickHouseReportsRepository } from './reports.repository';
import { ReportsService } from './reports.service';

export interface ReportsHandle {
  readonly grpcPort: number;
  readonly service: ReportsService;
  /** Present when budgets live in Redis (`access.redis.url`) and some are configured. */
  readonly reconciler: BudgetReconciler | undefined;
  close(): Promise<void>;
}

/**
 * Billing's read side: the report RPCs over the usage store, and the periodic reconciliation of
 * budget spend in Redis against it.
 */
export async function startReports(config: GatewayConfig, usage: UsagePipelineHandle, logger: Logger): Promise<ReportsHandle> {
  const repository = new ClickHouseReportsRepository(usage.store.client, usage.store.database);
  const service = new ReportsService(repository, config.billing.chargeback);
  const grpc = await GrpcServerHandle.start(config.billing.grpc.host, config.billing.grpc.port, [billingGrpcBinding(service, logger)]);
  let reconciler: BudgetReconciler | undefined;
  const { url: redisUrl, keyPrefix } = config.access.redis;
  if (redisUrl && config.budgets.list.length > 0) {
    const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1, commandTimeout: 5_000 });
    reconciler = new BudgetReconciler(config.budgets.list, new RedisBudgetLedger(redis, keyPrefix), repository, () => usage.lag(), logger);
    reconciler.start(config.budgets.reconcileIntervalMs);
  }
  const budgets = reconciler;
  return {
    grpcPort: grpc.port,
    service,
    reconciler,
    async close() {
      await grpc.close();
      await budgets?.close();
    },
  };
}
