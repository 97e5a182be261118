import type { AlertRuleConfig } from '@openrouter/config';
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

/** Evaluates every rule against the current aggregates and state. Pure: no clock, no I/O. */
export function evaluateRules(rules: readonly AlertRuleConfig[], input: EvaluationInput): RuleVerdict[] {
  return rules.map((rule) => evaluateRule(rule, input));
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
        if (b.thresholdPercent < rule.minPercent) continue;
        if (input.now >= Math.min(b.periodEndMs > 0 ? b.periodEndMs : Infinity, b.receivedAtMs + rule.holdMs)) continue;
        const labels = { org: b.orgId, budget: b.budgetId, period: b.periodKey, threshold: String(b.thresholdPercent) };
        conditions.push({
          rule,
          labels,
          value: b.thresholdPercent,
          threshold: rule.minPercent,
          summary: `Budget ${b.budgetId} (org ${b.orgId}) reached ${b.thresholdPercent}% in ${b.periodKey}: ${b.spent} of ${b.limit} ${b.currency}`,
        });
      }
      return { rule, known: true, conditions };
    }
    case 'spend_anomaly': {
      // A baseline needs the trailing windows to have been watched.
      if (input.now - input.observingSince < rule.windowMs * (rule.baselineWindows + 1)) return { rule, known: true, conditions };
      for (const s of input.windows.spendWindows(rule.windowMs, rule.baselineWindows, input.now)) {
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
