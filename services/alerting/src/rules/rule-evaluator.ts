import type { AlertRuleConfig } from '@openrouter/config';
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

/** The router's view of deployments and gray releases, as last polled. */
export interface RouterSnapshot {
  circuits: Array<{ provider: string; deployment: string; state: string }>;
  grayReleases: Array<{ id: string; target: string; canary: string; status: string; rolledBackAtMs: number; reason: string }>;
}

export interface EvaluationInput {
  now: number;
  windows: UsageWindows;
  budgets: readonly BudgetCrossing[];
  /** Undefined when the router has not been reached (or is not configured). */
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
      for (const c of input.router.circuits) {
        // Half-open is still down: the breaker lets one probe through and has not seen it succeed.
        if (c.state !== 'open' && c.state !== 'half_open') continue;
        const labels = { provider: c.provider, deployment: c.deployment };
        conditions.push({ rule, labels, value: 1, threshold: 1, summary: `${describe(labels)}: circuit breaker ${c.state === 'open' ? 'open' : 'open, probing'}` });
      }
      return { rule, known: true, conditions };
    }
    case 'canary_rolled_back': {
      if (!input.router) return { rule, known: false, conditions };
      for (const g of input.router.grayReleases) {
        if (g.status !== 'rolled_back') continue;
        const labels = { release: g.id, target: g.target, canary: g.canary };
        conditions.push({ rule, labels, value: 1, threshold: 1, summary: `Gray release ${g.id} rolled back canary ${g.canary} of ${g.target}${g.reason ? `: ${g.reason}` : ''}` });
      }
      return { rule, known: true, conditions };
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
        if (s.current < rule.minSpend || s.current < rule.factor * s.baseline) continue;
        conditions.push({
          rule,
          labels: s.labels,
          value: s.current,
          threshold: rule.factor * s.baseline,
          summary: `Org ${s.labels['org']} spent ${s.current.toFixed(4)} ${s.labels['currency']} in ${minutes(rule.windowMs)}, ${s.baseline > 0 ? `${(s.current / s.baseline).toFixed(1)}×` : 'far above'} its trailing average of ${s.baseline.toFixed(4)}`,
        });
      }
      return { rule, known: true, conditions };
    }
  }
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
