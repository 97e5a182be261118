import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createMetricsRegistry } from './metrics-registry';
import { LAG_READ_TIMEOUT_MS, UsageConsumerMetrics } from './usage-pipeline.metrics';

describe('UsageConsumerMetrics', () => {
  it('shows whether the consumer runs, once told where to read it', async () => {
    const registry = createMetricsRegistry('billing', { processMetrics: false });
    const metrics = new UsageConsumerMetrics(registry, 'billing');
    // An in-process bus has no Kafka consumer: no series rather than a false 0.
    expect(await registry.getSingleMetricAsString('openrouter_usage_consumer_running')).not.toMatch(/group=/);
    let running = true;
    metrics.readRunningFrom(() => running);
    expect(await registry.getSingleMetricAsString('openrouter_usage_consumer_running')).toMatch(/^openrouter_usage_consumer_running\{group="billing",service="billing"\} 1$/m);
    running = false;
    expect(await registry.getSingleMetricAsString('openrouter_usage_consumer_running')).toMatch(/^openrouter_usage_consumer_running\{group="billing",service="billing"\} 0$/m);
    // No consumer here now (an alerting replica standing by): no series, so no alert of a stopped one.
    let here: boolean | undefined = undefined;
    metrics.readRunningFrom(() => here);
    expect(await registry.getSingleMetricAsString('openrouter_usage_consumer_running')).not.toMatch(/group=/);
    here = true;
    expect(await registry.getSingleMetricAsString('openrouter_usage_consumer_running')).toMatch(/^openrouter_usage_consumer_running\{group="billing",service="billing"\} 1$/m);
  });

  it("is what the consumer alerts of deploy/prometheus/alerts.yml query", async () => {
    const registry = createMetricsRegistry('billing', { processMetrics: false });
    new UsageConsumerMetrics(registry, 'billing');
    const names = new Set((await registry.getMetricsAsJSON()).map((m) => m.name));
    const alerts = readFileSync(join(__dirname, '../../../../deploy/prometheus/alerts.yml'), 'utf8');
    const used = [...new Set(alerts.match(/openrouter_usage_consumer_[a-z0-9_]+/g) ?? [])];
    expect(used).toContain('openrouter_usage_consumer_running');
    expect(used.filter((name) => !names.has(name))).toEqual([]);
  });
});

describe('the consumer lag gauge', () => {
  afterEach(() => jest.useRealTimers());

  it('does not hold a scrape while the broker does not answer: the other series are served, the last lag stays', async () => {
    jest.useFakeTimers();
    const registry = createMetricsRegistry('billing', { processMetrics: false });
    const metrics = new UsageConsumerMetrics(registry, 'billing');
    metrics.readRunningFrom(() => true);
    metrics.readLagFrom(async () => 7);
    expect(await registry.metrics()).toMatch(/^openrouter_usage_consumer_lag\{group="billing",service="billing"\} 7$/m);
    // A dead broker: the admin client's request never settles.
    metrics.readLagFrom(() => new Promise<number>(() => undefined));
    const scrape = registry.metrics();
    await jest.advanceTimersByTimeAsync(LAG_READ_TIMEOUT_MS);
    const text = await scrape;
    expect(text).toMatch(/^openrouter_usage_consumer_lag\{group="billing",service="billing"\} 7$/m);
    expect(text).toMatch(/^openrouter_usage_consumer_running\{group="billing",service="billing"\} 1$/m);
  });
});
