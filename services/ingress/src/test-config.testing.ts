import { parseConfig, type GatewayConfig } from '@openrouter/config';

/**
 * The smallest whole configuration ingress's unit specs start from: every service on port 0, one
 * simulated provider and one model `m` priced 1 micro-unit per input token and 2 per output token.
 * `sections` replaces top-level sections (`models`, `budgets`, `access`, …).
 */
export function ingressTestConfig(sections: Record<string, unknown> = {}): GatewayConfig {
  return parseConfig(
    {
      version: 1,
      ingress: { http: { port: 0 }, router: '127.0.0.1:1' },
      router: { grpc: { port: 0 }, http: { port: 0 }, adapters: { default: '127.0.0.1:2' } },
      adapter: { grpc: { port: 0 }, http: { port: 0 } },
      billing: { http: { port: 0 } },
      alerting: { http: { port: 0 } },
      providers: { sim: { type: 'openai', baseUrl: 'http://127.0.0.1:9/v1' } },
      models: [{ id: 'm', pricing: { input: '1', output: '2' }, deployments: [{ id: 'd', provider: 'sim', model: 'u' }] }],
      ...sections,
    },
    {},
  );
}
