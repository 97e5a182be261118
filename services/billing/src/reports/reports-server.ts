import type { GatewayConfig } from '@openrouter/config';
import { budgetCatalogFor, KafkaBudgetPublisher, RedisBudgetLedger, ThresholdAlerts, type BudgetEventPublisher } from '@openrouter/budgets';
import { GrpcSecurity, GrpcServerHandle } from '@openrouter/grpc';
import { createClickHouse, type ClickHouseTarget } from '@openrouter/usage';
import { ReconciliationMetrics, type Logger, type Registry } from '@openrouter/observability';
import { createRedisClient, leaseTtlFor, RedisLease, SOLE_LEASE, type Lease } from '@openrouter/service-runtime';
import { BudgetReconciler } from '../budgets/budget-reconciler';
import { RollupReconciler } from '../reconciliation/rollup-reconciler';
import type { UsagePipelineHandle } from '../usage/usage-pipeline';
import { billingGrpcBinding } from './billing.grpc.controller';
import { ClickHouseReportsRepository } from './reports.repository';
import { ReportsService } from './reports.service';

export interface ReportsHandle {
  readonly grpcPort: number;
  readonly service: ReportsService;
  /** Present when budgets live in Redis (`access.redis.url`): configured ones, and any the admin API creates. */
  readonly reconciler: BudgetReconciler | undefined;
  readonly rollup: RollupReconciler;
  close(): Promise<void>;
}

/**
 * Billing's read side: the report RPCs over the usage store, and the periodic reconciliations:
 * budget spend in Redis against the store, and the daily rollup against the raw events. With
 * `access.redis` set, a lease in Redis lets one billing replica at a time run each; without it,
 * billing is taken to run alone.
 */
export async function startReports(config: GatewayConfig, usage: UsagePipelineHandle, logger: Logger, registry: Registry, budgetEvents?: BudgetEventPublisher): Promise<ReportsHandle> {
  const metrics = new ReconciliationMetrics(registry);
  const repository = new ClickHouseReportsRepository(usage.store.client, usage.store.database);
  const reportStore = reportClient(config, usage.store, logger);
  // A report's queries are bounded by the report call's deadline (and cancelled with the call).
  const reportRepository = new ClickHouseReportsRepository(reportStore.client, usage.store.database, { maxExecutionMs: config.grpc.reportTimeoutMs });
  const service = new ReportsService(reportRepository, config.billing, { retentionDays: config.usage.clickhouse.retentionDays });
  const closeReportStore = async (): Promise<void> => {
    if (reportStore !== usage.store) await reportStore.client.close();
  };
  const grpc = await GrpcServerHandle.start(config.billing.grpc.host, config.billing.grpc.port, [billingGrpcBinding(service, logger)], GrpcSecurity.fromConfig(config.grpc), (warning) => logger.warn(warning)).catch(async (error: unknown) => {
    await closeReportStore();
    throw error;
  });
  const { url: redisUrl, keyPrefix } = config.access.redis;
  // Connected at a job's first run; a failure to reach Redis fails that run, which logs it.
  const leases = redisUrl ? createRedisClient(config.access.redis, { lazyConnect: true, maxRetriesPerRequest: 1, commandTimeout: 5_000 }) : undefined;
  leases?.on('error', (error: unknown) => logger.debug({ err: error }, 'reconciliation lease connection error'));
  const lease = (job: string, intervalMs: number): Lease => (leases ? new RedisLease(leases, `${keyPrefix}billing:lease:${job}`, leaseTtlFor(intervalMs)) : SOLE_LEASE);
  const budgetsInRedis = redisUrl !== '';
  // Threshold events go where ingress sends them: the embedded gateway's bus, or Kafka (billing's own producer).
  const ownEvents = budgetsInRedis && !budgetEvents && config.usage.bus === 'kafka' ? new KafkaBudgetPublisher(config.usage.kafka, config.budgets.topic, logger) : undefined;
  const events = budgetEvents ?? ownEvents;
  let reconciler: BudgetReconciler | undefined;
  if (budgetsInRedis) {
    const ledgerRedis = createRedisClient(config.access.redis, { maxRetriesPerRequest: 1, commandTimeout: 5_000 });
    // A failed reconciliation run logs its error; the connection's own are details.
    ledgerRedis.on('error', (error: unknown) => logger.debug({ err: error }, 'budget ledger connection error'));
    const ledger = new RedisBudgetLedger(ledgerRedis, keyPrefix);
    const interval = config.budgets.reconcileIntervalMs;
    reconciler = new BudgetReconciler(budgetCatalogFor(config, logger), ledger, repository, () => usage.lag(), logger, {
      lease: lease('budget-reconciliation', interval),
      metrics,
      ...(events ? { alerts: new ThresholdAlerts(ledger, events, logger, Date.now, { forecastMinElapsedFraction: config.budgets.forecast.minElapsedFraction }) } : {}),
    });
    reconciler.start(interval);
  }
  const { reconcileIntervalMs, lookbackDays, settleMs } = config.billing.rollup;
  if (!leases && reconcileIntervalMs > 0 && usage.store.kind === 'server') {
    // A shared ClickHouse server may have several billing replicas, and each would correct the rollup.
    logger.warn('the rollup reconciliation runs without a lease (no access.redis.url): run a single billing replica against this ClickHouse, or configure Redis');
  }
  const rollup = new RollupReconciler(usage.store.client, usage.store.database, { lookbackDays, settleMs, retentionDays: config.usage.clickhouse.retentionDays }, logger, { lease: lease('rollup-reconciliation', reconcileIntervalMs), metrics });
  rollup.start(reconcileIntervalMs);
  const budgets = reconciler;
  return {
    grpcPort: grpc.port,
    service,
    reconciler,
    rollup,
    async close() {
      await grpc.close(config.grpc.shutdownGraceMs);
      await budgets?.close();
      await ownEvents?.close();
      await rollup.close();
      await closeReportStore();
      leases?.disconnect();
    },
  };
}

/**
 * The store the report RPCs read. A report may take as long as its call (`grpc.reportTimeoutMs`,
 * 60 s by default), longer than a ClickHouse server's requests are given (`usage.clickhouse.
 * requestTimeoutMs`, 30 s, for the pipeline's inserts): a report taking between the two would fail
 * at ClickHouse while its caller still waited. Over HTTP, reports have a client of their own, whose
 * requests may take the longer of the two. chDB runs in this process, with no request timeout, and
 * one data directory per process: the pipeline's is used.
 */
export function reportClient(config: GatewayConfig, store: ClickHouseTarget, logger: Logger): ClickHouseTarget {
  const { clickhouse } = config.usage;
  if (store.kind !== 'server' || clickhouse.requestTimeoutMs >= config.grpc.reportTimeoutMs) return store;
  return createClickHouse({ ...clickhouse, requestTimeoutMs: config.grpc.reportTimeoutMs }, config.gateway.dataDir, logger);
}
