import type { GatewayConfig } from '@openrouter/config';
import type { Logger } from '@openrouter/observability';
import { waitForClickHouse, type DependencyWait } from '@openrouter/service-runtime';
import { applyRetention, createClickHouse, migrate, USAGE_MIGRATIONS, type ClickHouseTarget, type MigrationResult } from '@openrouter/usage';

export interface UsageStore {
  readonly target: ClickHouseTarget;
  /**
   * Resolves once the store answers and is migrated, its retention applied. Until then its readiness
   * check (`clickhouse`) fails and says what is awaited; a configuration error (a refused credential,
   * a migration that fails otherwise than by the server being away) rejects it.
   */
  readonly wait: DependencyWait<MigrationResult>;
}

/**
 * Opens billing's usage store and prepares it as soon as it answers: a ClickHouse server started
 * after billing is waited for with the consumer's retry backoff (`usage.consumer.retryInitialMs` to
 * `retryMaxMs`), not given up on.
 */
export function openUsageStore(config: GatewayConfig, logger: Logger, stopping?: AbortSignal): UsageStore {
  const target = createClickHouse(config.usage.clickhouse, config.gateway.dataDir, logger);
  const wait = waitForClickHouse({
    store: target,
    config: config.usage.clickhouse,
    what: 'the usage store (ClickHouse)',
    logger,
    initialDelayMs: config.usage.consumer.retryInitialMs,
    maxDelayMs: config.usage.consumer.retryMaxMs,
    signal: stopping,
    prepare: async () => {
      const migration = await migrate(target.client, target.database, USAGE_MIGRATIONS);
      await applyRetention(target.client, target.database, config.usage.clickhouse.retentionDays);
      logger.info({ store: target.kind, location: target.location, database: target.database, applied: migration.applied, schema: migration.current }, 'usage store ready');
      return migration;
    },
  });
  return { target, wait };
}
