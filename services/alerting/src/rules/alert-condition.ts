import type { AlertRuleConfig } from '@openrouter/config';

/** A rule's verdict for one group (a provider, a deployment, a budget, an organisation): it holds now. */
export interface AlertCondition {
  rule: AlertRuleConfig;
  /** What the alert is about; with the rule id, its identity. */
  labels: Record<string, string>;
  value: number;
  threshold: number;
  summary: string;
}

/** Every condition holding for one rule, or `known: false` when its data is unavailable (keep state). */
export interface RuleVerdict {
  rule: AlertRuleConfig;
  known: boolean;
  conditions: AlertCondition[];
  /**
   * Groups seen with too few calls to judge (below the rule's `minRequests`): an alert of theirs
   * neither fires nor resolves. An outage drains its own traffic (the router's breaker sends it
   * elsewhere), which must not read as recovery.
   */
  undecided?: Array<Record<string, string>>;
  /**
   * Part of the rule's data is missing (a router replica did not answer): its conditions fire, but
   * none of its alerts resolves, since what is missing may be what holds them.
   */
  incomplete?: boolean;
  /** Why the rule could not be evaluated (`known` is then false). */
  error?: unknown;
}

/** The alert's stable id: rule and group labels, in a fixed order. */
export function fingerprintOf(ruleId: string, labels: Record<string, string>): string {
  const parts = Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`);
  return [ruleId, ...parts].join('|');
}
