import { alertingSchema } from '@openrouter/config';
import { AlertingMetrics, createLogger, createMetricsRegistry } from '@openrouter/observability';
import type { AlertNotification, NotificationChannel } from '../channels/notification';
import { DeliveryQueue } from './delivery-queue';

const logger = createLogger('delivery-spec', 'silent');
const settings = alertingSchema.parse({ delivery: { initialBackoffMs: 5, maxBackoffMs: 20, maxAttempts: 4, timeoutMs: 1_000, queueLimit: 3 } }).delivery;
const notification = (id: string): AlertNotification => ({ id, status: 'firing', ruleId: 'r', ruleKind: 'error_rate', severity: 'warning', alerts: [], sentAt: 0 });

function flakyChannel(failures: number): NotificationChannel & { calls: string[] } {
  const calls: string[] = [];
  let left = failures;
  return {
    id: 'flaky',
    kind: 'webhook',
    calls,
    async send(n) {
      calls.push(n.id);
      if (left-- > 0) throw new Error('receiver down');
    },
  };
}

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i++) await new Promise((done) => setTimeout(done, 5));
  if (!condition()) throw new Error('condition never held');
}

describe('delivery queue', () => {
  it('returns at once and retries a failed delivery with backoff until it goes through', async () => {
    const registry = createMetricsRegistry('alerting', { processMetrics: false });
    const metrics = new AlertingMetrics(registry);
    const queue = new DeliveryQueue(settings, metrics, logger);
    const channel = flakyChannel(2);
    queue.enqueue(channel, notification('a'));
    expect(channel.calls).toEqual(['a']);
    await until(() => channel.calls.length === 3 && queue.pending === 0);
    const text = await registry.metrics();
    expect(text).toContain('openrouter_alert_delivery_failures_total{channel="flaky",service="alerting"} 2');
    await queue.close();
  });

  it('gives up after the last attempt, and never blocks other deliveries', async () => {
    const registry = createMetricsRegistry('alerting', { processMetrics: false });
    const queue = new DeliveryQueue(settings, new AlertingMetrics(registry), logger);
    const dead = flakyChannel(100);
    const fine = flakyChannel(0);
    queue.enqueue(dead, notification('x'));
    queue.enqueue(fine, notification('y'));
    expect(fine.calls).toEqual(['y']);
    await until(() => dead.calls.length === 4 && queue.pending === 0);
    expect(await registry.metrics()).toContain('openrouter_alert_deliveries_dropped_total{channel="flaky",service="alerting"} 1');
    await queue.close();
  });
});
