import type { Redis } from 'ioredis';
import type { Logger } from '@openrouter/observability';
import { createRedisClient, type RedisConnectionConfig } from '@openrouter/service-runtime';

/**
 * A Redis client that fails fast instead of queueing while disconnected, so a Redis outage is
 * seen at once (and handled by the configured fail mode) rather than as hung requests.
 */
export function connectRedis(config: RedisConnectionConfig): Redis {
  return createRedisClient(config, {
    lazyConnect: false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    commandTimeout: 1_000,
    // Commands issued in the same turn of the event loop (concurrent requests) share one socket write.
    enableAutoPipelining: true,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
  });
}

/**
 * A connection for large values (the files and inputs of batches): failing fast like
 * `connectRedis`, but a command may take as long as moving tens of megabytes takes, and never
 * waits behind, or holds up, the small commands of the request path on their own connection.
 */
export function connectBulkRedis(config: RedisConnectionConfig): Redis {
  return createRedisClient(config, {
    lazyConnect: false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    commandTimeout: 10_000,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
  });
}

/**
 * A second connection for pub/sub (a subscribed connection can run nothing else). Its owner
 * subscribes on every 'ready' itself, not ioredis behind its back: only then does it know when the
 * subscription is back, and that what was published meanwhile never arrived.
 */
export function connectSubscriber(config: RedisConnectionConfig): Redis {
  return createRedisClient(config, {
    lazyConnect: false,
    enableOfflineQueue: true,
    maxRetriesPerRequest: null,
    autoResubscribe: false,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
  });
}

/**
 * Logs a connection's outage once when it starts and once when it ends, through the service's
 * logger. Without an 'error' listener ioredis prints "Unhandled error event" on every retry.
 */
export function logOutages(redis: Redis, logger: Logger, what: string): void {
  let down = false;
  redis.on('error', (error: unknown) => {
    if (down) return;
    down = true;
    logger.warn({ err: error }, `${what}: Redis is unreachable; retrying`);
  });
  redis.on('ready', () => {
    if (!down) return;
    down = false;
    logger.info(`${what}: Redis is reachable again`);
  });
}
