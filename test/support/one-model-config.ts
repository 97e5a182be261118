import { parseConfig, type GatewayConfig } from '@openrouter/config';

/**
 * The configuration of a service started on its own in a test: one provider and one model that
 * are never called, every listener on a free port, with `sections` laid over the top-level
 * sections (`billing`, `alerting`, `usage`, `log`, …) each whole.
 */
export function oneModelConfig(sections: Record<string, unknown>): GatewayConfig {
  return parseConfig(
    {
      version: 1,
      ingress: { http: { port: 0 }, router: '127.0.0.1:1' },
      router: { grpc: { port: 0 }, http: { port: 0 }, adapters: { default: '127.0.0.1:2' } },
      adapter: { grpc: { port: 0 }, http: { port: 0 } },
      billing: { http: { port: 0 } },
      alerting: { http: { port: 0 } },
      providers: { sim: { type: 'openai', baseUrl: 'http://127.0.0.1:9/v1', apiKey: 'k' } },
      models: [{ id: 'm', deployments: [{ provider: 'sim', model: 'up' }] }],
      ...sections,
    },
    {},
  );
}
