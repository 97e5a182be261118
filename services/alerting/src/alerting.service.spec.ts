import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { Registry } from 'prom-client';
import { alertingSchema } from '@openrouter/config';
import { budgetv1, usagev1 } from '@openrouter/contracts';
import { AlertingMetrics, createLogger, type AlertHistoryEntry } from '@openrouter/observability';
import { emptyUsageEvent, UsageMessageEncoder } from '@openrouter/usage';
import { AlertingService } from './alerting.service';
import { SlackChannel } from './channels/slack.channel';
import { DeliveryError, type NotificationChannel } from './channels/notification';
import { WebhookChannel } from './channels/webhook.channel';
import { DeliveryQueue } from './delivery/delivery-queue';
import { HistoryWriter } from './delivery/history-writer';
import type { HandedOverDelivery } from './state/alerting-state.repository';
import type { RouterReplicaStatus, RouterSnapshot } from './aggregation/router-replicas';

const T0 = 1_750_000_000_000;
const HOUR = 3_600_000;

/** A router polled at one address, answering with these breakers. */
const routerWith = (...circuits: RouterReplicaStatus['circuits']): RouterSnapshot => ({ replicas: [{ address: 'router:50051', status: { circuits, grayReleases: [] } }] });

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
    router.snapshot = routerWith({ provider: 'p', deployment: 'd1', state: 'closed' });
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

  it('shows no alert firing once it stops (shutdown, or standing by after losing its lease)', async () => {
    const now = { at: T0 };
    const metrics = new AlertingMetrics(new Registry());
    const service = new AlertingService(config, { channels: [], delivery: new DeliveryQueue(config.delivery, metrics, logger), history: new HistoryWriter(undefined, logger), metrics, logger, clock: () => now.at });
    service.restore(history);
    now.at = T0 + 1_000;
    service.evaluate();
    const firingSeries = async (): Promise<number> => (await metrics.firing.get()).values.filter((v) => v.value > 0).length;
    expect(await firingSeries()).toBeGreaterThan(0);
    await service.close();
    expect(await firingSeries()).toBe(0);
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
    const router: { snapshot: RouterSnapshot | undefined } = { snapshot: routerWith({ provider: 'p', deployment: 'd1', state: 'closed' }) };
    const service = started(now, router);
    service.restore([firing('circuits|deployment=d1|provider=p', 'circuits', 'circuit_open', { provider: 'p', deployment: 'd1' }, T0 - 60_000)]);
    expect(service.evaluate().map((t) => [t.status, t.notify])).toEqual([['resolved', true]]);
    router.snapshot = routerWith({ provider: 'p', deployment: 'd1', state: 'open' });
    now.at = T0 + 1_000;
    // Notified a minute before the restart: the rule's cooldown (15 min by default) holds it back.
    expect(service.evaluate().map((t) => [t.status, t.notify])).toEqual([['firing', false]]);
  });

  it('notifies a restored budget alert that a cooldown held back once the cooldown ends, though its crossing is not seen again', () => {
    const now = { at: T0 };
    const service = started(now, undefined);
    const held = firing('budget-80|budget=b|org=acme|period=2025-06|threshold=80', 'budget-80', 'budget_threshold', { org: 'acme', budget: 'b', period: '2025-06', threshold: '80' }, T0 - 10 * 60_000, false);
    expect(service.restore([held])).toBe(1);
    // The previous episode reached a channel 10 min before the restart: the cooldown (15 min) ends 5 min after it.
    service.restoreCooldowns(new Map([[held.alertId, T0 - 10 * 60_000]]));
    expect(service.evaluate()).toEqual([]);
    now.at = T0 + 5 * 60_000 - 1;
    expect(service.evaluate()).toEqual([]);
    now.at = T0 + 5 * 60_000;
    expect(service.evaluate().map((t) => [t.status, t.notify, t.startedAt])).toEqual([['firing', true, T0 - 10 * 60_000]]);
    expect(service.evaluate()).toEqual([]);
    // Its hold ends an hour after it started: resolved, and notified as its firing now was.
    now.at = T0 - 10 * 60_000 + HOUR;
    expect(service.evaluate().map((t) => [t.status, t.notify])).toEqual([['resolved', true]]);
  });

  it('notifies a restored alert whose firing a cooldown held back, if it still holds', () => {
    const now = { at: T0 };
    const router = { snapshot: routerWith({ provider: 'p', deployment: 'd1', state: 'open' }) };
    const service = started(now, router);
    service.restore([firing('circuits|deployment=d1|provider=p', 'circuits', 'circuit_open', { provider: 'p', deployment: 'd1' }, T0 - 60_000, false)]);
    expect(service.evaluate().map((t) => [t.status, t.notify, t.startedAt])).toEqual([['firing', true, T0 - 60_000]]);
    expect(service.evaluate()).toEqual([]);
  });
});

describe('an alerting service that restarts while a router replica does not answer', () => {
  const config = alertingSchema.parse({ rules: [{ id: 'unreachable', kind: 'router_unreachable', forMs: 60_000 }] });
  const logger = createLogger('test', 'silent');
  const SILENT = 'unreachable|router=10.0.0.2:50051';
  const entry: AlertHistoryEntry = {
    at: new Date(T0 - 5 * 60_000).toISOString(),
    alertId: SILENT,
    ruleId: 'unreachable',
    ruleKind: 'router_unreachable',
    severity: 'warning',
    status: 'firing',
    labels: { router: '10.0.0.2:50051' },
    value: 60_000,
    threshold: 60_000,
    summary: SILENT,
    startedAt: new Date(T0 - 5 * 60_000).toISOString(),
    notified: true,
    channels: [],
  };

  function started(now: { at: number }, router: { snapshot: RouterSnapshot | undefined } | undefined): AlertingService {
    const metrics = new AlertingMetrics(new Registry());
    return new AlertingService(config, { channels: [], delivery: new DeliveryQueue(config.delivery, metrics, logger), history: new HistoryWriter(undefined, logger), metrics, logger, router: router && (() => router.snapshot), clock: () => now.at });
  }

  it('holds the alert while the replica has been silent for less than forMs since the restart, and resolves it once it answers', () => {
    const now = { at: T0 };
    expect(started(now, undefined).restore([entry])).toBe(0);
    const router: { snapshot: RouterSnapshot | undefined } = { snapshot: undefined };
    const service = started(now, router);
    expect(service.restore([entry])).toBe(1);
    // The first poll after the restart: still silent, but not for forMs as far as this process knows.
    router.snapshot = { replicas: [{ address: '10.0.0.1:50051', status: { circuits: [], grayReleases: [] } }, { address: '10.0.0.2:50051', status: undefined, failingSinceMs: T0 }] };
    now.at = T0 + 1_000;
    expect(service.evaluate()).toEqual([]);
    // Silent for forMs: the same alert, not notified again.
    now.at = T0 + 60_000;
    expect(service.evaluate()).toEqual([]);
    router.snapshot = { replicas: [{ address: '10.0.0.1:50051', status: { circuits: [], grayReleases: [] } }, { address: '10.0.0.2:50051', status: { circuits: [], grayReleases: [] } }] };
    now.at = T0 + 70_000;
    expect(service.evaluate().map((t) => [t.fingerprint, t.status, t.notify])).toEqual([[SILENT, 'resolved', true]]);
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

  it('adds up spend in decimal: costs that reach minSpend exactly fire the spend alert', async () => {
    const now = { at: T0 };
    const alerting = service(now);
    // Long enough after the start for the spend baseline to be judged.
    now.at = T0 + 3 * 60_000;
    // 0.7 + 0.2 + 0.1 is exactly 1 (minSpend); added as binary floating point it is 0.9999999999999999.
    const costs = ['0.7', '0.2', '0.1'];
    await alerting.takeUsage(costs.map((cost, i) => encoder.encode({ ...failedTwice(`s-${i}`, now.at - 1_000, 'alpha', cost), attempts: [] })));
    expect(firing(alerting)).toEqual(['spend|currency=USD|org=acme']);
  });

  it('counts an event stamped ahead of its clock (a producer whose clock runs fast) now', async () => {
    const now = { at: T0 };
    const alerting = service(now);
    now.at = T0 + 3 * 60_000;
    await alerting.takeUsage([encoder.encode({ ...failedTwice('ahead', now.at + 2 * HOUR, 'alpha', '1'), attempts: [] })]);
    expect(firing(alerting)).toEqual(['spend|currency=USD|org=acme']);
  });
});

describe('an alerting service that is handed the same budget event again', () => {
  const config = alertingSchema.parse({ rules: [{ id: 'budget-80', kind: 'budget_threshold', minPercent: 80, holdMs: HOUR }] });
  const logger = createLogger('test', 'silent');
  const crossing: budgetv1.BudgetEvent = {
    schemaVersion: 1,
    eventId: 'acme-monthly/2025-06/80',
    occurredAtMs: T0,
    budgetId: 'acme-monthly',
    scope: { orgId: 'acme', teamId: '', projectId: '', keyId: '' },
    period: budgetv1.Period.PERIOD_MONTHLY,
    periodKey: '2025-06',
    periodStartMs: T0 - HOUR,
    periodEndMs: T0 + 30 * 24 * HOUR,
    timezone: 'UTC',
    limit: '100',
    spent: '81.5',
    currency: 'USD',
    thresholdPercent: 80,
    enforcement: budgetv1.Enforcement.ENFORCEMENT_SOFT,
  };

  it('counts a redelivered crossing once: a copy after the alert resolved does not fire it again', () => {
    const now = { at: T0 };
    const metrics = new AlertingMetrics(new Registry());
    const alerting = new AlertingService(config, { channels: [], delivery: new DeliveryQueue(config.delivery, metrics, logger), history: new HistoryWriter(undefined, logger), metrics, logger, clock: () => now.at });
    const statuses = () => alerting.evaluate().map((t) => t.status);
    alerting.takeBudget(Buffer.from(budgetv1.BudgetEvent.encode(crossing).finish()));
    expect(statuses()).toEqual(['firing']);
    // A copy within the hold (a batch resent) neither fires again nor extends the hold.
    now.at = T0 + HOUR / 2;
    alerting.observeBudget({ ...crossing });
    expect(statuses()).toEqual([]);
    now.at = T0 + HOUR;
    expect(statuses()).toEqual(['resolved']);
    // The producer is at least once: the same event, redelivered two hours after the hold ended.
    now.at = T0 + 3 * HOUR;
    alerting.takeBudget(Buffer.from(budgetv1.BudgetEvent.encode(crossing).finish()));
    expect(statuses()).toEqual([]);
    now.at = T0 + 3 * HOUR + 60_000;
    expect(statuses()).toEqual([]);
  });

  it('tells crossings without an event id apart by budget, period and threshold', () => {
    const metrics = new AlertingMetrics(new Registry());
    const alerting = new AlertingService(config, { channels: [], delivery: new DeliveryQueue(config.delivery, metrics, logger), history: new HistoryWriter(undefined, logger), metrics, logger, clock: () => T0 });
    alerting.observeBudget({ ...crossing, eventId: '' });
    alerting.observeBudget({ ...crossing, eventId: '', thresholdPercent: 100, spent: '101' });
    alerting.observeBudget({ ...crossing, eventId: '' });
    expect(alerting.evaluate().map((t) => [t.status, t.labels['threshold']])).toHaveLength(2);
  });

  describe('a forecast crossing', () => {
    // Projected 2,604.17 of 2,500.00 (104 %) by the end of December, passing the amount on the 23rd.
    const forecast: budgetv1.BudgetEvent = {
      ...crossing,
      schemaVersion: 2,
      eventId: 'acme-monthly/2026-12/forecast-100',
      kind: budgetv1.BudgetEventKind.BUDGET_EVENT_KIND_FORECAST,
      periodKey: '2026-12',
      limit: '2500',
      spent: '1512.5',
      thresholdPercent: 100,
      projected: '2604.166667',
      exceedsAtMs: Date.parse('2026-12-23T10:00:00Z'),
      timezone: 'Europe/Berlin',
    };
    const alertingAt = (now: { at: number }) => {
      const metrics = new AlertingMetrics(new Registry());
      return new AlertingService(config, { channels: [], delivery: new DeliveryQueue(config.delivery, metrics, logger), history: new HistoryWriter(undefined, logger), metrics, logger, clock: () => now.at });
    };

    it('fires an alert worded as a forecast, apart from the spend crossing of the same percentage, and resolves when the period ends', () => {
      const now = { at: T0 };
      const alerting = alertingAt(now);
      alerting.takeBudget(Buffer.from(budgetv1.BudgetEvent.encode(forecast).finish()));
      alerting.observeBudget({ ...crossing, periodKey: '2026-12', eventId: 'acme-monthly/2026-12/100', thresholdPercent: 100, spent: '2500', limit: '2500' });
      const fired = alerting.evaluate();
      expect(fired.map((t) => [t.status, t.fingerprint])).toEqual([
        ['firing', 'budget-80|budget=acme-monthly|kind=forecast|org=acme|period=2026-12|threshold=100'],
        ['firing', 'budget-80|budget=acme-monthly|org=acme|period=2026-12|threshold=100'],
      ]);
      expect(fired[0]?.summary).toBe(
        'Forecast: budget acme-monthly (org acme) is projected to reach 104% of its 2,500.00 USD by the end of 2026-12 on its run rate so far (2,604.17 projected, 1,512.50 spent; forecast threshold 100%), reaching the amount on 2026-12-23',
      );
      expect(fired[1]?.summary).toBe('Budget acme-monthly (org acme) reached 100% in 2026-12: 2500 of 2500 USD');
      // As a spend crossing: until the period ends (or the rule's hold, an hour here).
      now.at = T0 + 30 * 24 * HOUR;
      expect(alerting.evaluate().map((t) => t.status)).toEqual(['resolved', 'resolved']);
    });

    it('says so when the spend is past the amount already, and names no date when the projection stays under it', () => {
      const now = { at: T0 };
      const alerting = alertingAt(now);
      alerting.observeBudget({ ...forecast, spent: '2600', projected: '4000', exceedsAtMs: T0 });
      alerting.observeBudget({ ...forecast, eventId: 'acme-monthly/2026-12/forecast-80', thresholdPercent: 80, spent: '1000', projected: '2083.333334', exceedsAtMs: undefined });
      expect(alerting.evaluate().map((t) => t.summary)).toEqual([
        'Forecast: budget acme-monthly (org acme) is projected to reach 160% of its 2,500.00 USD by the end of 2026-12 on its run rate so far (4,000.00 projected, 2,600.00 spent; forecast threshold 100%), already past the amount',
        'Forecast: budget acme-monthly (org acme) is projected to reach 83% of its 2,500.00 USD by the end of 2026-12 on its run rate so far (2,083.33 projected, 1,000.00 spent; forecast threshold 80%)',
      ]);
    });

    it('names amounts under a cent exactly, not as 0.00', () => {
      const alerting = alertingAt({ at: T0 });
      alerting.observeBudget({ ...forecast, limit: '0.005', spent: '0.000033', projected: '0.0061', exceedsAtMs: undefined });
      expect(alerting.evaluate().map((t) => t.summary)).toEqual([
        'Forecast: budget acme-monthly (org acme) is projected to reach 122% of its 0.005 USD by the end of 2026-12 on its run rate so far (0.0061 projected, 0.000033 spent; forecast threshold 100%)',
      ]);
    });

    it('tells forecasts without an event id apart from spend crossings of the same percentage', () => {
      const alerting = alertingAt({ at: T0 });
      alerting.observeBudget({ ...forecast, eventId: '' });
      alerting.observeBudget({ ...forecast, eventId: '', kind: budgetv1.BudgetEventKind.BUDGET_EVENT_KIND_SPENT, schemaVersion: 1 });
      alerting.observeBudget({ ...forecast, eventId: '' });
      expect(alerting.evaluate().map((t) => t.labels['kind'] ?? 'spent')).toEqual(['forecast', 'spent']);
    });

    describe('with rules that take one kind each', () => {
      const split = alertingSchema.parse({
        rules: [
          { id: 'spend-page', kind: 'budget_threshold', minPercent: 80, holdMs: HOUR, kinds: ['spent'] },
          { id: 'forecast-finance', kind: 'budget_threshold', minPercent: 80, holdMs: HOUR, kinds: ['forecast'] },
        ],
      });
      const splitAt = (now: { at: number }) => {
        const metrics = new AlertingMetrics(new Registry());
        return new AlertingService(split, { channels: [], delivery: new DeliveryQueue(split.delivery, metrics, logger), history: new HistoryWriter(undefined, logger), metrics, logger, clock: () => now.at });
      };
      const spend = { ...crossing, periodKey: '2026-12', eventId: 'acme-monthly/2026-12/100', thresholdPercent: 100, spent: '2500', limit: '2500' };
      const entry = (ruleId: string, labels: Record<string, string>): AlertHistoryEntry => ({
        at: new Date(T0 - 60_000).toISOString(),
        alertId: [ruleId, ...Object.keys(labels).sort().map((k) => `${k}=${labels[k]}`)].join('|'),
        ruleId,
        ruleKind: 'budget_threshold',
        severity: 'warning',
        status: 'firing',
        labels,
        value: 100,
        threshold: 80,
        summary: ruleId,
        startedAt: new Date(T0 - 60_000).toISOString(),
        notified: true,
        channels: [],
      });
      const labels = { org: 'acme', budget: 'acme-monthly', period: '2026-12', threshold: '100' };

      it('sends each crossing to the rule of its kind only; a crossing of no kind (an older producer) is spend', () => {
        const alerting = splitAt({ at: T0 });
        alerting.takeBudget(Buffer.from(budgetv1.BudgetEvent.encode(forecast).finish()));
        alerting.observeBudget(spend);
        alerting.observeBudget({ ...spend, eventId: 'acme-monthly/2026-12/90', thresholdPercent: 90, kind: budgetv1.BudgetEventKind.BUDGET_EVENT_KIND_UNSPECIFIED });
        expect(alerting.evaluate().map((t) => [t.rule.id, t.fingerprint])).toEqual([
          ['spend-page', 'spend-page|budget=acme-monthly|org=acme|period=2026-12|threshold=100'],
          ['spend-page', 'spend-page|budget=acme-monthly|org=acme|period=2026-12|threshold=90'],
          ['forecast-finance', 'forecast-finance|budget=acme-monthly|kind=forecast|org=acme|period=2026-12|threshold=100'],
        ]);
      });

      it('takes back its alerts after a restart as the same alerts: a crossing seen again notifies nothing new', () => {
        const now = { at: T0 };
        const alerting = splitAt(now);
        expect(alerting.restore([entry('spend-page', labels), entry('forecast-finance', { ...labels, kind: 'forecast' })])).toBe(2);
        alerting.observeBudget(forecast);
        alerting.observeBudget(spend);
        expect(alerting.evaluate()).toEqual([]);
        // Held by the crossings seen again, past the hold of the restored alerts (an hour after they started).
        now.at = T0 + HOUR / 2;
        expect(alerting.evaluate()).toEqual([]);
        now.at = T0 + HOUR;
        expect(alerting.evaluate().map((t) => [t.rule.id, t.status])).toEqual([
          ['spend-page', 'resolved'],
          ['forecast-finance', 'resolved'],
        ]);
      });

      it('resolves a restored alert of a kind its rule no longer takes when its hold ends, so no receiver shows it for good', () => {
        const now = { at: T0 };
        const alerting = splitAt(now);
        // Fired before the restart, when the rule still took both kinds.
        expect(alerting.restore([entry('spend-page', { ...labels, kind: 'forecast' })])).toBe(1);
        alerting.observeBudget(forecast);
        expect(alerting.evaluate().map((t) => [t.rule.id, t.status])).toEqual([['forecast-finance', 'firing']]);
        now.at = T0 - 60_000 + HOUR - 1;
        expect(alerting.evaluate()).toEqual([]);
        now.at = T0 - 60_000 + HOUR;
        expect(alerting.evaluate().map((t) => [t.fingerprint, t.status, t.notify])).toEqual([['spend-page|budget=acme-monthly|kind=forecast|org=acme|period=2026-12|threshold=100', 'resolved', true]]);
      });
    });

    it('skips an event of a schema version or kind it does not know, rather than read it as spend', () => {
      const alerting = alertingAt({ at: T0 });
      alerting.observeBudget({ ...forecast, schemaVersion: 3 });
      alerting.takeBudget(Buffer.from(budgetv1.BudgetEvent.encode({ ...forecast, kind: 7 as budgetv1.BudgetEventKind }).finish()));
      expect(alerting.evaluate()).toEqual([]);
    });
  });

  it('skips a crossing whose amounts are not decimal text, saying which, and evaluates every rule as ever', () => {
    const both = alertingSchema.parse({ bucketMs: 1_000, rules: [...config.rules, { id: 'errors', kind: 'error_rate', windowMs: 10_000, threshold: 0.5, minRequests: 2 }] });
    const lines: string[] = [];
    const sink = new Writable({ write: (chunk: Buffer, _enc, done) => (lines.push(chunk.toString()), done()) });
    const warned = createLogger('test', 'warn', sink);
    const metrics = new AlertingMetrics(new Registry());
    const now = { at: T0 };
    const alerting = new AlertingService(both, { channels: [], delivery: new DeliveryQueue(both.delivery, metrics, warned), history: new HistoryWriter(undefined, warned), metrics, logger: warned, clock: () => now.at });
    const forecast = { ...crossing, schemaVersion: 2, kind: budgetv1.BudgetEventKind.BUDGET_EVENT_KIND_FORECAST, eventId: 'acme-monthly/2025-06/forecast-100', thresholdPercent: 100, limit: '1,000.00', projected: '1200' };
    alerting.takeBudget(Buffer.from(budgetv1.BudgetEvent.encode(forecast).finish()));
    alerting.observeBudget({ ...crossing, eventId: 'acme-monthly/2025-06/90', thresholdPercent: 90, spent: '9e1' });
    alerting.observeBudget({ ...forecast, eventId: 'acme-monthly/2025-06/forecast-120', thresholdPercent: 120, limit: '1000', projected: 'NaN' });
    alerting.observeBudget(crossing);
    const event = emptyUsageEvent('e1', T0);
    event.completedAtMs = T0;
    event.attempts = Array.from({ length: 4 }, () => ({ provider: 'p', deployment: 'd', status: usagev1.AttemptStatus.ATTEMPT_STATUS_ERROR, errorKind: 'upstream_error', latencyMs: 10 }));
    alerting.observeUsage(event);
    now.at = T0 + 500;
    expect(alerting.evaluate().map((t) => [t.rule.id, t.labels['threshold'] ?? t.labels['provider']])).toEqual([
      ['budget-80', '80'],
      ['errors', 'p'],
    ]);
    const skipped = lines.map((l) => JSON.parse(l) as { msg: string; fields?: string[] }).filter((l) => l.msg.includes('not a decimal'));
    expect(skipped.map((l) => l.fields)).toEqual([['limit'], ['spent'], ['projected']]);
  });

  it('evaluates nothing on a replica that is no longer the active one, and fires the crossing once it is again', () => {
    const metrics = new AlertingMetrics(new Registry());
    let active = false;
    const alerting = new AlertingService(config, { channels: [], delivery: new DeliveryQueue(config.delivery, metrics, logger), history: new HistoryWriter(undefined, logger), metrics, logger, clock: () => T0, mayAct: () => active });
    alerting.observeBudget({ ...crossing });
    expect(alerting.evaluate()).toEqual([]);
    active = true;
    expect(alerting.evaluate().map((t) => t.status)).toEqual(['firing']);
  });
});

/** Receivers still up after a test (one that failed before taking its own down): closed after it, so jest can exit. */
const receiversUp = new Set<() => Promise<void>>();
afterEach(async () => {
  for (const down of [...receiversUp]) await down();
});

/** A local receiver on a port of its own that refuses connections while down; `answer` is its HTTP status. */
async function flakyReceiver(answer = 204) {
  const got: Array<{ status: string; ids: string[] }> = [];
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const json = JSON.parse(body) as { status?: string; text?: string; alerts?: Array<{ id: string }> };
      got.push({ status: json.status ?? (json.text?.includes('[FIRING]') ? 'firing' : 'resolved'), ids: (json.alerts ?? []).map((a) => a.id) });
      res.writeHead(answer).end();
    });
  };
  const probe = createServer(handler);
  await new Promise<void>((done) => probe.listen(0, '127.0.0.1', done));
  const port = (probe.address() as AddressInfo).port;
  let server: Server | undefined = probe;
  const down = () =>
    new Promise<void>((done) => (server ? server.close(() => done()) : done())).then(() => {
      server = undefined;
      receiversUp.delete(down);
    });
  receiversUp.add(down);
  return {
    got,
    url: `http://127.0.0.1:${port}/hook`,
    down,
    async up() {
      receiversUp.add(down);
      server = createServer(handler);
      await new Promise<void>((done) => server?.listen(port, '127.0.0.1', done));
    },
  };
}

/** What `ClickHouseAlertHistory.firing` reads: each alert's latest entry, if it is `firing`. */
function latestFiring(rows: readonly AlertHistoryEntry[]): AlertHistoryEntry[] {
  const latest = new Map<string, AlertHistoryEntry>();
  for (const row of rows) {
    const seen = latest.get(row.alertId);
    if (!seen || Date.parse(row.at) > Date.parse(seen.at) || (row.at === seen.at && row.status === 'resolved')) latest.set(row.alertId, row);
  }
  return [...latest.values()].filter((e) => e.status === 'firing');
}

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 1_000 && !condition(); i++) await new Promise((done) => setTimeout(done, 5));
  if (!condition()) throw new Error('condition never held');
}

describe('an alerting service whose receiver is down', () => {
  const config = alertingSchema.parse({
    delivery: { initialBackoffMs: 5, maxBackoffMs: 10, maxAttempts: 2, timeoutMs: 2_000 },
    channels: [{ id: 'pager', kind: 'webhook', url: 'http://127.0.0.1:9/hook' }],
    rules: [{ id: 'circuits', kind: 'circuit_open', cooldownMs: 60 * 60_000 }],
  });
  const logger = createLogger('test', 'silent');
  const OPEN: RouterSnapshot = routerWith({ provider: 'p', deployment: 'd1', state: 'open' });
  const CLOSED: RouterSnapshot = routerWith({ provider: 'p', deployment: 'd1', state: 'closed' });
  const ALERT = 'circuits|deployment=d1|provider=p';
  const queues: DeliveryQueue[] = [];
  afterEach(async () => {
    for (const q of queues.splice(0)) await q.close(100);
  });

  /** A service with a real delivery queue to `url` (or to each channel of `urls`, by id), and history kept in `rows` (an in-memory store). */
  function started(url: string | Record<string, string>, router: { snapshot: RouterSnapshot }, rows: AlertHistoryEntry[], now: { at: number }, delivery: Partial<typeof config.delivery> = {}) {
    const metrics = new AlertingMetrics(new Registry());
    const queue = new DeliveryQueue({ ...config.delivery, ...delivery }, metrics, logger);
    queues.push(queue);
    const history = new HistoryWriter({ append: async (entries) => void rows.push(...entries) }, logger);
    const channels = Object.entries(typeof url === 'string' ? { pager: url } : url).map(([id, u]) => new WebhookChannel(id, u, ''));
    const service = new AlertingService(config, { channels, delivery: queue, history, metrics, logger, router: () => router.snapshot, clock: () => now.at });
    return { service, queue, history };
  }

  /** Stops a service as startAlerting does: evaluation, then the delivery queue, then the history. */
  async function stopped({ service, queue, history }: ReturnType<typeof started>): Promise<void> {
    await service.close();
    await queue.close(100);
    await history.close(1_000);
  }

  it('sends a firing it gave up on again in the next round, so the receiver sees it fire before it resolves', async () => {
    const receiver = await flakyReceiver();
    await receiver.down();
    const router = { snapshot: OPEN };
    const now = { at: T0 };
    const { service, queue } = started(receiver.url, router, [], now);
    expect(service.evaluate().map((t) => [t.status, t.notify])).toEqual([['firing', true]]);
    // Both attempts fail: given up.
    await until(() => queue.pending === 0);
    await receiver.up();
    now.at = T0 + 10_000;
    expect(service.evaluate()).toEqual([]);
    await until(() => queue.pending === 0 && receiver.got.length === 1);
    // Sent once, however many rounds follow.
    now.at = T0 + 20_000;
    service.evaluate();
    router.snapshot = CLOSED;
    now.at = T0 + 30_000;
    expect(service.evaluate().map((t) => t.status)).toEqual(['resolved']);
    await until(() => queue.pending === 0 && receiver.got.length === 2);
    expect(receiver.got).toEqual([
      { status: 'firing', ids: [ALERT] },
      { status: 'resolved', ids: [ALERT] },
    ]);
    await receiver.down();
  });

  it('sends a resolution it gave up on again in the next round, so the receiver does not show the alert firing for good', async () => {
    const receiver = await flakyReceiver();
    const router = { snapshot: OPEN };
    const now = { at: T0 };
    const { service, queue } = started(receiver.url, router, [], now);
    service.evaluate();
    await until(() => queue.pending === 0 && receiver.got.length === 1);
    // The receiver is down when the alert ends: both attempts at the resolution fail.
    await receiver.down();
    router.snapshot = CLOSED;
    now.at = T0 + 10_000;
    expect(service.evaluate().map((t) => t.status)).toEqual(['resolved']);
    await until(() => queue.pending === 0);
    await receiver.up();
    now.at = T0 + 20_000;
    expect(service.evaluate()).toEqual([]);
    await until(() => queue.pending === 0 && receiver.got.length === 2);
    // Sent once, however many rounds follow.
    now.at = T0 + 30_000;
    service.evaluate();
    await until(() => queue.pending === 0);
    expect(receiver.got).toEqual([
      { status: 'firing', ids: [ALERT] },
      { status: 'resolved', ids: [ALERT] },
    ]);
    await receiver.down();
  });

  it('sends no resolution given up on after the alert fired again: the receiver has its new firing', async () => {
    const receiver = await flakyReceiver();
    const router = { snapshot: OPEN };
    const now = { at: T0 };
    const { service, queue } = started(receiver.url, router, [], now);
    service.evaluate();
    await until(() => queue.pending === 0 && receiver.got.length === 1);
    await receiver.down();
    router.snapshot = CLOSED;
    now.at = T0 + 10_000;
    service.evaluate();
    await until(() => queue.pending === 0);
    // Back after its cooldown, while the receiver is still down: the new firing is owed, the old resolution is not.
    router.snapshot = OPEN;
    now.at = T0 + 2 * 60 * 60_000;
    expect(service.evaluate().map((t) => [t.status, t.notify])).toEqual([['firing', true]]);
    await until(() => queue.pending === 0);
    await receiver.up();
    now.at += 10_000;
    service.evaluate();
    await until(() => queue.pending === 0 && receiver.got.length === 2);
    now.at += 10_000;
    service.evaluate();
    await until(() => queue.pending === 0);
    expect(receiver.got.map((g) => g.status)).toEqual(['firing', 'firing']);
    await receiver.down();
  });

  it('sends no resolution to a receiver that never got the firing', async () => {
    const receiver = await flakyReceiver();
    await receiver.down();
    const router = { snapshot: OPEN };
    const now = { at: T0 };
    const { service, queue } = started(receiver.url, router, [], now, { initialBackoffMs: 200, maxBackoffMs: 200 });
    service.evaluate();
    // The alert ends while its firing waits for a retry: the resolution queues behind it.
    router.snapshot = CLOSED;
    now.at = T0 + 10_000;
    expect(service.evaluate().map((t) => t.status)).toEqual(['resolved']);
    expect(queue.pending).toBe(2);
    await receiver.up();
    await until(() => queue.pending === 0);
    // The retry went through: firing, then resolved.
    expect(receiver.got.map((g) => g.status)).toEqual(['firing', 'resolved']);

    // Again, with the firing given up; the receiver is back by the time the alert ends, and is
    // sent no resolution of a firing it never got.
    await receiver.down();
    router.snapshot = OPEN;
    now.at = T0 + 2 * 60 * 60_000;
    service.evaluate();
    await until(() => queue.pending === 0);
    await receiver.up();
    router.snapshot = CLOSED;
    now.at += 10_000;
    expect(service.evaluate().map((t) => t.status)).toEqual(['resolved']);
    await until(() => queue.pending === 0);
    now.at += 10_000;
    expect(service.evaluate()).toEqual([]);
    expect(queue.pending).toBe(0);
    expect(receiver.got.map((g) => g.status)).toEqual(['firing', 'resolved']);
    await receiver.down();
  });

  it('sends a firing left undelivered at shutdown again after the restart, before its resolution', async () => {
    const receiver = await flakyReceiver();
    await receiver.down();
    const router = { snapshot: OPEN };
    const rows: AlertHistoryEntry[] = [];
    const now = { at: T0 };
    const first = started(receiver.url, router, rows, now, { initialBackoffMs: 60_000, maxBackoffMs: 60_000, maxAttempts: 5 });
    first.service.evaluate();
    await until(() => rows.length === 1);
    // Shutdown while the firing waits for its retry, in the order startAlerting closes them.
    now.at = T0 + 1_000;
    await first.service.close();
    await first.queue.close(100);
    await first.history.close(1_000);
    // The firing reached no channel: its entry names the one it is owed, so a restart does not take it as held back.
    expect(rows.map((r) => [r.status, r.notified, r.channels])).toEqual([
      ['firing', true, ['pager']],
      ['firing', false, ['owed:pager']],
    ]);

    await receiver.up();
    now.at = T0 + 60_000;
    const second = started(receiver.url, router, rows, now);
    expect(second.service.restore(latestFiring(rows))).toBe(1);
    // The same alert, due all along: sent where it is owed, with no new transition.
    expect(second.service.evaluate()).toEqual([]);
    await until(() => second.queue.pending === 0 && receiver.got.length === 1);
    router.snapshot = CLOSED;
    now.at = T0 + 70_000;
    second.service.evaluate();
    await until(() => second.queue.pending === 0 && receiver.got.length === 2);
    expect(receiver.got.map((g) => g.status)).toEqual(['firing', 'resolved']);
    await receiver.down();
  });

  it('records a firing delivered after a give-up as notified again, so a restart does not send it twice', async () => {
    const receiver = await flakyReceiver();
    await receiver.down();
    const router = { snapshot: OPEN };
    const rows: AlertHistoryEntry[] = [];
    const now = { at: T0 };
    const { service, queue, history } = started(receiver.url, router, rows, now);
    service.evaluate();
    await until(() => queue.pending === 0);
    await receiver.up();
    now.at = T0 + 10_000;
    service.evaluate();
    await until(() => queue.pending === 0 && receiver.got.length === 1);
    await history.flushed();
    expect(rows.map((r) => [r.status, r.notified, r.channels])).toEqual([
      ['firing', true, ['pager']],
      ['firing', false, ['owed:pager']],
      ['firing', true, ['pager']],
    ]);
    const [restored] = latestFiring(rows);
    expect(restored).toMatchObject({ notified: true, channels: ['pager'] });
    await receiver.down();
  });

  it('with two channels, sends the firing again only where it was given up, and records where it arrived', async () => {
    const up = await flakyReceiver();
    const down = await flakyReceiver();
    await down.down();
    const router = { snapshot: OPEN };
    const rows: AlertHistoryEntry[] = [];
    const now = { at: T0 };
    const metrics = new AlertingMetrics(new Registry());
    const queue = new DeliveryQueue(config.delivery, metrics, logger);
    queues.push(queue);
    const history = new HistoryWriter({ append: async (entries) => void rows.push(...entries) }, logger);
    const channels = [new WebhookChannel('chat', up.url, ''), new WebhookChannel('pager', down.url, '')];
    const service = new AlertingService(config, { channels, delivery: queue, history, metrics, logger, router: () => router.snapshot, clock: () => now.at });
    service.evaluate();
    await until(() => queue.pending === 0);
    await down.up();
    now.at = T0 + 10_000;
    service.evaluate();
    await until(() => queue.pending === 0 && down.got.length === 1);
    router.snapshot = CLOSED;
    now.at = T0 + 20_000;
    service.evaluate();
    await until(() => queue.pending === 0 && up.got.length === 2 && down.got.length === 2);
    expect(up.got.map((g) => g.status)).toEqual(['firing', 'resolved']);
    expect(down.got.map((g) => g.status)).toEqual(['firing', 'resolved']);
    await history.flushed();
    const recorded = rows.map((r) => [r.status, r.notified, [...r.channels].sort()]);
    // The pager's give-up and the chat's delivery arrive in either order: when the give-up comes
    // first, its entry names only the pager (owed) and the chat's delivery is recorded after it.
    // Either way the last entry before the pager got the firing names the chat.
    const short = recorded.filter(([status, notified]) => status === 'firing' && notified === false);
    expect([[['firing', false, ['chat', 'owed:pager']]], [['firing', false, ['owed:pager']], ['firing', false, ['chat', 'owed:pager']]]]).toContainEqual(short);
    expect(recorded.filter((r) => !short.includes(r))).toEqual([
      ['firing', true, ['chat', 'pager']],
      ['firing', true, ['chat', 'pager']],
      ['resolved', true, ['chat', 'pager']],
    ]);
    expect(recorded.indexOf(short.at(-1) ?? [])).toBe(recorded.length - 3);
    await up.down();
    await down.down();
  });

  /** A channel that records what it is sent; each send waits for `gate` (open when absent), then fails with `failing`'s status, if set. */
  function fakeChannel(id: string, options: { gate?: Promise<void>; failing?: number } = {}) {
    const got: string[] = [];
    const channel: NotificationChannel = {
      id,
      kind: 'webhook',
      async send(notification) {
        await options.gate;
        if (options.failing !== undefined) throw new DeliveryError(`the receiver answered ${options.failing}`, options.failing);
        got.push(notification.status);
      },
    };
    return { channel, got };
  }

  it('records a channel that delivered a firing after another channel gave it up, so a restart sends it only where it was given up', async () => {
    const router = { snapshot: OPEN };
    const rows: AlertHistoryEntry[] = [];
    const now = { at: T0 };
    let open = (): void => undefined;
    const gate = new Promise<void>((done) => (open = done));
    // The chat's delivery is held until the pager has given the firing up: its outcome arrives last.
    const chat = fakeChannel('chat', { gate });
    const pager = fakeChannel('pager', { failing: 503 });
    const metrics = new AlertingMetrics(new Registry());
    const queue = new DeliveryQueue(config.delivery, metrics, logger);
    queues.push(queue);
    const history = new HistoryWriter({ append: async (entries) => void rows.push(...entries) }, logger);
    const service = new AlertingService(config, { channels: [chat.channel, pager.channel], delivery: queue, history, metrics, logger, router: () => router.snapshot, clock: () => now.at });
    service.evaluate();
    await until(() => rows.length === 2);
    open();
    await until(() => queue.pending === 0 && chat.got.length === 1);
    now.at = T0 + 1_000;
    await service.close();
    await queue.close(100);
    await history.close(1_000);
    expect(rows.map((r) => [r.status, r.notified, [...r.channels].sort()])).toEqual([
      ['firing', true, ['chat', 'pager']],
      ['firing', false, ['owed:pager']],
      ['firing', false, ['chat', 'owed:pager']],
    ]);
    expect(latestFiring(rows)).toMatchObject([{ notified: false, channels: ['chat', 'owed:pager'] }]);

    // The next replica: the pager is sent the firing again, the chat (which has it) is not.
    now.at = T0 + 60_000;
    const chatAgain = fakeChannel('chat');
    const pagerAgain = fakeChannel('pager');
    const nextMetrics = new AlertingMetrics(new Registry());
    const next = new DeliveryQueue(config.delivery, nextMetrics, logger);
    queues.push(next);
    const nextHistory = new HistoryWriter({ append: async (entries) => void rows.push(...entries) }, logger);
    const second = new AlertingService(config, { channels: [chatAgain.channel, pagerAgain.channel], delivery: next, history: nextHistory, metrics: nextMetrics, logger, router: () => router.snapshot, clock: () => now.at });
    expect(second.restore(latestFiring(rows))).toBe(1);
    second.evaluate();
    await until(() => next.pending === 0 && pagerAgain.got.length === 1);
    now.at = T0 + 70_000;
    second.evaluate();
    await until(() => next.pending === 0);
    expect(pagerAgain.got).toEqual(['firing']);
    expect(chatAgain.got).toEqual([]);
    await nextHistory.flushed();
    expect(latestFiring(rows)).toMatchObject([{ notified: true }]);
    expect([...(latestFiring(rows)[0]?.channels ?? [])].sort()).toEqual(['chat', 'pager']);
  });

  it('treats a permanent refusal (a 4xx) as handled: sent once, not every round, and never resolved there', async () => {
    const receiver = await flakyReceiver(400);
    const router = { snapshot: OPEN };
    const now = { at: T0 };
    const metrics = new AlertingMetrics(new Registry());
    const queue = new DeliveryQueue({ ...config.delivery, maxAttempts: 5 }, metrics, logger);
    queues.push(queue);
    const service = new AlertingService(config, { channels: [new SlackChannel('pager', receiver.url)], delivery: queue, history: new HistoryWriter(undefined, logger), metrics, logger, router: () => router.snapshot, clock: () => now.at });
    service.evaluate();
    await until(() => queue.pending === 0);
    for (let round = 1; round <= 5; round++) {
      now.at = T0 + round * 10_000;
      service.evaluate();
      expect(queue.pending).toBe(0);
    }
    router.snapshot = CLOSED;
    now.at = T0 + 60_000;
    expect(service.evaluate().map((t) => t.status)).toEqual(['resolved']);
    await until(() => queue.pending === 0);
    // One request: the refused firing, not retried, not sent again, and no resolution after it.
    expect(receiver.got.map((g) => g.status)).toEqual(['firing']);
    await receiver.down();
  });

  it('after a restart, sends a firing refused for good no more than without one: its only channel is not notified again, nor its cooldown lost', async () => {
    const receiver = await flakyReceiver(400);
    const router = { snapshot: OPEN };
    const rows: AlertHistoryEntry[] = [];
    const now = { at: T0 };
    const first = started(receiver.url, router, rows, now);
    first.service.evaluate();
    await until(() => first.queue.pending === 0 && receiver.got.length === 1);
    now.at = T0 + 1_000;
    await stopped(first);
    const recorded = rows.map((r) => [r.status, r.notified, r.channels]);

    now.at = T0 + 60_000;
    const second = started(receiver.url, router, rows, now);
    expect(second.service.restore(latestFiring(rows))).toBe(1);
    // Still firing: neither notified again (no transition) nor sent to the channel that refused it.
    expect(second.service.evaluate()).toEqual([]);
    expect(second.queue.pending).toBe(0);
    router.snapshot = CLOSED;
    now.at = T0 + 70_000;
    expect(second.service.evaluate().map((t) => t.status)).toEqual(['resolved']);
    // Back within the cooldown, counted from the refusal: held back, as without the restart.
    router.snapshot = OPEN;
    now.at = T0 + 80_000;
    expect(second.service.evaluate().map((t) => [t.status, t.notify])).toEqual([['firing', false]]);
    await until(() => second.queue.pending === 0);
    expect(receiver.got.map((g) => g.status)).toEqual(['firing']);
    // The history says where the firing was refused, for the restart to read.
    expect(recorded).toEqual([
      ['firing', true, ['pager']],
      ['firing', false, ['refused:pager']],
    ]);
  });

  it('after a restart, sends a firing refused for good on one of two channels to neither again, and its resolution only where the firing arrived', async () => {
    const chat = await flakyReceiver();
    const pager = await flakyReceiver(400);
    const router = { snapshot: OPEN };
    const rows: AlertHistoryEntry[] = [];
    const now = { at: T0 };
    const urls = { chat: chat.url, pager: pager.url };
    const first = started(urls, router, rows, now);
    first.service.evaluate();
    await until(() => first.queue.pending === 0 && chat.got.length === 1 && pager.got.length === 1);
    now.at = T0 + 1_000;
    await stopped(first);
    const recorded = rows.map((r) => [r.status, r.notified, [...r.channels].sort()]);

    now.at = T0 + 60_000;
    const second = started(urls, router, rows, now);
    expect(second.service.restore(latestFiring(rows))).toBe(1);
    expect(second.service.evaluate()).toEqual([]);
    expect(second.queue.pending).toBe(0);
    router.snapshot = CLOSED;
    now.at = T0 + 70_000;
    expect(second.service.evaluate().map((t) => t.status)).toEqual(['resolved']);
    await until(() => second.queue.pending === 0 && chat.got.length === 2);
    expect(chat.got.map((g) => g.status)).toEqual(['firing', 'resolved']);
    expect(pager.got.map((g) => g.status)).toEqual(['firing']);
    expect(recorded).toEqual([
      ['firing', true, ['chat', 'pager']],
      ['firing', false, ['chat', 'refused:pager']],
    ]);
  });
});

describe('an alerting service that loses its lease', () => {
  const config = alertingSchema.parse({
    bucketMs: 1_000,
    delivery: { maxAttempts: 1, initialBackoffMs: 20, maxBackoffMs: 20, timeoutMs: 1_000 },
    channels: [{ id: 'pager', kind: 'webhook', url: 'http://127.0.0.1:9/hook' }],
    rules: [{ id: 'circuits', kind: 'circuit_open', cooldownMs: 0 }],
  });
  const logger = createLogger('test', 'silent');

  /** A replica as startAlerting runs one with Redis: it delivers while it holds the lease, and hands over what is left when it stops. */
  function replica(maxAttempts: number) {
    const lease = { held: true };
    const router = { snapshot: routerWith({ provider: 'p', deployment: 'd1', state: 'open' }) };
    const handedOver: Array<[string, string]> = [];
    const got: string[] = [];
    // The receiver is down by the time the alert resolves.
    const channel: NotificationChannel = {
      id: 'pager',
      kind: 'webhook',
      async send(notification) {
        if (notification.status === 'resolved') throw new DeliveryError('the receiver answered 503', 503);
        got.push(notification.status);
      },
    };
    const metrics = new AlertingMetrics(new Registry());
    let asked = 0;
    const mayDeliver = (): boolean => (asked++, lease.held);
    const delivery = new DeliveryQueue({ ...config.delivery, maxAttempts }, metrics, logger, () => 0, mayDeliver, async (left) => {
      handedOver.push(...left.map((d): [string, string] => [d.channel, d.notification.status]));
    });
    const now = { at: T0 };
    const service = new AlertingService(config, { channels: [channel], delivery, history: new HistoryWriter(undefined, logger), metrics, logger, router: () => router.snapshot, clock: () => now.at, mayAct: () => lease.held });
    /** Stops as startAlerting's active part does: the service, then the delivery queue. */
    const stop = async (): Promise<void> => {
      await service.close();
      await delivery.close(1_000);
    };
    return { service, delivery, lease, router, now, got, handedOver, stop, asked: () => asked };
  }

  it('hands over a resolution given up before the lease was lost: the next active replica sends it', async () => {
    const r = replica(1);
    r.service.evaluate();
    await until(() => r.got.length === 1 && r.delivery.pending === 0);
    r.router.snapshot = routerWith({ provider: 'p', deployment: 'd1', state: 'closed' });
    r.now.at = T0 + 10_000;
    expect(r.service.evaluate().map((t) => t.status)).toEqual(['resolved']);
    // Given up: owed to the pager at the next round, which never comes.
    await until(() => r.delivery.pending === 0);
    r.lease.held = false;
    await r.stop();
    expect(r.handedOver).toEqual([['pager', 'resolved']]);
  });

  it('hands over a resolution whose retry came due after the lease was lost, before the replica began to stop', async () => {
    const r = replica(3);
    r.service.evaluate();
    await until(() => r.got.length === 1 && r.delivery.pending === 0);
    r.router.snapshot = routerWith({ provider: 'p', deployment: 'd1', state: 'closed' });
    r.now.at = T0 + 10_000;
    r.service.evaluate();
    const sent = r.asked();
    r.lease.held = false;
    // The resolution's retry finds the lease gone, before the replica begins to stop.
    await until(() => r.asked() === sent + 1);
    await r.stop();
    expect(r.got).toEqual(['firing']);
    expect(r.handedOver).toEqual([['pager', 'resolved']]);
  });
});

describe('an alerting service taking over a firing that was being sent again when the previous active replica stopped', () => {
  const config = alertingSchema.parse({
    bucketMs: 1_000,
    delivery: { maxAttempts: 1, initialBackoffMs: 10, maxBackoffMs: 10, timeoutMs: 1_000 },
    channels: [{ id: 'pager', kind: 'webhook', url: 'http://127.0.0.1:9/hook' }],
    rules: [{ id: 'circuits', kind: 'circuit_open', cooldownMs: 0 }],
  });
  const logger = createLogger('test', 'silent');
  const router = { snapshot: routerWith({ provider: 'p', deployment: 'd1', state: 'open' }) };

  /** A replica with history kept in `rows`, whose delivery queue hands what is left at shutdown to `handedOver`. */
  function replica(channel: NotificationChannel, rows: AlertHistoryEntry[], now: { at: number }, handedOver: HandedOverDelivery[] = []) {
    const metrics = new AlertingMetrics(new Registry());
    const queue = new DeliveryQueue(config.delivery, metrics, logger, () => 0, () => true, async (left) => void handedOver.push(...left));
    const history = new HistoryWriter({ append: async (entries) => void rows.push(...entries) }, logger);
    const service = new AlertingService(config, { channels: [channel], delivery: queue, history, metrics, logger, router: () => router.snapshot, clock: () => now.at });
    return { service, queue, history };
  }

  it('delivers it once: the history says the channel is owed it, but the hand-over is on its way', async () => {
    const rows: AlertHistoryEntry[] = [];
    const now = { at: T0 };
    // The receiver refuses connections at first; the firing's second send then hangs until the shutdown has begun.
    let fail: (error: Error) => void = () => undefined;
    let sends = 0;
    const down: NotificationChannel = {
      id: 'pager',
      kind: 'webhook',
      send: () => (++sends === 1 ? Promise.reject(new Error('ECONNREFUSED')) : new Promise((_, reject) => (fail = reject))),
    };
    const handedOver: HandedOverDelivery[] = [];
    const first = replica(down, rows, now, handedOver);
    first.service.evaluate();
    // Given up: the next round sends it again.
    await until(() => first.queue.pending === 0);
    now.at = T0 + 10_000;
    first.service.evaluate();
    await until(() => sends === 2);
    // The shutdown begins while that send is under way; it fails then, and is handed over.
    await first.service.close();
    const closing = first.queue.close(1_000);
    fail(new DeliveryError('the receiver answered 503', 503));
    await closing;
    await first.history.close(1_000);
    expect(handedOver.map((h) => [h.channel, h.notification.status])).toEqual([['pager', 'firing']]);
    // What the next active replica reads: the pager is owed the firing.
    expect(latestFiring(rows).map((e) => [e.notified, e.channels])).toEqual([[false, ['owed:pager']]]);

    const got: string[] = [];
    const up: NotificationChannel = { id: 'pager', kind: 'webhook', send: async (n) => void got.push(n.id) };
    now.at = T0 + 20_000;
    const second = replica(up, rows, now);
    expect(second.service.restore(latestFiring(rows))).toBe(1);
    // As startAlerting takes the outbox: after the restore, before the first round.
    let finished = 0;
    for (const { channel, notification } of handedOver) expect(second.service.deliverHandedOver(channel, notification, () => finished++)).toBe(true);
    second.service.evaluate();
    await until(() => second.queue.pending === 0 && finished === 1);
    now.at = T0 + 30_000;
    second.service.evaluate();
    await until(() => second.queue.pending === 0);
    expect(got).toEqual(handedOver.map((h) => h.notification.id));
    // Delivered: the history says so, for the next restart.
    await second.history.close(1_000);
    expect(latestFiring(rows).map((e) => [e.notified, e.channels])).toEqual([[true, ['pager']]]);
    await second.queue.close(100);
  });
});

describe('an alerting service whose budget alert never reached its receiver before a restart', () => {
  const config = alertingSchema.parse({
    delivery: { maxAttempts: 1, initialBackoffMs: 10, maxBackoffMs: 10, timeoutMs: 1_000 },
    channels: [{ id: 'pager', kind: 'webhook', url: 'http://127.0.0.1:9/hook' }],
    rules: [{ id: 'budget', kind: 'budget_threshold', minPercent: 80, holdMs: HOUR }],
  });
  const logger = createLogger('test', 'silent');
  const crossing = budgetv1.BudgetEvent.fromPartial({ schemaVersion: 1, eventId: 'b/2025-06/80', budgetId: 'b', scope: { orgId: 'acme' }, periodKey: '2025-06', periodEndMs: T0 + 10 * 24 * HOUR, thresholdPercent: 80, spent: '80', limit: '100', currency: 'USD' });

  function started(rows: AlertHistoryEntry[], now: { at: number }, receiver: { up: boolean; got: string[] }) {
    const channel: NotificationChannel = {
      id: 'pager',
      kind: 'webhook',
      async send(notification) {
        if (!receiver.up) throw new DeliveryError('the receiver answered 503', 503);
        receiver.got.push(notification.status);
      },
    };
    const metrics = new AlertingMetrics(new Registry());
    const queue = new DeliveryQueue(config.delivery, metrics, logger);
    const history = new HistoryWriter({ append: async (entries) => void rows.push(...entries) }, logger);
    const service = new AlertingService(config, { channels: [channel], delivery: queue, history, metrics, logger, clock: () => now.at });
    return { service, queue, history };
  }

  it('sends its firing after the restart, though its crossing is not seen again, then its resolution', async () => {
    const rows: AlertHistoryEntry[] = [];
    const now = { at: T0 };
    const receiver = { up: false, got: [] as string[] };
    const first = started(rows, now, receiver);
    first.service.observeBudget(crossing);
    expect(first.service.evaluate().map((t) => [t.status, t.notify])).toEqual([['firing', true]]);
    await until(() => first.queue.pending === 0);
    now.at = T0 + 10_000;
    await first.service.close();
    await first.queue.close(100);
    await first.history.close(1_000);
    const latest = rows.at(-1);
    expect(latest).toMatchObject({ status: 'firing', notified: false, channels: ['owed:pager'] });

    receiver.up = true;
    now.at = T0 + 60_000;
    const second = started(rows, now, receiver);
    expect(second.service.restore(latest ? [latest] : [])).toBe(1);
    expect(second.service.evaluate()).toEqual([]);
    await until(() => second.queue.pending === 0 && receiver.got.length === 1);
    // Its hold ends an hour after it started firing: the resolution goes where the firing arrived.
    now.at = T0 + HOUR;
    expect(second.service.evaluate().map((t) => [t.status, t.notify])).toEqual([['resolved', true]]);
    await until(() => second.queue.pending === 0 && receiver.got.length === 2);
    expect(receiver.got).toEqual(['firing', 'resolved']);
    await second.queue.close(100);
    await second.history.close(1_000);
  });
});
