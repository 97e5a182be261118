import { Registry } from 'prom-client';
import { alertingSchema } from '@openrouter/config';
import { usagev1 } from '@openrouter/contracts';
import { AlertingMetrics, createLogger, type AlertHistoryEntry } from '@openrouter/observability';
import { emptyUsageEvent, UsageMessageEncoder } from '@openrouter/usage';
import { AlertingService } from './alerting.service';
import { DeliveryQueue } from './delivery/delivery-queue';
import { HistoryWriter } from './delivery/history-writer';
import type { RouterSnapshot } from './rules/rule-evaluator';

const T0 = 1_750_000_000_000;
const HOUR = 3_600_000;

describe('an alerting service that restarts', () => {
  const config = alertingSchema.parse({
    bucketMs: 1_000,
    rules: [
      { id: 'errors', kind: 'error_rate', scope: 'provider', windowMs: 60_000, threshold: 0.25, minRequests: 4, cooldownMs: 10 * 60_000 },
      { id: 'circuits', kind: 'circuit_open' },
      { id: 'budget-80', kind: 'budget_threshold', minPercent: 80, holdMs: HOUR },
    ],
  });
  const logger = createLogger('test', 'silent');

  function started(now: { at: number }, router: { snapshot: RouterSnapshot | undefined } | undefined, budgetPeriodEnd?: (budgetId: string, periodKey: string, atMs: number) => number | undefined): AlertingService {
    const metrics = new AlertingMetrics(new Registry());
    return new AlertingService(config, {
      channels: [],
      delivery: new DeliveryQueue(config.delivery, metrics, logger),
      history: new HistoryWriter(undefined, logger),
      metrics,
      logger,
      router: router && (() => router.snapshot),
      budgetPeriodEnd,
      clock: () => now.at,
    });
  }

  const firing = (alertId: string, ruleId: string, ruleKind: string, labels: Record<string, string>, at: number, notified = true): AlertHistoryEntry => ({
    at: new Date(at).toISOString(),
    alertId,
    ruleId,
    ruleKind,
    severity: 'warning',
    status: 'firing',
    labels,
    value: 1,
    threshold: 1,
    summary: alertId,
    startedAt: new Date(at).toISOString(),
    notified,
    channels: [],
  });

  /** The alerts firing when the service stopped, as the history's latest entries tell them. */
  const history = [
    firing('errors|provider=alpha', 'errors', 'error_rate', { provider: 'alpha' }, T0 - 10 * 60_000),
    firing('errors|provider=beta', 'errors', 'error_rate', { provider: 'beta' }, T0 - 10 * 60_000),
    firing('circuits|deployment=d1|provider=p', 'circuits', 'circuit_open', { provider: 'p', deployment: 'd1' }, T0 - 60_000),
    firing('budget-80|budget=b|org=acme|period=2025-06|threshold=80', 'budget-80', 'budget_threshold', { org: 'acme', budget: 'b', period: '2025-06', threshold: '80' }, T0 - 30 * 60_000),
    // A rule no longer configured, and one whose id now names another kind.
    firing('gone|provider=alpha', 'gone', 'error_rate', { provider: 'alpha' }, T0 - 60_000),
    firing('circuits|provider=alpha', 'circuits', 'error_rate', { provider: 'alpha' }, T0 - 60_000),
  ];

  function calls(service: AlertingService, at: number, provider: string, count: number, failed: number, errorKind = 'upstream_error'): void {
    const event = emptyUsageEvent(`e-${at}-${provider}`, at);
    event.completedAtMs = at;
    event.attempts = Array.from({ length: count }, (_, i) => ({
      provider,
      deployment: `${provider}-1`,
      status: i < failed ? usagev1.AttemptStatus.ATTEMPT_STATUS_ERROR : usagev1.AttemptStatus.ATTEMPT_STATUS_OK,
      errorKind: i < failed ? errorKind : '',
      latencyMs: 100,
    }));
    service.observeUsage(event);
  }

  it("counts a provider refusing the gateway's credentials or not knowing its model as that provider failing; a refused request as nobody's", () => {
    const now = { at: T0 };
    const service = started(now, undefined);
    calls(service, T0, 'revoked', 8, 8, 'auth_failed');
    calls(service, T0, 'renamed', 8, 8, 'not_found');
    calls(service, T0, 'picky', 8, 8, 'bad_request');
    now.at = T0 + 1_000;
    expect(service.evaluate().filter((t) => t.rule.id === 'errors').map((t) => [t.labels['provider'], t.status])).toEqual([
      ['revoked', 'firing'],
      ['renamed', 'firing'],
    ]);
  });

  it('notifies nothing again for the alerts that still hold, and resolves each once it can tell it has ended', () => {
    const now = { at: T0 };
    const router: { snapshot: RouterSnapshot | undefined } = { snapshot: undefined };
    const service = started(now, router);
    expect(service.restore(history)).toBe(4);

    // Nothing watched yet, the router not polled yet: nothing changes, nothing is notified again.
    now.at = T0 + 1_000;
    expect(service.evaluate()).toEqual([]);
    // Alpha still fails: the alert it had is the same alert, not a new one.
    calls(service, T0 + 2_000, 'alpha', 10, 5);
    now.at = T0 + 3_000;
    expect(service.evaluate()).toEqual([]);

    // The router's first status: the circuit has closed meanwhile.
    router.snapshot = { circuits: [{ provider: 'p', deployment: 'd1', state: 'closed' }], grayReleases: [] };
    now.at = T0 + 4_000;
    expect(service.evaluate().map((t) => [t.fingerprint, t.status, t.notify])).toEqual([['circuits|deployment=d1|provider=p', 'resolved', true]]);

    // A whole window watched: beta had no failures in it, alpha had.
    now.at = T0 + 61_000;
    const windowWatched = service.evaluate();
    expect(windowWatched.map((t) => [t.fingerprint, t.status, t.notify, t.startedAt])).toEqual([['errors|provider=beta', 'resolved', true, T0 - 10 * 60_000]]);
    // Alpha's failures leave the window: resolved, as the alert that fired before the restart.
    now.at = T0 + 2_000 + 61_000;
    expect(service.evaluate().map((t) => [t.fingerprint, t.status, t.startedAt])).toEqual([['errors|provider=alpha', 'resolved', T0 - 10 * 60_000]]);

    // The budget's crossing is not seen again: it resolves when the rule's hold after it ends.
    now.at = T0 - 30 * 60_000 + HOUR - 1;
    expect(service.evaluate()).toEqual([]);
    now.at = T0 - 30 * 60_000 + HOUR;
    expect(service.evaluate().map((t) => [t.labels['budget'], t.status, t.notify])).toEqual([['b', 'resolved', true]]);
  });

  it('resolves a restored budget alert when its period ends, if that comes before the rule\'s hold', () => {
    const now = { at: T0 };
    const periodEnd = T0 + 10 * 60_000;
    const service = started(now, { snapshot: undefined }, (budgetId, periodKey) => (budgetId === 'b' && periodKey === '2025-06' ? periodEnd : undefined));
    const crossings = history.filter((e) => e.ruleId === 'budget-80');
    const other = firing('budget-80|budget=gone|org=acme|period=2025-06|threshold=80', 'budget-80', 'budget_threshold', { org: 'acme', budget: 'gone', period: '2025-06', threshold: '80' }, T0 - 30 * 60_000);
    expect(service.restore([...crossings, other])).toBe(2);
    now.at = periodEnd - 1;
    expect(service.evaluate()).toEqual([]);
    now.at = periodEnd;
    expect(service.evaluate().map((t) => [t.labels['budget'], t.status])).toEqual([['b', 'resolved']]);
    // A budget no longer configured: its period is not known, the rule's hold is.
    now.at = T0 - 30 * 60_000 + HOUR;
    expect(service.evaluate().map((t) => [t.labels['budget'], t.status])).toEqual([['gone', 'resolved']]);
  });

  it('leaves alone the alerts only the router could end when no router is polled, so none is held for good', () => {
    const now = { at: T0 };
    const service = started(now, undefined);
    expect(service.restore(history)).toBe(3);
    now.at = T0 + 61_000;
    const resolved = service.evaluate().map((t) => t.fingerprint);
    expect(resolved).toEqual(['errors|provider=alpha', 'errors|provider=beta']);
    expect(resolved.some((f) => f.startsWith('circuits'))).toBe(false);
  });

  it('keeps a restored alert within its cooldown: one that ends and fires again is held back', () => {
    const now = { at: T0 };
    const router: { snapshot: RouterSnapshot | undefined } = { snapshot: { circuits: [{ provider: 'p', deployment: 'd1', state: 'closed' }], grayReleases: [] } };
    const service = started(now, router);
    service.restore([firing('circuits|deployment=d1|provider=p', 'circuits', 'circuit_open', { provider: 'p', deployment: 'd1' }, T0 - 60_000)]);
    expect(service.evaluate().map((t) => [t.status, t.notify])).toEqual([['resolved', true]]);
    router.snapshot = { circuits: [{ provider: 'p', deployment: 'd1', state: 'open' }], grayReleases: [] };
    now.at = T0 + 1_000;
    // Notified a minute before the restart: the rule's cooldown (15 min by default) holds it back.
    expect(service.evaluate().map((t) => [t.status, t.notify])).toEqual([['firing', false]]);
  });

  it('notifies a restored alert whose firing a cooldown held back, if it still holds', () => {
    const now = { at: T0 };
    const router = { snapshot: { circuits: [{ provider: 'p', deployment: 'd1', state: 'open' }], grayReleases: [] } };
    const service = started(now, router);
    service.restore([firing('circuits|deployment=d1|provider=p', 'circuits', 'circuit_open', { provider: 'p', deployment: 'd1' }, T0 - 60_000, false)]);
    expect(service.evaluate().map((t) => [t.status, t.notify, t.startedAt])).toEqual([['firing', true, T0 - 60_000]]);
    expect(service.evaluate()).toEqual([]);
  });
});

describe('an alerting service that is handed the same usage event again', () => {
  const config = alertingSchema.parse({
    bucketMs: 1_000,
    rules: [
      { id: 'errors', kind: 'error_rate', scope: 'provider', windowMs: 60_000, threshold: 0.5, minRequests: 4 },
      { id: 'spend', kind: 'spend_anomaly', windowMs: 60_000, baselineWindows: 1, factor: 3, minSpend: 1 },
    ],
  });
  const logger = createLogger('test', 'silent');
  const encoder = new UsageMessageEncoder();

  function service(now: { at: number }): AlertingService {
    const metrics = new AlertingMetrics(new Registry());
    return new AlertingService(config, {
      channels: [],
      delivery: new DeliveryQueue(config.delivery, metrics, logger),
      history: new HistoryWriter(undefined, logger),
      metrics,
      logger,
      clock: () => now.at,
    });
  }

  /** A request whose two calls to `provider` failed, costing `cost` for acme. */
  function failedTwice(id: string, at: number, provider: string, cost: string): usagev1.UsageEvent {
    const event = emptyUsageEvent(id, at);
    event.completedAtMs = at;
    event.tenant = { ...event.tenant!, orgId: 'acme' };
    event.cost = { amount: cost, currency: 'USD', priceVersion: 'v' };
    event.status = usagev1.Status.STATUS_ERROR;
    event.attempts = [0, 1].map(() => ({ provider, deployment: `${provider}-1`, status: usagev1.AttemptStatus.ATTEMPT_STATUS_ERROR, errorKind: 'upstream_error', latencyMs: 100 }));
    return event;
  }

  const firing = (alerting: AlertingService): string[] => alerting.evaluate().filter((t) => t.status === 'firing').map((t) => t.fingerprint);

  it('counts a redelivered event once in its error rate and spend windows, however it comes again', async () => {
    const now = { at: T0 };
    const alerting = service(now);
    // Long enough after the start for the spend baseline to be judged.
    now.at = T0 + 3 * 60_000;
    const first = encoder.encode(failedTwice('e-1', now.at - 1_000, 'alpha', '0.6'));
    // Sent again in the same batch (a batch's requests resent), and later (an outbox replay).
    await alerting.takeUsage([first, first]);
    now.at += 5_000;
    await alerting.takeUsage([first]);
    // Two calls (fewer than minRequests) and 0.6 USD (less than minSpend): counted once, nothing fires.
    expect(firing(alerting)).toEqual([]);
    // Another request (another id) is counted: four calls, 1.2 USD.
    await alerting.takeUsage([encoder.encode(failedTwice('e-2', now.at - 1_000, 'alpha', '0.6'))]);
    expect(firing(alerting).sort()).toEqual(['errors|provider=alpha', 'spend|currency=USD|org=acme']);
  });
});

