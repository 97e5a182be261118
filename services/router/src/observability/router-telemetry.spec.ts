import type { adapterv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { createMetricsRegistry, RouterMetrics } from '@openrouter/observability';
import type { AdapterPort } from '../router.service';
import { instrumentAdapterPort } from './router-telemetry';

const models = [{ deployments: [{ id: 'd-a', provider: 'a', model: 'm-a' }, { id: 'd-b', provider: 'b', model: 'm-b' }] }];

function port(failing: Set<string>): AdapterPort {
  return {
    chat(request) {
      let sent = false;
      return {
        async next() {
          if (failing.has(request.provider)) throw new GatewayError('upstream_error', 'down', { retryable: true });
          if (sent) return { done: true, value: undefined };
          sent = true;
          return { done: false, value: {} as adapterv1.ChatResponse };
        },
      };
    },
    embed: async () => ({}) as adapterv1.EmbedResponse,
  };
}

const chat = (provider: string, upstreamModel: string): adapterv1.ChatRequest => ({ requestId: 'r1', provider, upstreamModel, timeoutMs: 0 }) as adapterv1.ChatRequest;

describe('router attempt metrics', () => {
  it('counts each adapter call as an attempt, later ones of a request as retries, a change of deployment as a failover', async () => {
    const registry = createMetricsRegistry('router', { processMetrics: false });
    const instrumented = instrumentAdapterPort(port(new Set(['a'])), new RouterMetrics(registry), models);
    const signal = new AbortController().signal;
    await expect(instrumented.chat(chat('a', 'm-a'), signal).next()).rejects.toThrow('down');
    await expect(instrumented.chat(chat('a', 'm-a'), signal).next()).rejects.toThrow('down');
    const served = instrumented.chat(chat('b', 'm-b'), signal);
    expect((await served.next()).done).toBe(false);
    expect((await served.next()).done).toBe(true);
    const text = await registry.metrics();
    expect(text).toContain('openrouter_router_attempts_total{provider="a",deployment="d-a",outcome="upstream_error",service="router"} 2');
    expect(text).toContain('openrouter_router_attempts_total{provider="b",deployment="d-b",outcome="ok",service="router"} 1');
    expect(text).toContain('openrouter_router_retries_total{provider="a",deployment="d-a",service="router"} 1');
    expect(text).toContain('openrouter_router_retries_total{provider="b",deployment="d-b",service="router"} 1');
    expect(text).toContain('openrouter_router_failovers_total{from_deployment="d-a",to_deployment="d-b",service="router"} 1');
  });
});
