import { createServer } from 'node:net';
import { parseConfig } from '@openrouter/config';
import { createLogger } from '@openrouter/observability';
import type { UsageBatchHandler, UsageSource } from '@openrouter/usage';
import { startBilling, type BillingHandle } from './index';

/**
 * A usage source whose start is held until `release()`, as a Kafka consumer's is while it joins its
 * group (or fails to reach the brokers): billing's start waits there, its store ready, its report
 * RPCs not yet listening.
 */
class HeldSource implements UsageSource {
  private releaseStart: () => void = () => undefined;
  private markStarting: () => void = () => undefined;
  /** Resolves once billing has asked the source to start. */
  readonly starting = new Promise<void>((resolve) => (this.markStarting = resolve));

  start(_handler: UsageBatchHandler): Promise<void> {
    this.markStarting();
    return new Promise((resolve) => (this.releaseStart = resolve));
  }
  release(): void {
    this.releaseStart();
  }
  async lag(): Promise<number> {
    return 0;
  }
  async close(): Promise<void> {}
}

/** A loopback port nothing listens on (yet). */
function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

async function ready(port: number): Promise<{ status: number; checks: Record<string, string> }> {
  const response = await fetch(`http://127.0.0.1:${port}/ready`);
  const body = (await response.json()) as { checks: Record<string, string> };
  return { status: response.status, checks: body.checks };
}

describe('billing readiness', () => {
  it('is not ready until its whole start is done (pipeline consuming, report RPCs listening), even with its store ready', async () => {
    const httpPort = await freePort();
    const config = parseConfig(
      {
        version: 1,
        log: { level: 'silent' },
        ingress: { http: { port: 0 }, router: '127.0.0.1:1' },
        router: { grpc: { port: 0 }, http: { port: 0 }, adapters: { default: '127.0.0.1:2' } },
        adapter: { grpc: { port: 0 }, http: { port: 0 } },
        billing: { http: { host: '127.0.0.1', port: httpPort }, grpc: { port: 0 }, rollup: { reconcileIntervalMs: 0 } },
        alerting: { http: { port: 0 } },
        providers: { sim: { type: 'openai', baseUrl: 'http://127.0.0.1:9/v1', apiKey: 'k' } },
        models: [{ id: 'm', deployments: [{ provider: 'sim', model: 'up' }] }],
        usage: { clickhouse: { embedded: { path: ':memory:' } } },
      },
      {},
    );
    const source = new HeldSource();
    let billing: BillingHandle | undefined;
    const starting = startBilling(config, createLogger('billing', 'silent'), { usageSource: source }).then((handle) => (billing = handle));
    try {
      await source.starting;
      // The store answers and is migrated; the pipeline is starting, the report RPCs are not up.
      expect(await ready(httpPort)).toEqual({ status: 503, checks: { clickhouse: 'ok', starting: 'failing' } });

      source.release();
      await starting;
      expect(await ready(httpPort)).toEqual({ status: 200, checks: { clickhouse: 'ok', 'usage-consumer': 'ok' } });
      // The report RPCs read the store through their own repository, each query bounded by the report's deadline.
      const report = await billing?.reports.service.usage({ fromMs: 0, toMs: 86_400_000, groupBy: ['model'], scope: undefined, filter: undefined });
      expect(report?.rows).toEqual([]);
    } finally {
      source.release();
      await starting.catch(() => undefined);
      await billing?.close();
    }
  });
});
