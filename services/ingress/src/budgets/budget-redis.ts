import type { Redis } from 'ioredis';
import { createRedisClient, type RedisConnectionConfig } from '@openrouter/service-runtime';

/**
 * The budget ledger's Redis connection. Like the access layer's it fails fast while Redis is
 * down, but it waits longer for an answer: a reservation that times out is refused (or admitted
 * unreserved, per `budgets.failMode`) even though Redis may have made it: it is then given back
 * (see `BudgetService.reserve`), or expires if that fails too.
 */
export function connectBudgetRedis(config: RedisConnectionConfig): Redis {
  return createRedisClient(config, {
    lazyConnect: false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    commandTimeout: 5_000,
    // Commands issued in the same turn of the event loop (concurrent requests) share one socket write.
    enableAutoPipelining: true,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
  });
}
