import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { accountAt, KafkaBudgetPublisher, RedisBudgetLedger, ThresholdAlerts, type BudgetEventPublisher } from '@openrouter/budgets';
import { budgetSchema, parseConfig, type GatewayConfig } from '@openrouter/config';
import { budgetv1 } from '@openrouter/contracts';
import { createLogger } from '@openrouter/observability';
import { createClickHouse, type ClickHouseTarget } from '@openrouter/usage';
import { startAlerting, type AlertingHandle } from '@openrouter/alerting';
import { sharedKafkaBrokers, sharedRedisUrl } from '../support/infra/shared-infra';
import { waitFor } from '../support/infra/wait-for';
import { CLEAR_OF_UTC_MIDNIGHT_MS, clearOfUtcMidnight } from '../support/utc-day';
import { usageTestConfig } from '../support/usage-fixtures';
import { WebhookReceiver } from '../support/webhook-receiver';

const logger = createLogger('budget-forecast-spec', 'silent');
const DAY = 86_400_000;

function alertingConfig(base: GatewayConfig, hooks: WebhookReceiver, group: string): GatewayConfig {
  const doc = JSON.parse(JSON.stringify(base)) as Record<string, unknown>;
  doc['budgets'] = { topic: `budget-forecast-${group}.v1` };
  doc['observability'] = {
    alerting: {
      consumerGroup: group,
      evaluateIntervalMs: 100,
      delivery: { initialBackoffMs: 50, maxBackoffMs: 200 },
      channels: [
        { id: 'finance', kind: 'webhook', url: hooks.url('/finance') },
        { id: 'ops', kind: 'webhook', url: hooks.url('/ops') },
      ],
      // Forecasts, an early warning, to finance; spend crossings page operations.
      rules: [
        { id: 'budget', kind: 'budget_threshold', minPercent: 80, kinds: ['forecast'], channels: ['finance'] },
        { id: 'budget-spent', kind: 'budget_threshold', minPercent: 80, kinds: ['spent'], channels: ['ops'] },
      ],
    },
  };
  return parseConfig(doc, {});
}

/**
 * Forecast crossings end to end on the real components: two ingress replicas settling against the
 * Redis ledger at once publish each forecast threshold once to Kafka, and the alerting service,
 * reading the budget topic in its consumer group, notifies it worded as a forecast.
 */
// Spend and reads on the day's (and month's) periods, in real time: not across midnight.
beforeAll(() => clearOfUtcMidnight(), CLEAR_OF_UTC_MIDNIGHT_MS);

describe('budget forecasts on Redis and Kafka', () => {
  let config: GatewayConfig;
  let hooks: WebhookReceiver;
  let alerting: AlertingHandle;
  let store: ClickHouseTarget;
  let kafka: KafkaBudgetPublisher;
  const ledgers: RedisBudgetLedger[] = [];

  beforeAll(async () => {
    hooks = await WebhookReceiver.start();
    const group = `forecast-${randomBytes(4).toString('hex')}`;
    config = alertingConfig(usageTestConfig({ brokers: sharedKafkaBrokers() }), hooks, group);
    store = createClickHouse(config.usage.clickhouse, config.gateway.dataDir);
    alerting = await startAlerting(config, logger, { store });
    kafka = new KafkaBudgetPublisher(config.usage.kafka, config.budgets.topic, logger);
  }, 120_000);

  afterAll(async () => {
    await Promise.all(ledgers.map((l) => l.close()));
    await kafka?.close();
    await alerting?.close();
    await store?.client.close();
    await hooks?.close();
  });

  it('publishes each forecast threshold once across replicas, and alerts on it as a forecast', async () => {
    const prefix = `forecast-${randomBytes(4).toString('hex')}:`;
    // Today's daily budget, in real time: the alert holds until the day ends.
    const now = Date.now();
    const budget = budgetSchema.parse({ id: `acme-${randomBytes(3).toString('hex')}`, scope: { org: 'acme' }, period: 'daily', amount: '2500', alertThresholds: [100], forecastThresholds: [80, 100] });
    const account = accountAt(budget, now);
    // Half-way through the day, whenever this runs: 10 % of the period has passed, and the spend
    // below stays short of the amount (later in the day, the larger spend settled further down
    // would cross the 100 % spend threshold too).
    const at = account.window.startMs + DAY / 2;
    const published: budgetv1.BudgetEvent[] = [];
    const recording: BudgetEventPublisher = {
      publish: async (event) => {
        await kafka.publish(event);
        published.push(event);
      },
      close: async () => undefined,
    };
    const replicas = [0, 1].map(() => {
      const ledger = new RedisBudgetLedger(new Redis(sharedRedisUrl()), prefix);
      ledgers.push(ledger);
      return { ledger, alerts: new ThresholdAlerts(ledger, recording, logger, () => at) };
    });
    // Both settle at once: the spend so far projects past the amount (at most twice the amount).
    const elapsed = at - account.window.startMs;
    const spent = Math.ceil((2_600_000_000 * elapsed) / (account.window.endMs - account.window.startMs));
    const settled = await Promise.all(replicas.map((r, i) => r.ledger.settle(`r${i}`, [account.line], Math.ceil(spent / 2))));
    const totals = settled.map((s) => s[0] ?? 0);
    const counts = await waitFor(
      async () => {
        // A send that fails (the topic still being created) leaves its marker free for the next try.
        const each = await Promise.all(replicas.map((r, i) => r.alerts.publishCrossed([account], [totals[i] ?? 0])));
        return published.length >= 2 ? each : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500, what: 'both forecast thresholds published' },
    );
    expect(counts.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(2);
    expect(published.map((e) => [e.eventId, e.schemaVersion, e.kind]).sort()).toEqual([
      [`${budget.id}/${account.window.key}/forecast-100`, 2, budgetv1.BudgetEventKind.BUDGET_EVENT_KIND_FORECAST],
      [`${budget.id}/${account.window.key}/forecast-80`, 2, budgetv1.BudgetEventKind.BUDGET_EVENT_KIND_FORECAST],
    ]);
    // Once per period: the replicas settle more, and nothing is published again.
    expect(await Promise.all(replicas.map((r) => r.alerts.publishCrossed([account], [spent * 1.5])))).toEqual([0, 0]);
    expect(published).toHaveLength(2);

    // The consumer group starts at the end of the topic: the same events (same ids, counted once) are
    // sent again until it has joined and alerted.
    const firing = (path: string) => hooks.on(path).filter((h) => (h.json as { status: string }).status === 'firing').flatMap((h) => (h.json as { alerts: Array<{ labels: Record<string, string>; summary: string }> }).alerts);
    const forecasts = () => firing('/finance');
    await waitFor(
      async () => {
        await Promise.all(published.map((e) => kafka.publish(e).catch(() => undefined)));
        return forecasts().length >= 2;
      },
      { timeoutMs: 60_000, intervalMs: 1_000, what: 'the forecast alerts' },
    );
    const alerts = forecasts().sort((a, b) => Number(a.labels['threshold']) - Number(b.labels['threshold']));
    expect(alerts.map((a) => a.labels)).toEqual([
      { org: 'acme', budget: budget.id, period: account.window.key, threshold: '80', kind: 'forecast' },
      { org: 'acme', budget: budget.id, period: account.window.key, threshold: '100', kind: 'forecast' },
    ]);
    expect(alerts[1]?.summary).toMatch(new RegExp(`^Forecast: budget ${budget.id} \\(org acme\\) is projected to reach 10[34]% of its 2,500\\.00 USD by the end of ${account.window.key} .*forecast threshold 100%\\), reaching the amount on \\d{4}-\\d{2}-\\d{2}$`));

    // A spend crossing of the same budget, from a producer that sets no kind: it pages ops, and only ops.
    const [first] = published;
    if (!first) throw new Error('no forecast published');
    const spendCrossing: budgetv1.BudgetEvent = { ...first, schemaVersion: 1, eventId: `${budget.id}/${account.window.key}/100`, kind: undefined, thresholdPercent: 100, spent: '2500', projected: undefined, exceedsAtMs: undefined };
    await waitFor(
      async () => {
        await kafka.publish(spendCrossing).catch(() => undefined);
        return firing('/ops').length >= 1;
      },
      { timeoutMs: 60_000, intervalMs: 1_000, what: 'the spend alert on ops' },
    );
    expect(firing('/ops').map((a) => a.labels)).toEqual([{ org: 'acme', budget: budget.id, period: account.window.key, threshold: '100' }]);
    expect(forecasts().every((a) => a.labels['kind'] === 'forecast')).toBe(true);
  }, 150_000);
});
