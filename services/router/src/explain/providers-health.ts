import type { routerv1 } from '@openrouter/contracts';
import type { RoutingEngine } from '../routing/routing-engine';

/** Live health of every deployment and provider, as this router process sees it. */
export function providersHealth(engine: Pick<RoutingEngine, 'catalog' | 'breakers' | 'stats'>): routerv1.ProvidersHealthResponse {
  const now = engine.stats.clock.now();
  const deployments: routerv1.DeploymentHealth[] = [];
  const providers = new Map<string, routerv1.ProviderHealth>();
  for (const model of engine.catalog.list()) {
    for (const deployment of model.deployments) {
      const breaker = engine.breakers.of(deployment.id).snapshot();
      const stats = engine.stats.of(deployment.id);
      const usage = stats.usage(now);
      const cooling = engine.breakers.coolingUntil(deployment.id);
      const healthy = breaker.state !== 'open' && cooling === 0;
      deployments.push({
        deployment: deployment.id,
        model: model.id,
        provider: deployment.provider,
        breakerState: breaker.state,
        consecutiveFailures: breaker.consecutiveFailures,
        windowRequests: breaker.windowRequests,
        windowErrorRate: Number(breaker.windowErrorRate.toFixed(4)),
        latencyEwmaMs: Math.round(stats.latencyEwmaMs ?? 0),
        ttftEwmaMs: Math.round(stats.ttftEwmaMs ?? 0),
        p95LatencyMs: Math.round(stats.p95()),
        outstanding: stats.outstanding,
        requestsLastMinute: usage.requests,
        rpmCapacity: deployment.rpm ?? 0,
        cooldownUntilMs: Math.max(breaker.openUntil, cooling),
        healthy,
      });
      const provider = providers.get(deployment.provider) ?? { provider: deployment.provider, healthy: false, deployments: 0, openCircuits: 0 };
      provider.deployments++;
      if (breaker.state === 'open') provider.openCircuits++;
      provider.healthy = provider.openCircuits < provider.deployments;
      providers.set(deployment.provider, provider);
    }
  }
  return { providers: [...providers.values()].sort((a, b) => a.provider.localeCompare(b.provider)), deployments };
}
