// deploy/grafana/openrouter-dashboard.json checked against the series the services expose. The
// ingress's own series are read from a running ingress's `/metrics` (with the response cache on),
// so a series defined in the service (the response cache's, the rate-limit store's) is known
// without a list to keep: that needs this service, which a library's spec cannot import. The
// other services' series come from the @openrouter/observability classes they register.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  AlertingMetrics,
  createLogger,
  createMetricsRegistry,
  HttpMetrics,
  IngressMetrics,
  RouterMetrics,
  UpstreamMetrics,
  UsageConsumerMetrics,
  UsageProducerMetrics,
} from '@openrouter/observability';
import { startIngress } from '../index';
import { ingressTestConfig } from '../test-config.testing';

const DASHBOARD = join(__dirname, '../../../../deploy/grafana/openrouter-dashboard.json');

/** The series names a scrape holds, from its `# TYPE` lines: a histogram is its `_bucket`, `_count` and `_sum`. */
function seriesNames(exposition: string): string[] {
  return [...exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)].flatMap(([, name = '', type]) =>
    type === 'histogram' ? [`${name}_bucket`, `${name}_count`, `${name}_sum`] : type === 'summary' ? [name, `${name}_count`, `${name}_sum`] : [name],
  );
}

/** What a running ingress serves at `/metrics`, every optional part that registers series turned on. */
async function ingressExposition(): Promise<string> {
  const config = ingressTestConfig({ cache: { enabled: true } });
  const ingress = await startIngress(config, createLogger('ingress', 'silent'));
  try {
    const response = await fetch(`http://127.0.0.1:${ingress.httpPort}/metrics`);
    expect(response.status).toBe(200);
    return await response.text();
  } finally {
    await ingress.close();
  }
}

/** What the router, adapter, billing and alerting register, from the library classes they use. */
async function otherServicesExposition(): Promise<string> {
  const registry = createMetricsRegistry('all', { processMetrics: true });
  new HttpMetrics(registry);
  new IngressMetrics(registry);
  new RouterMetrics(registry);
  new UpstreamMetrics(registry);
  new UsageProducerMetrics(registry, () => ({ mode: 'direct', pending: 0, outboxBytes: 0 }));
  new UsageConsumerMetrics(registry, 'billing');
  new AlertingMetrics(registry);
  return registry.metrics();
}

describe('the Grafana dashboard', () => {
  it('queries only series the services expose', async () => {
    const ingress = seriesNames(await ingressExposition());
    // The response cache's panels read the ingress's own series, found by the scrape.
    expect(ingress).toContain('openrouter_cache_requests_total');
    const exposed = new Set([...ingress, ...seriesNames(await otherServicesExposition())]);
    const used = new Set(readFileSync(DASHBOARD, 'utf8').match(/openrouter_[a-z0-9_]+/g) ?? []);
    used.delete('openrouter_dashboard');
    expect(used.size).toBeGreaterThan(20);
    expect([...used].filter((name) => !exposed.has(name))).toEqual([]);
  });

  it('lists every service in its service picker: a series each service has, whatever it serves', async () => {
    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { templating: { list: Array<{ name: string; query: unknown }> } };
    const picker = dashboard.templating.list.find((variable) => variable.name === 'service');
    const series = /label_values\((openrouter_[a-z0-9_]+), service\)/.exec(JSON.stringify(picker?.query))?.[1];
    // A registry with nothing but what every service registers (router, adapter, billing and alerting serve no API routes).
    const bare = createMetricsRegistry('adapter', { processMetrics: true });
    expect(series).toBeDefined();
    expect(seriesNames(await bare.metrics())).toContain(series);
  });
});
