import { randomBytes } from 'node:crypto';
import type { GatewayConfig } from '@openrouter/config';
import type { Logger } from '@openrouter/observability';
import { startHttpApp, type ServiceHandle } from '@openrouter/service-runtime';
import { AccessService } from './access/access.service';
import { MemoryAccessRepository, RedisAccessRepository } from './access/access.repository';
import { ADMIN_KEY_PREFIX, generateApiKey } from './access/api-key';
import { MemoryCounterStore, RedisCounterStore } from './access/counter.store';
import { connectRedis, whenReady } from './access/redis-connection';
import { AdminAuth } from './admin/admin-auth';
import { IngressModule } from './ingress.module';
import { RouterClient } from './router.client';

export { hashApiKey, generateApiKey, API_KEY_PREFIX, ADMIN_KEY_PREFIX } from './access/api-key';
export { RedisCounterStore, MemoryCounterStore, type CounterCharge } from './access/counter.store';

export interface IngressHandle extends ServiceHandle {
  /** The accepted development key, and whether it was generated because none was configured. */
  readonly devKey: string;
  readonly devKeyGenerated: boolean;
  /** The development admin key ('' when disabled), and whether it was generated. */
  readonly adminKey: string;
  readonly adminKeyGenerated: boolean;
}

export function generateDevKey(): string {
  return `sk-or-dev-${randomBytes(24).toString('base64url')}`;
}

/** Starts the edge: the OpenAI-compatible HTTP API in front of the router. */
export async function startIngress(config: GatewayConfig, logger: Logger): Promise<IngressHandle> {
  const devKeyGenerated = config.ingress.devKey === '';
  const devKey = devKeyGenerated ? generateDevKey() : config.ingress.devKey;
  const adminKeyGenerated = config.access.admin.devKey === '';
  const adminKey = adminKeyGenerated ? generateApiKey(ADMIN_KEY_PREFIX) : config.access.admin.devKey === 'disabled' ? '' : config.access.admin.devKey;
  const router = new RouterClient(config.ingress.router);
  const { url: redisUrl, keyPrefix } = config.access.redis;
  const repository = redisUrl ? new RedisAccessRepository(redisUrl, keyPrefix) : new MemoryAccessRepository();
  const counterRedis = redisUrl ? connectRedis(redisUrl) : undefined;
  const counters = counterRedis ? new RedisCounterStore(counterRedis, keyPrefix) : new MemoryCounterStore();
  const [storeReady, countersReady] = await Promise.all([repository.ready(), counterRedis ? whenReady(counterRedis, 3_000) : true]);
  if (!storeReady || !countersReady) logger.warn('Redis is not reachable yet; keys and limits follow the configured fail mode until it is');
  const access = new AccessService(config, repository, counters, logger, devKey);
  await access.start();
  const adminAuth = new AdminAuth(config.access.keyHashSecret, config.access.admin.keys, adminKey || undefined);
  const readiness = [{ name: 'router', check: () => router.isReachable(500) }];
  const { app, port } = await startHttpApp(
    IngressModule.register({ router, access, adminAuth, readiness, logger }),
    config.ingress.http,
    logger,
    {
      bodyLimit: config.ingress.limits.bodyBytes,
      requestIds: true,
    },
  );
  logger.info({ httpPort: port, router: config.ingress.router }, 'ingress started');
  return {
    name: 'ingress',
    httpPort: port,
    devKey,
    devKeyGenerated,
    adminKey,
    adminKeyGenerated,
    async close() {
      await app.close();
      router.close();
      await access.close();
      await counters.close();
    },
  };
}
