import type { adapterv1 } from '@openrouter/contracts';
import type { DeploymentCircuit, RouterMetrics } from '@openrouter/observability';
import type { AdapterPort } from '../router.service';
import type { RoutingEngine } from '../routing/routing-engine';

/** Attempts remembered per request id, so later attempts count as retries and failovers. */
const REMEMBERED_REQUESTS = 10_000;

/** Every deployment's circuit, read at scrape time. */
export function deploymentCircuits(engine: Pick<RoutingEngine, 'catalog' | 'breakers'>): DeploymentCircuit[] {
  const circuits: DeploymentCircuit[] = [];
  for (const model of engine.catalog.list()) {
    for (const deployment of model.deployments) circuits.push({ provider: deployment.provider, deployment: deployment.id, state: engine.breakers.of(deployment.id).current() });
  }
  return circuits;
}

function outcomeOf(error: unknown, signal: AbortSignal): string {
  if (signal.aborted) return 'cancelled';
  const kind = (error as { kind?: unknown } | null)?.kind;
  return typeof kind === 'string' ? kind : 'internal';
}

/**
 * The adapter port, counting each call as one attempt of its request: its outcome is decided by
 * the first answer event (as failover decides it), and a request's later attempts count as retries
 * and, on another deployment, failovers.
 */
export function instrumentAdapterPort(
  port: AdapterPort,
  metrics: RouterMetrics,
  models: ReadonlyArray<{ deployments: ReadonlyArray<{ id: string; provider: string; model: string }> }>,
): AdapterPort {
  const deploymentIds = new Map<string, string>();
  for (const model of models) for (const d of model.deployments) if (!deploymentIds.has(`${d.provider}\u0000${d.model}`)) deploymentIds.set(`${d.provider}\u0000${d.model}`, d.id);
  const previous = new Map<string, { count: number; deployment: string }>();
  const record = (requestId: string, provider: string, upstreamModel: string, outcome: string): void => {
    const deployment = deploymentIds.get(`${provider}\u0000${upstreamModel}`) ?? 'unknown';
    const before = previous.get(requestId);
    metrics.attempt(provider, deployment, outcome, before?.count ?? 0, before?.deployment);
    previous.delete(requestId);
    if (outcome === 'ok' || outcome === 'cancelled') return;
    previous.set(requestId, { count: (before?.count ?? 0) + 1, deployment });
    if (previous.size > REMEMBERED_REQUESTS) {
      const oldest = previous.keys().next().value;
      if (oldest !== undefined) previous.delete(oldest);
    }
  };
  return {
    chat(request: adapterv1.ChatRequest, signal: AbortSignal): AsyncIterator<adapterv1.ChatResponse> {
      const inner = port.chat(request, signal);
      let first = true;
      return {
        async next(): Promise<IteratorResult<adapterv1.ChatResponse>> {
          if (!first) return inner.next();
          first = false;
          try {
            const result = await inner.next();
            record(request.requestId, request.provider, request.upstreamModel, result.done ? 'upstream_error' : 'ok');
            return result;
          } catch (error) {
            record(request.requestId, request.provider, request.upstreamModel, outcomeOf(error, signal));
            throw error;
          }
        },
        return: (value?: unknown) => (inner.return ? inner.return(value) : Promise.resolve({ done: true, value: undefined })),
        throw: (error?: unknown) => (inner.throw ? inner.throw(error) : Promise.reject(error)),
      };
    },
    async embed(request: adapterv1.EmbedRequest, signal: AbortSignal): Promise<adapterv1.EmbedResponse> {
      try {
        const response = await port.embed(request, signal);
        record(request.requestId, request.provider, request.upstreamModel, 'ok');
        return response;
      } catch (error) {
        record(request.requestId, request.provider, request.upstreamModel, outcomeOf(error, signal));
        throw error;
      }
    },
  };
}
