import { randomBytes } from 'node:crypto';
import { KafkaBudgetPublisher } from '@openrouter/budgets';
import { parseConfig, type GatewayConfig } from '@openrouter/config';
import { budgetv1, usagev1 } from '@openrouter/contracts';
import { createLogger } from '@openrouter/observability';
import { createClickHouse, KafkaUsagePublisher, PriceBook, type ClickHouseTarget } from '@openrouter/usage';
import { sharedKafkaBrokers } from '../support/infra/shared-infra';
import { waitFor } from '../support/infra/wait-for';
import { makeUsageEvent, usageTestConfig } from '../support/usage-fixtures';
import { WebhookReceiver } from '../support/webhook-receiver';
import { startAlerting, verifySignature, SIGNATURE_HEADER, TIMESTAMP_HEADER, type AlertingHandle } from '@openrouter/alerting';

const logger = createLogger('alerting-spec', 'silent');
const secret = 'int-spec-secret';

function alertingConfig(base: GatewayConfig, hookUrl: string, group: string): GatewayConfig {
  const doc = JSON.parse(JSON.stringify(base)) as Record<string, unknown>;
  doc['budgets'] = { topic: `budget-${group}.v1` };
  doc['observability'] = {
    alerting: {
      consumerGroup: group,
      evaluateIntervalMs: 100,
      bucketMs: 500,
      delivery: { initialBackoffMs: 50, maxBackoffMs: 200 },
      channels: [{ id: 'ops', kind: 'webhook', url: hookUrl, secret }],
      rules: [
        { id: 'errors', kind: 'error_rate', scope: 'deployment', windowMs: 60_000, threshold: 0.4, minRequests: 10, cooldownMs: 600_000 },
        { id: 'budget', kind: 'budget_threshold', minPercent: 80 },
      ],
    },
  };
  return parseConfig(doc, {});
}

describe('alerting on Kafka (consumer group, real broker), history in chDB', () => {
  let config: GatewayConfig;
  let hooks: WebhookReceiver;
  let alerting: AlertingHandle;
  let store: ClickHouseTarget;
  let publisher: KafkaUsagePublisher;
  let budgets: KafkaBudgetPublisher;

  beforeAll(async () => {
    hooks = await WebhookReceiver.start();
    const group = `alerting-${randomBytes(4).toString('hex')}`;
    config = alertingConfig(usageTestConfig({ brokers: sharedKafkaBrokers() }), hooks.url(), group);
    store = createClickHouse(config.usage.clickhouse, config.gateway.dataDir);
    alerting = await startAlerting(config, logger, { store });
    publisher = await KafkaUsagePublisher.start({ kafka: config.usage.kafka, outbox: config.usage.outbox, clientName: 'alerting-spec' }, logger);
    budgets = new KafkaBudgetPublisher(config.usage.kafka, config.budgets.topic, logger);
  }, 120_000);

  afterAll(async () => {
    await publisher?.close();
    await budgets?.close();
    await alerting?.close();
    await store?.client.close();
    await hooks?.close();
  });

  const received = (rule: string, status: string) => hooks.received.filter((h) => (h.json as { rule: { id: string }; status: string }).rule.id === rule && (h.json as { status: string }).status === status);

  it('alerts on a deployment failing half its calls, once, with a retried delivery, and keeps the history', async () => {
    hooks.failNext(2);
    const prices = PriceBook.fromModels(config.models);
    const now = Date.now();
    // The consumer group starts at the end of the topic: publish until it has joined and sees traffic.
    await waitFor(
      async () => {
        const events = Array.from({ length: 20 }, (_, i) => {
          const e = makeUsageEvent(prices, i, now, `e-${Date.now()}`);
          e.completedAtMs = Date.now();
          if (i % 2 === 0) {
            e.status = usagev1.Status.STATUS_ERROR;
            e.errorKind = 'upstream_error';
            e.attempts = [{ provider: 'simulated', deployment: 'sim-mini', status: usagev1.AttemptStatus.ATTEMPT_STATUS_ERROR, errorKind: 'upstream_error', latencyMs: 30 }];
          }
          return e;
        });
        await Promise.all(events.map((e) => publisher.publish(e)));
        return received('errors', 'firing').length > 0;
      },
      { timeoutMs: 60_000, intervalMs: 500, what: 'the error-rate alert' },
    );
    const [hit] = received('errors', 'firing');
    const body = hit?.json as { alerts: Array<{ labels: Record<string, string> }> };
    expect(body.alerts.map((a) => a.labels)).toEqual([{ provider: 'simulated', deployment: 'sim-mini' }]);
    expect(hit && verifySignature(secret, hit.headers[TIMESTAMP_HEADER] ?? '', hit.body, hit.headers[SIGNATURE_HEADER] ?? '')).toBe(true);
    await alerting.historyFlushed();
    const rows = await (
      await store.client.query({ query: "SELECT rule_id, status, labels['deployment'] AS deployment, notified FROM {db:Identifier}.alert_history WHERE rule_id = 'errors'", query_params: { db: store.database }, format: 'JSONEachRow' })
    ).json<{ rule_id: string; status: string; deployment: string; notified: boolean }>();
    expect(rows).toEqual([{ rule_id: 'errors', status: 'firing', deployment: 'sim-mini', notified: true }]);
    expect(received('errors', 'firing')).toHaveLength(1);
  }, 90_000);

  it('alerts on a budget event at 80% read from the budget topic', async () => {
    const event: budgetv1.BudgetEvent = {
      schemaVersion: 1,
      eventId: 'acme-monthly/2025-06/80',
      occurredAtMs: Date.now(),
      budgetId: 'acme-monthly',
      scope: { orgId: 'acme', teamId: '', projectId: '', keyId: '' },
      period: budgetv1.Period.PERIOD_MONTHLY,
      periodKey: '2025-06',
      periodStartMs: Date.now() - 1_000,
      periodEndMs: Date.now() + 3_600_000,
      timezone: 'UTC',
      limit: '100',
      spent: '81.5',
      currency: 'USD',
      thresholdPercent: 80,
      enforcement: budgetv1.Enforcement.ENFORCEMENT_SOFT,
    };
    await waitFor(
      async () => {
        // A send that fails (the topic still being created, a slow broker) is tried again next round.
        await budgets.publish(event).catch(() => undefined);
        return received('budget', 'firing').length > 0;
      },
      { timeoutMs: 60_000, intervalMs: 1_000, what: 'the budget alert' },
    );
    const body = received('budget', 'firing')[0]?.json as { alerts: Array<{ labels: Record<string, string>; summary: string }> };
    expect(body.alerts[0]?.labels).toEqual({ org: 'acme', budget: 'acme-monthly', period: '2025-06', threshold: '80' });
    expect(body.alerts[0]?.summary).toContain('81.5 of 100 USD');
  }, 90_000);
});
