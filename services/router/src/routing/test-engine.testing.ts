import { parseConfig, type GatewayConfig } from '@openrouter/config';
import type { routerv1 } from '@openrouter/contracts';
import type { PlanRequest } from './route-planner';
import { createRoutingEngine, type RoutingEngine } from './routing-engine';
import { seededRandom, type Clock } from '../stats/clock';

/** A clock tests move by hand. */
export class ManualClock implements Clock {
  constructor(public time = Date.parse('2025-06-01T00:00:00Z')) {}
  now(): number {
    return this.time;
  }
  advance(ms: number): void {
    this.time += ms;
  }
}

export function configWith(models: unknown[], routing: Record<string, unknown> = {}): GatewayConfig {
  return parseConfig(
    {
      version: 1,
      ingress: { http: { port: 0 }, router: '127.0.0.1:1' },
      router: { grpc: { port: 0 }, http: { port: 0 }, adapters: { default: '127.0.0.1:1' } },
      adapter: { grpc: { port: 0 }, http: { port: 0 } },
      billing: { http: { port: 0 } },
      alerting: { http: { port: 0 } },
      providers: { a: { type: 'openai', baseUrl: 'http://127.0.0.1:1/v1' }, b: { type: 'openai', baseUrl: 'http://127.0.0.1:2/v1' } },
      models,
      routing,
    },
    {},
  );
}

/** cheap: low price, good at chat only; premium: expensive, good at everything. */
export const TWO_MODELS = [
  { id: 'cheap', pricing: { input: '0.10', output: '0.40' }, quality: { default: 0.4, chat: 0.8 }, expectedLatencyMs: 500, deployments: [{ id: 'cheap-a', provider: 'a', model: 'c' }] },
  { id: 'premium', pricing: { input: '5', output: '15' }, quality: { default: 0.9 }, expectedLatencyMs: 100, deployments: [{ id: 'premium-a', provider: 'a', model: 'p' }, { id: 'premium-b', provider: 'b', model: 'p' }] },
];

export function engineFor(config: GatewayConfig, clock = new ManualClock(), seed = 1): RoutingEngine {
  return createRoutingEngine(config, { clock, random: seededRandom(seed) });
}

export function contextFor(overrides: Partial<routerv1.RequestContext> = {}): routerv1.RequestContext {
  return { requestId: 'r1', orgId: 'org', projectId: 'proj', teamId: '', appId: '', costCenter: '', keyId: 'key', endUser: '', tags: {}, allowedModels: [], ...overrides };
}

export function planRequest(model: string, overrides: Partial<PlanRequest> = {}): PlanRequest {
  return { context: contextFor(), capability: 'chat', model, controls: { route: {} }, taskType: 'chat', needs: [], promptTokens: 100, maxOutputTokens: 100, stream: false, user: undefined, ...overrides };
}
