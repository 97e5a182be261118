import { parseConfig } from '@openrouter/config';
import { createLogger } from '@openrouter/observability';
import { createClickHouse, type ClickHouseTarget } from '@openrouter/usage';
import { reportClient } from './reports-server';

const BASE = {
  version: 1,
  ingress: { http: { port: 0 }, router: '127.0.0.1:1' },
  router: { grpc: { port: 0 }, http: { port: 0 }, adapters: { default: '127.0.0.1:2' } },
  adapter: { grpc: { port: 0 }, http: { port: 0 } },
  billing: { http: { port: 0 } },
  alerting: { http: { port: 0 } },
  providers: { sim: { type: 'openai', baseUrl: 'http://127.0.0.1:9/v1', apiKey: 'k' } },
  models: [{ id: 'm', deployments: [{ provider: 'sim', model: 'up' }] }],
};

/** The request timeout a ClickHouse client was made with (the client keeps it to itself). */
const requestTimeout = (target: ClickHouseTarget): number => (target.client as unknown as { connectionParams: { request_timeout: number } }).connectionParams.request_timeout;

describe('the report RPCs’ store', () => {
  const logger = createLogger('billing-spec', 'silent');

  it('gives report queries to a ClickHouse server as long as the report call (grpc.reportTimeoutMs), not the pipeline’s shorter request timeout', async () => {
    const config = parseConfig({ ...BASE, usage: { clickhouse: { url: 'http://127.0.0.1:1' } } }, {});
    // The defaults: 30 s for the pipeline's requests, 60 s for a report call.
    expect([config.usage.clickhouse.requestTimeoutMs, config.grpc.reportTimeoutMs]).toEqual([30_000, 60_000]);
    const store = createClickHouse(config.usage.clickhouse, config.gateway.dataDir, logger);
    const reports = reportClient(config, store, logger);
    try {
      expect(reports).not.toBe(store);
      expect(requestTimeout(store)).toBe(30_000);
      expect(requestTimeout(reports)).toBe(60_000);
    } finally {
      await reports.client.close();
      await store.client.close();
    }
  });

  it('shares the pipeline’s client when its requests may already take as long as a report', async () => {
    const config = parseConfig({ ...BASE, usage: { clickhouse: { url: 'http://127.0.0.1:1', requestTimeoutMs: 90_000 } } }, {});
    const store = createClickHouse(config.usage.clickhouse, config.gateway.dataDir, logger);
    expect(reportClient(config, store, logger)).toBe(store);
    await store.client.close();
  });
});
