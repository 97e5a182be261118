import type { AlertRuleConfig } from '@openrouter/config';
import { Money } from '@openrouter/usage';
import { circuitsAcrossReplicas, grayReleasesAcrossReplicas, replicaCounts, replicasNeeded, type CircuitAcrossReplicas, type RouterSnapshot } from '../aggregation/router-replicas';
import type { UsageWindows } from '../aggregation/usage-windows';
import type { AlertCondition, RuleVerdict } from './alert-condition';

/** A budget threshold crossing, as the alerting service keeps it. */
export interface BudgetCrossing {
  eventId: string;
  budgetId: string;
  orgId: string;
  periodKey: string;
  periodEndMs: number;
  thresholdPercent: number;
  spent: string;
  limit: string;
  currency: string;
  receivedAtMs: number;
  /** `forecast`: the spend projected to the period's end crossed a forecast threshold; else (absent) the spend did. */
  kind?: 'spent' | 'forecast' | undefined;
  /** A forecast's projected spend (decimal text). */
  projected?: string | undefined;
  /** A forecast's time the run rate reaches the limit (epoch ms); absent when it does not within the period. */
  exceedsAtMs?: number | undefined;
  /** The budget's IANA time zone, in which a forecast's date is told. */
  timezone?: string | undefined;
}

export interface EvaluationInput {
  now: number;
  windows: UsageWindows;
  budgets: readonly BudgetCrossing[];
  /** The router replicas' last poll; undefined before the first one (or when no router is configured). */
  router: RouterSnapshot | undefined;
  /** When the service started taking usage: baselines need history. */
  observingSince: number;
}

const percent = (v: number): string => `${(v * 100).toFixed(1)}%`;

/**
 * Evaluates every rule against the current aggregates and state. Pure: no clock, no I/O. A rule
 * that cannot be evaluated (a bug, or data it cannot read) has its verdict unknown, with the
 * error: its alerts keep their state, and the other rules are evaluated as ever.
 */
export function evaluateRules(rules: readonly AlertRuleConfig[], input: EvaluationInput): RuleVerdict[] {
  return rules.map((rule) => {
    try {
      return evaluateRule(rule, input);
    } catch (error) {
      return { rule, known: false, conditions: [], error };
    }
  });
}

function evaluateRule(rule: AlertRuleConfig, input: EvaluationInput): RuleVerdict {
  const conditions: AlertCondition[] = [];
  switch (rule.kind) {
    case 'error_rate': {
      const undecided: Array<Record<string, string>> = [];
      for (const w of input.windows.attemptWindows(rule.scope, rule.windowMs, input.now)) {
        if (w.requests < rule.minRequests) {
          // Too few calls to judge, but failures still in the window: not a recovery yet.
          if (w.errors > 0) undecided.push(w.labels);
          continue;
        }
        const rate = w.errors / w.requests;
        if (rate >= rule.threshold) {
          conditions.push({ rule, labels: w.labels, value: rate, threshold: rule.threshold, summary: `${describe(w.labels)}: error rate ${percent(rate)} over ${w.requests} calls in ${minutes(rule.windowMs)} (threshold ${percent(rule.threshold)})` });
        }
      }
      return { rule, known: true, conditions, undecided };
    }
    case 'latency_p95': {
      const undecided: Array<Record<string, string>> = [];
      for (const w of input.windows.attemptWindows(rule.scope, rule.windowMs, input.now)) {
        if (w.requests < rule.minRequests || w.p95Ms === undefined) {
          if (w.requests > 0) undecided.push(w.labels);
          continue;
        }
        if (w.p95Ms >= rule.thresholdMs) {
          conditions.push({ rule, labels: w.labels, value: w.p95Ms, threshold: rule.thresholdMs, summary: `${describe(w.labels)}: p95 time to first answer about ${w.p95Ms} ms over ${w.requests} calls in ${minutes(rule.windowMs)} (threshold ${rule.thresholdMs} ms)` });
        }
      }
      return { rule, known: true, conditions, undecided };
    }
    case 'circuit_open': {
      if (!input.router) return { rule, known: false, conditions };
      const { polled, answering } = replicaCounts(input.router);
      if (answering === 0) return { rule, known: false, conditions };
      for (const c of circuitsAcrossReplicas(input.router)) {
        const needed = replicasNeeded(rule.minReplicaShare, c.reporting);
        if (c.open < needed) continue;
        const labels = { provider: c.provider, deployment: c.deployment };
        conditions.push({ rule, labels, value: c.open, threshold: needed, summary: `${describe(labels)}: circuit breaker ${breakerState(c, polled, answering)}` });
      }
      // A replica that did not answer may have any breaker open: nothing resolves until it answers.
      return { rule, known: true, conditions, incomplete: answering < polled };
    }
    case 'canary_rolled_back': {
      if (!input.router) return { rule, known: false, conditions };
      const { polled, answering } = replicaCounts(input.router);
      if (answering === 0) return { rule, known: false, conditions };
      for (const g of grayReleasesAcrossReplicas(input.router)) {
        if (g.rolledBack === 0) continue;
        const labels = { release: g.id, target: g.target, canary: g.canary };
        // Gray-release state shared in Redis reads the same on every replica; without it, each has its own.
        const where = g.rolledBack < g.reporting ? ` (on ${g.rolledBack} of ${g.reporting} router replicas)` : '';
        conditions.push({ rule, labels, value: 1, threshold: 1, summary: `Gray release ${g.id} rolled back canary ${g.canary} of ${g.target}${where}${g.reason ? `: ${g.reason}` : ''}` });
      }
      return { rule, known: true, conditions, incomplete: answering < polled };
    }
    case 'router_unreachable': {
      if (!input.router) return { rule, known: false, conditions };
      const { polled, answering } = replicaCounts(input.router);
      // Not answering for less than `forMs` (a restart, one lost poll): neither fires nor resolves.
      const undecided: Array<Record<string, string>> = [];
      for (const r of input.router.replicas) {
        if (r.status) continue;
        const labels = { router: r.address };
        const since = r.failingSinceMs ?? input.now;
        const silentMs = input.now - since;
        if (silentMs < rule.forMs) {
          undecided.push(labels);
          continue;
        }
        conditions.push({
          rule,
          labels,
          value: silentMs,
          threshold: rule.forMs,
          summary: `Router ${r.address} has not answered since ${new Date(since).toISOString()}: its circuit breakers and gray releases are not watched (${answering} of ${polled} router replicas answer)`,
        });
      }
      return { rule, known: true, conditions, undecided };
    }
    case 'budget_threshold': {
      for (const b of input.budgets) {
        // A crossing without a kind (an older producer's) is a spend crossing.
        if (!rule.kinds.includes(b.kind ?? 'spent')) continue;
        if (b.thresholdPercent < rule.minPercent) continue;
        if (input.now >= Math.min(b.periodEndMs > 0 ? b.periodEndMs : Infinity, b.receivedAtMs + rule.holdMs)) continue;
        // A forecast is an alert of its own beside the spend crossing of the same percentage; a spend
        // crossing keeps the labels it always had (its alerts, restored from history, stay the same).
        const forecast = b.kind === 'forecast';
        const labels: Record<string, string> = { org: b.orgId, budget: b.budgetId, period: b.periodKey, threshold: String(b.thresholdPercent), ...(forecast && { kind: 'forecast' }) };
        conditions.push({
          rule,
          labels,
          value: b.thresholdPercent,
          threshold: rule.minPercent,
          summary: forecast ? forecastSummary(b) : `Budget ${b.budgetId} (org ${b.orgId}) reached ${b.thresholdPercent}% in ${b.periodKey}: ${b.spent} of ${b.limit} ${b.currency}`,
        });
      }
      return { rule, known: true, conditions };
    }
    case 'spend_anomaly': {
      // A baseline needs the trailing windows to have been watched.
      if (input.now - input.observingSince < rule.windowMs * (rule.baselineWindows + 1)) return { rule, known: true, conditions };
      for (const s of input.windows.spendWindows(rule.windowMs, rule.baselineWindows, input.now)) {
        // Nothing spent in the window is no anomaly, whatever minSpend (0 would reach 0 × factor).
        if (s.current.isZero()) continue;
        // In decimal, and factor × before / windows as current × windows ≥ factor × before: no rounding on either side.
        if (s.current.lt(rule.minSpend) || s.current.times(rule.baselineWindows).lt(s.before.times(rule.factor))) continue;
        const baseline = s.before.div(rule.baselineWindows);
        conditions.push({
          rule,
          labels: s.labels,
          value: s.current.toNumber(),
          threshold: baseline.times(rule.factor).toNumber(),
          summary: `Org ${s.labels['org']} spent ${s.current.toFixed(4)} ${s.labels['currency']} in ${minutes(rule.windowMs)}, ${baseline.isZero() ? 'far above' : `${s.current.div(baseline).toFixed(1)}×`} its trailing average of ${baseline.toFixed(4)}`,
        });
      }
      return { rule, known: true, conditions };
    }
  }
}

/**
 * A forecast crossing in words, told apart from spend: "Forecast: budget acme-monthly (org acme) is
 * projected to reach 104% of its 2,500.00 USD by the end of 2026-12 on its run rate so far (2,600.00
 * projected, 1,300.00 spent; forecast threshold 100%), reaching the amount on 2026-12-23".
 */
export function forecastSummary(b: BudgetCrossing): string {
  const limit = new Money(b.limit || '0');
  const projected = new Money(b.projected || '0');
  const spent = new Money(b.spent || '0');
  // Rounded down: the projection reaches at least the percentage said.
  const percentage = limit.isZero() ? b.thresholdPercent : projected.times(100).dividedBy(limit).toDecimalPlaces(0, Money.ROUND_DOWN).toFixed();
  const reaching = spent.gte(limit) && !limit.isZero() ? ', already past the amount' : b.exceedsAtMs ? `, reaching the amount on ${dateIn(b.exceedsAtMs, b.timezone)}` : '';
  return (
    `Forecast: budget ${b.budgetId} (org ${b.orgId}) is projected to reach ${percentage}% of its ${amount(limit)} ${b.currency} by the end of ${b.periodKey} on its run rate so far ` +
    `(${amount(projected)} projected, ${amount(spent)} spent; forecast threshold ${b.thresholdPercent}%)${reaching}`
  );
}

/** An amount with two decimals (at least) and thousands separators: "2,500.00". */
function amount(value: Money): string {
  // Under a cent, two places would read 0.00 (a per-key budget of 0.005): the exact amount instead.
  if (!value.isZero() && value.abs().lt('0.01')) return value.toFixed();
  const text = value.decimalPlaces() > 2 ? value.toDecimalPlaces(2, Money.ROUND_HALF_UP).toFixed(2) : value.toFixed(2);
  const [whole = '0', fraction = '00'] = text.split('.');
  return `${whole.replace(/\B(?=(\d{3})+(?!\d))/g, ',')}.${fraction}`;
}

/** The calendar date of `atMs` in the budget's time zone (UTC when unknown): "2026-12-23". */
function dateIn(atMs: number, timeZone: string | undefined): string {
  try {
    return new Intl.DateTimeFormat('en-CA', { timeZone: timeZone || 'UTC', year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date(atMs));
  } catch {
    return new Date(atMs).toISOString().slice(0, 10);
  }
}

/** Where a deployment's breaker is open: with one router polled, as it always read; with several, on how many of how many. */
function breakerState(c: CircuitAcrossReplicas, polled: number, answering: number): string {
  if (polled === 1) return c.probing > 0 ? 'open, probing' : 'open';
  const probing = c.probing > 0 ? ` (${c.probing} probing)` : '';
  const silent = answering < polled ? `, ${polled - answering} more not answering` : '';
  return `open on ${c.open} of ${c.reporting} router replicas${probing}${silent}`;
}

function describe(labels: Record<string, string>): string {
  if (labels['deployment']) return `Deployment ${labels['deployment']} (${labels['provider']})`;
  if (labels['provider']) return `Provider ${labels['provider']}`;
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
}

function minutes(ms: number): string {
  return ms % 60_000 === 0 ? `${ms / 60_000} min` : `${Math.round(ms / 1000)} s`;
}
