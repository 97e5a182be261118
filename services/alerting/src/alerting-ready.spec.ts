import { createServer } from 'node:net';
import { parseConfig } from '@openrouter/config';
import { createLogger } from '@openrouter/observability';
import type { UsageBatchHandler, UsageSource } from '@openrouter/usage';
import { startAlerting, type AlertingHandle } from './index';

/**
 * A usage source whose start is held until `release()`, as a Kafka consumer's is while it joins its
 * group (or fails to reach the brokers): alerting's start waits there, its HTTP server listening.
 */
class HeldSource implements UsageSource {
  private releaseStart: () => void = () => undefined;
  private markStarting: () => void = () => undefined;
  /** Resolves once alerting has asked the source to start. */
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

describe('alerting readiness', () => {
  it('is not ready until its whole start is done (events consumed), even with no store to wait for', async () => {
    const httpPort = await freePort();
    const config = parseConfig(
      {
        version: 1,
        log: { level: 'silent' },
        ingress: { http: { port: 0 }, router: '127.0.0.1:1' },
        router: { grpc: { port: 0 }, http: { port: 0 }, adapters: { default: '127.0.0.1:2' } },
        adapter: { grpc: { port: 0 }, http: { port: 0 } },
        billing: { http: { port: 0 } },
        alerting: { http: { host: '127.0.0.1', port: httpPort } },
        providers: { sim: { type: 'openai', baseUrl: 'http://127.0.0.1:9/v1', apiKey: 'k' } },
        models: [{ id: 'm', deployments: [{ provider: 'sim', model: 'up' }] }],
      },
      {},
    );
    // No ClickHouse and no Redis: nothing else would say the start is under way.
    expect(config.usage.clickhouse.url).toBe('');
    const source = new HeldSource();
    let alerting: AlertingHandle | undefined;
    const starting = startAlerting(config, createLogger('alerting', 'silent'), { usageSource: source }).then((handle) => (alerting = handle));
    try {
      await source.starting;
      expect(await ready(httpPort)).toEqual({ status: 503, checks: { starting: 'failing' } });

      source.release();
      await starting;
      expect(await ready(httpPort)).toEqual({ status: 200, checks: {} });
    } finally {
      source.release();
      await starting.catch(() => undefined);
      await alerting?.close();
    }
  });
});
