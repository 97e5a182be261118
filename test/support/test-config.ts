import { parseConfig, type GatewayConfig } from '@openrouter/config';

export const TEST_DEV_KEY = 'sk-or-test-0123456789abcdef';
export const SIM_KEY = 'sim-secret-key';
export const TEST_ADMIN_KEY = 'sk-or-admin-test-0123456789abcdef';

export interface TestPorts {
  ingress: number;
  router: number;
  adapter: number;
  routerHttp?: number;
  adapterHttp?: number;
  billing?: number;
  alerting?: number;
}

/** The configuration document the tests run the gateway with, pointed at a simulator. */
export function testConfigDocument(simulatorBaseUrl: string, ports: TestPorts): Record<string, unknown> {
  return {
    version: 1,
    log: { level: 'silent' },
    ingress: { http: { host: '127.0.0.1', port: ports.ingress }, router: `127.0.0.1:${ports.router}`, devKey: TEST_DEV_KEY },
    access: { admin: { devKey: TEST_ADMIN_KEY }, orgs: [{ id: 'default', teams: [{ id: 'default', projects: [{ id: 'default' }] }] }] },
    router: { grpc: { port: ports.router }, http: { port: ports.routerHttp ?? 0 }, adapters: { default: `127.0.0.1:${ports.adapter}` } },
    adapter: { grpc: { port: ports.adapter }, http: { port: ports.adapterHttp ?? 0 } },
    billing: { http: { port: ports.billing ?? 0 } },
    alerting: { http: { port: ports.alerting ?? 0 } },
    // chDB's throw-away data directory: tests never share or leave a database on disk.
    usage: { clickhouse: { embedded: { path: ':memory:' } } },
    // One attempt and no circuit breaking: these suites check how single provider failures map to
    // client errors; routing's retries and breakers have their own suite (test/e2e/routing).
    routing: { retry: { maxAttempts: 1 }, breaker: { consecutiveFailures: 1_000_000, minRequests: 1_000_000 } },
    // Far above a slow answer in a burst of concurrent requests on a loaded machine; a test of a
    // provider that never answers sets a short one of its own (test/e2e/gateway.e2e-spec.ts).
    providers: { simulated: { type: 'openai', baseUrl: simulatorBaseUrl, apiKey: SIM_KEY, headers: { 'x-gateway-test': 'yes' }, timeoutMs: 10_000 } },
    models: [
      { id: 'gpt-4o-mini', capabilities: ['chat', 'tools', 'vision', 'json_object', 'json_schema', 'completions'], pricing: { input: '0.15', output: '0.60' }, deployments: [{ id: 'sim-mini', provider: 'simulated', model: 'sim-mini-upstream' }] },
      { id: 'vendor/model-with-slash', deployments: [{ provider: 'simulated', model: 'slash-upstream' }] },
      { id: 'text-embedding-3-small', capabilities: ['embeddings'], pricing: { input: '0.02' }, deployments: [{ provider: 'simulated', model: 'embed-upstream' }] },
    ],
  };
}

export function testConfig(simulatorBaseUrl: string, ports: TestPorts): GatewayConfig {
  return parseConfig(testConfigDocument(simulatorBaseUrl, ports), {});
}
