import { parseConfig, type GatewayConfig } from '@openrouter/config';

/** `gpt` is cheapest in the US; `us-only` has no deployment in the EU; `other` has one on each side. */
export const POLICY_MODELS = [
  {
    id: 'gpt',
    pricing: { input: '2', output: '8', deployments: { 'gpt-us': { input: '0.1', output: '0.1' } } },
    quality: { default: 0.9 },
    fallbacks: ['other'],
    deployments: [
      { id: 'gpt-us', provider: 'us', model: 'gpt-us' },
      { id: 'gpt-eu', provider: 'eu-1', model: 'gpt-eu' },
      { id: 'gpt-eu2', provider: 'eu-2', model: 'gpt-eu2' },
      { id: 'gpt-plain', provider: 'plain', model: 'gpt-plain' },
    ],
  },
  { id: 'us-only', pricing: { input: '0.01', output: '0.01' }, quality: { default: 0.9 }, deployments: [{ id: 'us-only-us', provider: 'us', model: 'us-only' }] },
  {
    id: 'other',
    pricing: { input: '1', output: '1' },
    quality: { default: 0.5 },
    deployments: [
      { id: 'other-us', provider: 'us', model: 'other-us' },
      { id: 'other-eu', provider: 'eu-1', model: 'other-eu' },
    ],
  },
];

/** Two EU providers, one US provider and one without a residency label, serving `models`. */
export function policyConfig(routing: Record<string, unknown> = {}, models: unknown[] = POLICY_MODELS): GatewayConfig {
  return parseConfig(
    {
      version: 1,
      ingress: { http: { port: 0 }, router: '127.0.0.1:1' },
      router: { grpc: { port: 0 }, http: { port: 0 }, adapters: { default: '127.0.0.1:1' } },
      adapter: { grpc: { port: 0 }, http: { port: 0 } },
      billing: { http: { port: 0 } },
      alerting: { http: { port: 0 } },
      providers: {
        'eu-1': { type: 'openai', baseUrl: 'http://127.0.0.1:1/v1', residency: 'eu' },
        'eu-2': { type: 'openai', baseUrl: 'http://127.0.0.1:2/v1', residency: 'eu' },
        us: { type: 'openai', baseUrl: 'http://127.0.0.1:3/v1', residency: 'us' },
        plain: { type: 'openai', baseUrl: 'http://127.0.0.1:4/v1' },
      },
      models,
      routing: { retry: { baseDelayMs: 0, maxDelayMs: 0 }, ...routing },
    },
    {},
  );
}

