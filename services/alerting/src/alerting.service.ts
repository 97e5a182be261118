import { randomUUID } from 'node:crypto';
import type { AlertingConfig, AlertRuleConfig } from '@openrouter/config';
import { budgetv1, usagev1 } from '@openrouter/contracts';
import type { AlertHistoryEntry, AlertingMetrics, Logger } from '@openrouter/observability';
import { readUsageMessage, type UsageMessage } from '@openrouter/usage';
import { RecentEventIds } from './aggregation/recent-event-ids';
import type { RouterSnapshot } from './aggregation/router-replicas';
import { UsageWindows } from './aggregation/usage-windows';
import type { AlertNotification, NotificationChannel } from './channels/notification';
import type { DeliveryListener, DeliveryQueue } from './delivery/delivery-queue';
import { FiringNotices, readFiringEntry, type NoticeChange } from './delivery/firing-notices';
import type { HistoryWriter } from './delivery/history-writer';
import { fingerprintOf } from './rules/alert-condition';
import { AlertTracker, type AlertTransition, type RestoredAlert } from './rules/alert-tracker';
import { evaluateRules, type BudgetCrossing } from './rules/rule-evaluator';

/**
 * Error kinds that say a provider or deployment is unhealthy (not the caller's fault). A call's
 * `auth_failed` or `not_found` is the provider refusing the gateway's own credentials or not
 * knowing the deployment's model (the caller's own are refused before any call is made).
 */
/** How far ahead of this replica's clock a usage event's time is taken as it is. */
const FUTURE_SKEW_MS = 60_000;
const PROVIDER_FAILURES = new Set(['upstream_error', 'unavailable', 'timeout', 'overloaded', 'rate_limited', 'internal', 'auth_failed', 'not_found']);

/** Usage event ids remembered to skip copies, at most (about 90 bytes each: some 22 MB). */
const RECENT_EVENT_IDS = 250_000;

/** How often the cooldowns kept for the next active replica are pruned, while this one stays active (it prunes them as it becomes active). */
export const COOLDOWN_PRUNE_MS = 60 * 60_000;

/** A budget event's amount: decimal text (budget.proto). */
const AMOUNT = /^\d+(\.\d+)?$/;

export interface AlertingServiceDependencies {
  channels: readonly NotificationChannel[];
  delivery: DeliveryQueue;
  history: HistoryWriter;
  metrics: AlertingMetrics;
  logger: Logger;
  /** The router replicas' last status, when they are polled; absent when no router is configured. */
  router?: () => RouterSnapshot | undefined;
  /** When a configured budget's period with this key (the one holding `atMs`) ends; undefined when unknown. */
  budgetPeriodEnd?: (budgetId: string, periodKey: string, atMs: number) => number | undefined;
  clock?: () => number;
  /** False on a replica that is no longer the active one: it evaluates nothing more (another may be notifying). */
  mayAct?: () => boolean;
  /**
   * Where each alert's cooldown start is kept for the next active replica (with Redis); without it,
   * cooldowns live in memory. Those past their retention are pruned every `COOLDOWN_PRUNE_MS`.
   */
  cooldowns?: { saveCooldown(fingerprint: string, at: number): Promise<void>; pruneCooldowns(): Promise<number> };
}

/** One alert's notification to one channel. */
interface Send {
  alert: AlertTransition;
  channel: NotificationChannel;
}

/**
 * Keeps windowed aggregates of usage and the budget crossings seen, evaluates the configured
 * rules on a timer, and turns alert transitions into grouped notifications (delivered in the
 * background) and history entries. Taking events never waits on a channel or the store. An alert
 * counts as notified on a channel once a delivery there succeeded (`FiringNotices`): one given up
 * or dropped is sent again in the next round, and the history says so, for a restart to do the same.
 */
export class AlertingService {
  private readonly windows: UsageWindows;
  private readonly recentEvents: RecentEventIds;
  private readonly tracker = new AlertTracker();
  private readonly budgets = new Map<string, BudgetCrossing>();
  private readonly notices = new FiringNotices();
  private readonly clock: () => number;
  private readonly startedAt: number;
  /** When the kept cooldowns were last pruned (as it started, they were: `RedisAlertingState.cooldowns`). */
  private cooldownsPrunedAt: number;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly config: AlertingConfig,
    private readonly deps: AlertingServiceDependencies,
  ) {
    this.clock = deps.clock ?? Date.now;
    this.startedAt = this.clock();
    this.cooldownsPrunedAt = this.startedAt;
    this.windows = new UsageWindows(config.bucketMs, retentionOf(config));
    this.recentEvents = new RecentEventIds(RECENT_EVENT_IDS, retentionOf(config));
    deps.delivery.listen(this.settled);
  }

  /** Usage messages from the bus; poison messages are skipped (billing dead-letters them). */
  readonly takeUsage = async (messages: UsageMessage[]): Promise<void> => {
    for (const message of messages) {
      // A message its source could not read (an undecodable batch) is billing's dead letter.
      const decoded = readUsageMessage(message);
      if (decoded.ok) this.observeUsage(decoded.event);
    }
    this.deps.metrics.signals.inc({ kind: 'usage' }, messages.length);
  };

  /** Counts an event's calls and spend; a copy of one already counted (same id) is skipped, as billing does. */
  observeUsage(event: usagev1.UsageEvent): void {
    const now = this.clock();
    if (event.eventId !== '' && this.recentEvents.seen(event.eventId, now)) return;
    // An event stamped more than a minute ahead of this clock (a producer's clock runs fast) counts
    // now: kept in a bucket of its own time, it would be left out of every window until then, and
    // held in memory as long.
    const stamped = event.completedAtMs || now;
    const at = stamped > now + FUTURE_SKEW_MS ? now : stamped;
    for (const attempt of event.attempts) {
      if (!attempt.provider || attempt.status === usagev1.AttemptStatus.ATTEMPT_STATUS_CANCELLED) continue;
      const failed = attempt.status === usagev1.AttemptStatus.ATTEMPT_STATUS_ERROR && PROVIDER_FAILURES.has(attempt.errorKind);
      this.windows.recordAttempt(attempt.provider, attempt.deployment, at, failed, attempt.latencyMs);
    }
    // A valid event's cost is a decimal text (readUsageMessage checked it).
    if (event.tenant?.orgId && event.cost?.amount) this.windows.recordSpend(event.tenant.orgId, event.cost.currency || 'USD', at, event.cost.amount);
  }

  /** A budget event from the bus (protobuf, as on Kafka). */
  readonly takeBudget = (value: Buffer): void => {
    try {
      this.observeBudget(budgetv1.BudgetEvent.decode(value));
    } catch (error) {
      this.deps.logger.warn({ err: error }, 'undecodable budget event skipped');
    }
  };

  /**
   * Keeps a budget crossing. Budget events are delivered at least once, and a repeat is the same
   * event (`event_id` is budget/period/threshold, budget.proto): a crossing already kept keeps its
   * first receipt, so a copy neither restarts the rule's hold nor brings back an alert that has
   * resolved. (The hold counts from receipt rather than `occurred_at_ms`: that is the publisher's
   * clock, and an event read late would otherwise be past its hold before it was ever seen.)
   */
  observeBudget(event: budgetv1.BudgetEvent): void {
    // 1: spend crossings; 2: any kind, read from `kind` (forecasts are 2 alone, budget.proto).
    if (event.schemaVersion !== 1 && event.schemaVersion !== 2) {
      this.deps.logger.warn({ schemaVersion: event.schemaVersion, eventId: event.eventId }, 'budget event of an unknown schema version skipped');
      return;
    }
    const kind = budgetKindOf(event);
    if (!kind) {
      this.deps.logger.warn({ kind: event.kind, eventId: event.eventId }, 'budget event of an unknown kind skipped');
      return;
    }
    // Its amounts go into the alert's summary, worked out in decimal at every round: one that is not
    // decimal text would fail the rule's evaluation for as long as the crossing is kept.
    const amounts: Array<[string, string]> = [
      ['spent', event.spent],
      ['limit', event.limit],
    ];
    // A forecast without its projection (absent in budget.proto) reads as projecting 0.
    if (kind === 'forecast' && event.projected) amounts.push(['projected', event.projected]);
    const unreadable = amounts.filter(([, amount]) => !AMOUNT.test(amount)).map(([field]) => field);
    if (unreadable.length > 0) {
      this.deps.logger.warn({ eventId: event.eventId, budgetId: event.budgetId, fields: unreadable }, 'budget event with an amount that is not a decimal skipped');
      return;
    }
    this.deps.metrics.signals.inc({ kind: 'budget' });
    // An event without its id (an older or foreign producer) is known by what the id is made of.
    const id = event.eventId !== '' ? event.eventId : `${event.budgetId}/${event.periodKey}/${kind === 'forecast' ? 'forecast-' : ''}${event.thresholdPercent}`;
    if (this.budgets.has(id)) return;
    this.budgets.set(id, {
      eventId: event.eventId,
      budgetId: event.budgetId,
      orgId: event.scope?.orgId ?? '',
      periodKey: event.periodKey,
      periodEndMs: event.periodEndMs,
      thresholdPercent: event.thresholdPercent,
      spent: event.spent,
      limit: event.limit,
      currency: event.currency,
      receivedAtMs: this.clock(),
      ...(kind === 'forecast' && { kind, projected: event.projected ?? '', exceedsAtMs: event.exceedsAtMs, timezone: event.timezone }),
    });
  }

  /**
   * Takes back the alerts that were firing when the service last stopped (each alert's latest
   * history entry), so a restart neither notifies them again nor leaves them open for good. Those
   * of rules no longer configured (or now of another kind), and those only the router's status
   * could end when no router is polled, are left alone. Returns how many. An entry's `channels`
   * are those its firing reached (or was on its way to, when `notified`), as `refused:<id>` those
   * that refused it for good, and as `owed:<id>` those it is owed: a channel not named as reached
   * or refusing is sent the firing again, a refusing one is not (as without the restart), and only
   * those it reached are sent its resolution.
   */
  restore(entries: readonly AlertHistoryEntry[]): number {
    const rules = new Map(this.config.rules.map((r) => [r.id, r]));
    const restored: RestoredAlert[] = [];
    for (const e of entries) {
      const rule = rules.get(e.ruleId);
      const at = Date.parse(e.at);
      const startedAt = Date.parse(e.startedAt);
      if (!rule || rule.kind !== e.ruleKind || e.status !== 'firing' || !Number.isFinite(at) || !Number.isFinite(startedAt)) continue;
      if ((rule.kind === 'circuit_open' || rule.kind === 'canary_rolled_back' || rule.kind === 'router_unreachable') && !this.deps.router) continue;
      const condition = { rule, labels: e.labels, value: e.value, threshold: e.threshold, summary: e.summary };
      // Due unless a cooldown held it back: notified, or a delivery of it failed (an entry that
      // names the channels it reached, refused it or are owed it). A refusal, like a delivery,
      // started its cooldown; a firing that reached no channel started none.
      const { due, settledSomewhere } = readFiringEntry(e);
      // A budget crossing is not seen again: its alert holds as the rule held the crossing.
      const holds = rule.kind === 'budget_threshold';
      restored.push({ condition, startedAt, due, notifiedAt: settledSomewhere ? at : undefined, heldUntil: this.heldUntil(rule, startedAt, e.labels), holds });
      if (due) this.notices.restore({ fingerprint: fingerprintOf(rule.id, e.labels), ...condition, status: 'firing', startedAt, at, notify: true }, e.channels, !e.notified);
    }
    this.tracker.restore(restored);
    return restored.length;
  }

  /** When alerts last had a notification reach a channel, as kept by the previous active replica: their cooldowns hold on. */
  restoreCooldowns(cooldowns: ReadonlyMap<string, number>): void {
    for (const [fingerprint, at] of cooldowns) this.tracker.notified(fingerprint, at);
  }

  /**
   * Queues a notification a replica that stopped handed over (through Redis), after `restore`;
   * false when its channel is no longer configured. The channel of a firing in it is not owed that
   * firing again from the history (see `FiringNotices.handedOver`): a hand-over is never also sent
   * again as owed. `onFinished` is called as `DeliveryQueue.enqueue` says.
   */
  deliverHandedOver(channelId: string, notification: AlertNotification, onFinished: () => void): boolean {
    const channel = this.deps.channels.find((c) => c.id === channelId);
    if (!channel) return false;
    if (notification.status === 'firing') for (const alert of notification.alerts) this.notices.handedOver(alert, channelId);
    this.deps.delivery.enqueue(channel, notification, onFinished);
    return true;
  }

  /** Until when a restored alert of `rule` cannot be told to have ended, unless its rule sees it again. */
  private heldUntil(rule: AlertRuleConfig, startedAt: number, labels: Record<string, string>): number {
    switch (rule.kind) {
      case 'error_rate':
      case 'latency_p95':
        // Its window, watched whole since this start.
        return this.startedAt + rule.windowMs;
      case 'spend_anomaly':
        return this.startedAt + rule.windowMs * (rule.baselineWindows + 1);
      case 'budget_threshold': {
        // Its crossing is not seen again: as the rule holds a crossing, until its period ends
        // (when the budget is still configured) or `holdMs` after it started, whichever is first. One of
        // a kind the rule no longer takes (`kinds` narrowed) holds the same, then resolves where it went.
        const periodEnd = this.deps.budgetPeriodEnd?.(labels['budget'] ?? '', labels['period'] ?? '', startedAt);
        return Math.min(startedAt + rule.holdMs, periodEnd ?? Infinity);
      }
      case 'circuit_open':
      case 'canary_rolled_back':
      case 'router_unreachable':
        // Told by the router's next status (of every replica).
        return this.startedAt;
    }
  }

  start(): void {
    const tick = (): void => {
      try {
        this.evaluate();
      } catch (error) {
        this.deps.logger.error({ err: error }, 'alert evaluation failed');
      }
      this.timer = setTimeout(tick, this.config.evaluateIntervalMs);
      this.timer.unref();
    };
    this.timer = setTimeout(tick, this.config.evaluateIntervalMs);
    this.timer.unref();
  }

  /** One evaluation round: rules → transitions → notifications and history. */
  evaluate(): AlertTransition[] {
    if (this.deps.mayAct && !this.deps.mayAct()) return [];
    const now = this.clock();
    this.windows.prune(now);
    for (const [id, b] of this.budgets) if (b.periodEndMs > 0 && now > b.periodEndMs + 60_000) this.budgets.delete(id);
    const verdicts = evaluateRules(this.config.rules, { now, windows: this.windows, budgets: [...this.budgets.values()], router: this.deps.router?.(), observingSince: this.startedAt });
    for (const v of verdicts) if (v.error !== undefined) this.deps.logger.error({ err: v.error, rule: v.rule.id }, 'alert rule could not be evaluated: its alerts keep their state');
    const transitions = this.tracker.apply(verdicts, now);
    this.deps.metrics.evaluations.inc();
    this.deps.metrics.firing.reset();
    for (const a of this.tracker.firing()) this.deps.metrics.firing.inc({ rule: a.rule.id, rule_kind: a.rule.kind });
    // Where each resolution goes: the channels its firing reached (or is on its way to).
    const resolutions = new Map(transitions.filter((t) => t.status === 'resolved').map((t) => [t, this.notices.resolve(t)]));
    for (const t of transitions) if (t.status === 'firing' && t.notify) this.due(t, now);
    // New firings, and the firings and resolutions whose delivery to a channel was given up or dropped since the last round.
    const sends = this.sendsOf(this.notices.owed((rule) => this.channelIdsOf(rule)));
    for (const [alert, channels] of resolutions) sends.push(...this.sendsOf(channels.map((channel) => ({ alert, channel }))));
    this.deps.history.append(transitions.map((t) => this.historyEntry(t, { notified: t.notify, channels: resolutions.get(t) ?? (t.notify ? this.notices.recorded(t, true) : []) })));
    for (const t of transitions) {
      if (!t.notify) this.deps.metrics.suppressed.inc({ rule_kind: t.rule.kind });
      this.deps.logger.info({ alert: t.fingerprint, rule: t.rule.id, status: t.status, notify: t.notify, labels: t.labels, value: t.value }, t.status === 'firing' ? 'alert firing' : 'alert resolved');
    }
    this.notify(sends, now);
    this.pruneCooldowns(now);
    return transitions;
  }

  /** Once every `COOLDOWN_PRUNE_MS`, in the background: the kept cooldowns past their retention are forgotten. */
  private pruneCooldowns(now: number): void {
    const kept = this.deps.cooldowns;
    if (!kept || now - this.cooldownsPrunedAt < COOLDOWN_PRUNE_MS) return;
    this.cooldownsPrunedAt = now;
    kept.pruneCooldowns().then(
      (removed) => {
        if (removed > 0) this.deps.logger.debug({ removed }, 'alert cooldowns past their retention pruned');
      },
      (error: unknown) => this.deps.logger.warn({ err: error }, 'alert cooldowns past their retention could not be pruned: tried again in an hour'),
    );
  }

  /**
   * Stops evaluating. The resolutions still owed to channels (given up or dropped since the last
   * round) are queued once more, so the delivery queue's shutdown sends or hands them over.
   */
  async close(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.notify(this.sendsOf(this.notices.owedResolutions((rule) => this.channelIdsOf(rule))), this.clock());
    // A replica that stops (shutdown, or standing by after losing the lease) no longer shows alerts
    // firing: the active one does, and a dashboard summing replicas would count them twice.
    this.deps.metrics.firing.reset();
  }

  /** A firing is due to its channels; with none to go to, nothing is delivered, and its cooldown starts now. */
  private due(t: AlertTransition, now: number): void {
    this.notices.due(t);
    if (this.channelIdsOf(t.rule).length === 0) this.startCooldown(t.fingerprint, now);
  }

  /** The alert's cooldown starts at `at`, here and, when kept, for the next active replica. */
  private startCooldown(fingerprint: string, at: number): void {
    this.tracker.notified(fingerprint, at);
    this.deps.cooldowns?.saveCooldown(fingerprint, at).catch((error: unknown) => this.deps.logger.error({ err: error, alert: fingerprint }, 'alert cooldown could not be kept: the next active replica may notify it again'));
  }

  /** Sends to channels by id; a channel no longer configured is left out. */
  private sendsOf(targets: ReadonlyArray<{ alert: AlertTransition; channel: string }>): Send[] {
    const byId = new Map(this.deps.channels.map((c) => [c.id, c]));
    return targets.flatMap(({ alert, channel }) => {
      const found = byId.get(channel);
      return found ? [{ alert, channel: found }] : [];
    });
  }

  /** Groups one round's sends per rule, status and channel into one notification each. */
  private notify(sends: readonly Send[], now: number): void {
    const groups = new Map<string, Send[]>();
    for (const send of sends) {
      const key = `${send.alert.rule.id}\u0000${send.alert.status}\u0000${send.channel.id}`;
      groups.set(key, [...(groups.get(key) ?? []), send]);
    }
    for (const group of groups.values()) {
      const first = group[0];
      if (!first) continue;
      const { alert, channel } = first;
      const notification: AlertNotification = { id: randomUUID(), status: alert.status, ruleId: alert.rule.id, ruleKind: alert.rule.kind, severity: alert.rule.severity, alerts: group.map((s) => s.alert), sentAt: now };
      this.deps.delivery.enqueue(channel, notification);
    }
  }

  /**
   * A delivery ended. For a firing: on success (or a permanent refusal, which sending again would
   * not change) the alert's cooldown starts; when the history last said otherwise than what the
   * channels now have, a new entry says so: a restart then sends the firing again where it was
   * given up or dropped (at shutdown too), not where it was refused, and the resolution only where
   * it arrived.
   */
  private readonly settled: DeliveryListener = (channel, notification, outcome) => {
    // On its way with the next active replica, which tells its own outcome: nothing changes here.
    if (outcome === 'handed_over') return;
    if (notification.status === 'resolved') {
      // A resolution that never arrived would leave the receiver showing the alert firing for good.
      if (outcome === 'given_up' || outcome === 'dropped') for (const alert of notification.alerts) this.notices.resolutionMissed(alert, channel.id);
      return;
    }
    const now = this.clock();
    for (const alert of notification.alerts) {
      if (outcome === 'delivered' || outcome === 'refused') this.startCooldown(alert.fingerprint, now);
      const change = this.notices.settle(alert, channel.id, outcome, this.channelIdsOf(alert.rule));
      if (change) this.deps.history.append([this.deliveryEntry(alert, change, now)]);
    }
  };

  /**
   * The history entry of a change in where a firing arrived (the channels it reached, and those that
   * refused it): later than the alert's previous entry, so a restart reads it as the latest.
   */
  private deliveryEntry(alert: AlertTransition, change: NoticeChange, now: number): AlertHistoryEntry {
    return this.historyEntry({ ...alert, at: this.notices.entryTime(alert, now) }, { notified: change === 'whole', channels: this.notices.recorded(alert, false, this.channelIdsOf(alert.rule)) });
  }

  /** The ids of the channels a rule notifies: those it names, or every channel. */
  private channelIdsOf(rule: AlertRuleConfig): string[] {
    const ids = this.deps.channels.map((c) => c.id);
    return rule.channels.length === 0 ? ids : ids.filter((id) => rule.channels.includes(id));
  }

  private historyEntry(t: AlertTransition, delivery: Pick<AlertHistoryEntry, 'notified' | 'channels'>): AlertHistoryEntry {
    return {
      at: new Date(t.at).toISOString(),
      alertId: t.fingerprint,
      ruleId: t.rule.id,
      ruleKind: t.rule.kind,
      severity: t.rule.severity,
      status: t.status,
      labels: t.labels,
      value: t.value,
      threshold: t.threshold,
      summary: t.summary,
      startedAt: new Date(t.startedAt).toISOString(),
      ...delivery,
    };
  }
}

/** Long enough for the widest window any rule looks at (spend baselines included). */
function retentionOf(config: AlertingConfig): number {
  let longest = 60 * 60_000;
  for (const rule of config.rules) {
    if (rule.kind === 'error_rate' || rule.kind === 'latency_p95') longest = Math.max(longest, rule.windowMs);
    if (rule.kind === 'spend_anomaly') longest = Math.max(longest, rule.windowMs * (rule.baselineWindows + 1));
  }
  return longest + config.bucketMs;
}

/** What a budget event says crossed its threshold; undefined for a kind this service does not know (a newer producer's). */
function budgetKindOf(event: budgetv1.BudgetEvent): 'spent' | 'forecast' | undefined {
  switch (event.kind) {
    case undefined:
    case budgetv1.BudgetEventKind.BUDGET_EVENT_KIND_UNSPECIFIED:
    case budgetv1.BudgetEventKind.BUDGET_EVENT_KIND_SPENT:
      return 'spent';
    case budgetv1.BudgetEventKind.BUDGET_EVENT_KIND_FORECAST:
      return 'forecast';
    default:
      return undefined;
  }
}
