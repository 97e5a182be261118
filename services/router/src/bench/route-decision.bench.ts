import { performance } from 'node:perf_hooks';
import { parseConfig } from '@openrouter/config';
import type { routerv1 } from '@openrouter/contracts';
import type { PlanRequest } from '../routing/route-planner';
import { createRoutingEngine } from '../routing/routing-engine';
import { seededRandom } from '../stats/clock';

export interface RouteDecisionBenchResult {
  decisions: number;
  p50Micros: number;
  p99Micros: number;
}

/** A catalog shaped like a real one: six chat models, several deployments each, two aliases. */
export function benchCatalogDocument(): Record<string, unknown> {
  const model = (id: string, input: string, output: string, quality: number, deployments: number): Record<string, unknown> => ({
    id,
    capabilities: ['chat', 'tools', 'json_object'],
    pricing: { input, output },
    quality: { default: quality, code: quality + 0.05, math: quality - 0.05 },
    expectedLatencyMs: 200 + deployments * 50,
    deployments: Array.from({ length: deployments }, (_, i) => ({ id: `${id}-${i}`, provider: i % 2 ? 'b' : 'a', model: id, weight: i + 1 })),
  });
  return {
    version: 1,
    ingress: { http: { port: 0 }, router: '127.0.0.1:1' },
    router: { grpc: { port: 0 }, http: { port: 0 }, adapters: { default: '127.0.0.1:1' } },
    adapter: { grpc: { port: 0 }, http: { port: 0 } },
    billing: { http: { port: 0 } },
    alerting: { http: { port: 0 } },
    providers: { a: { type: 'openai', baseUrl: 'http://127.0.0.1:1/v1' }, b: { type: 'openai', baseUrl: 'http://127.0.0.1:2/v1' } },
    models: [
      model('tiny', '0.05', '0.20', 0.45, 2),
      model('small', '0.15', '0.60', 0.6, 3),
      model('medium', '0.50', '1.50', 0.72, 2),
      model('large', '2.50', '10.00', 0.85, 3),
      model('frontier', '10.00', '30.00', 0.92, 2),
      model('open', '0.30', '0.30', 0.65, 4),
    ],
    routing: { seed: 42, aliases: { smart: { models: ['large', 'frontier', 'medium'] }, cheap: { models: ['tiny', 'small', 'open'], route: { strategy: 'cost' } } } },
  };
}

/**
 * p50 and p99 of one routing decision (plan: resolve, filter, score, balance), without task
 * classification: the task type is given. For the benchmark harness.
 */
export function measureRouteDecision(decisions = 10_000): RouteDecisionBenchResult {
  const config = parseConfig(benchCatalogDocument(), {});
  const engine = createRoutingEngine(config, { random: seededRandom(7) });
  const context: routerv1.RequestContext = { requestId: 'bench', orgId: 'o', projectId: 'p', teamId: '', appId: '', costCenter: '', keyId: 'k', endUser: '', tags: {}, allowedModels: [] };
  const requests: PlanRequest[] = (['auto', 'smart', 'cheap', 'small'] as const).map((model, i) => ({
    context,
    capability: 'chat',
    model,
    controls: { route: i === 0 ? { strategy: 'balanced', minQuality: 0.5 } : {} },
    taskType: 'code',
    needs: ['tools'],
    promptTokens: 400,
    maxOutputTokens: 256,
    stream: i % 2 === 0,
    user: undefined,
  }));
  for (let i = 0; i < 2_000; i++) engine.planner.plan(requests[i % requests.length] as PlanRequest);
  const times = new Float64Array(decisions);
  for (let i = 0; i < decisions; i++) {
    const request = requests[i % requests.length] as PlanRequest;
    const start = performance.now();
    engine.planner.plan(request);
    times[i] = performance.now() - start;
  }
  times.sort();
  const at = (q: number): number => Number(((times[Math.min(decisions - 1, Math.floor(q * decisions))] ?? 0) * 1000).toFixed(2));
  return { decisions, p50Micros: at(0.5), p99Micros: at(0.99) };
}
