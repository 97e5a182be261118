import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AlertingMetrics } from './alerting.metrics';
import { HttpMetrics } from './http.metrics';
import { IngressMetrics } from './ingress.metrics';
import { createMetricsRegistry } from './metrics-registry';
import { RouterMetrics } from './router.metrics';
import { UpstreamMetrics } from './upstream.metrics';
import { UsageConsumerMetrics, UsageProducerMetrics } from './usage-pipeline.metrics';

describe('the Grafana dashboard', () => {
  it('queries only series the services expose', async () => {
    const registry = createMetricsRegistry('all', { processMetrics: true });
    new HttpMetrics(registry);
    new IngressMetrics(registry);
    new RouterMetrics(registry);
    new UpstreamMetrics(registry);
    new UsageProducerMetrics(registry, () => ({ mode: 'direct', pending: 0, outboxBytes: 0 }));
    new UsageConsumerMetrics(registry, 'billing');
    new AlertingMetrics(registry);
    const families = new Set((await registry.getMetricsAsJSON()).flatMap((m) => (String(m.type) === 'histogram' ? [`${m.name}_bucket`, `${m.name}_count`, `${m.name}_sum`] : [m.name])));
    const dashboard = readFileSync(join(__dirname, '../../../../deploy/grafana/openrouter-dashboard.json'), 'utf8');
    const used = new Set(dashboard.match(/openrouter_[a-z0-9_]+/g) ?? []);
    used.delete('openrouter_dashboard');
    expect(used.size).toBeGreaterThan(20);
    expect([...used].filter((name) => !families.has(name))).toEqual([]);
  });

  it("lists every service in its service picker: a series each service has, whatever it serves", async () => {
    const dashboard = JSON.parse(readFileSync(join(__dirname, '../../../../deploy/grafana/openrouter-dashboard.json'), 'utf8')) as { templating: { list: Array<{ name: string; query: unknown }> } };
    const picker = dashboard.templating.list.find((variable) => variable.name === 'service');
    const series = /label_values\((openrouter_[a-z0-9_]+), service\)/.exec(JSON.stringify(picker?.query))?.[1];
    // A registry with nothing but what every service registers (router, adapter, billing and alerting serve no API routes).
    const bare = createMetricsRegistry('adapter', { processMetrics: true });
    const names = new Set((await bare.getMetricsAsJSON()).map((m) => m.name));
    expect(series).toBeDefined();
    expect(names.has(series ?? '')).toBe(true);
  });
});
