import type { AlertRuleConfig } from '@openrouter/config';
import { fingerprintOf, type AlertCondition, type RuleVerdict } from './alert-condition';

export type AlertStatus = 'firing' | 'resolved';

/**
 * One alert changing state; `notify` is false when the rule's cooldown holds it back (a firing
 * whose `notify` is true is due to its channels; whether it reached them is the delivery's to say).
 */
export interface AlertTransition {
  fingerprint: string;
  rule: AlertRuleConfig;
  status: AlertStatus;
  labels: Record<string, string>;
  value: number;
  threshold: number;
  summary: string;
  startedAt: number;
  at: number;
  notify: boolean;
}

interface ActiveAlert {
  condition: AlertCondition;
  startedAt: number;
  /** Whether this episode's firing is due to its channels, not held back (only then is its resolution). */
  notified: boolean;
  /**
   * An alert restored from history after a restart is not resolved before this instant unless
   * its rule sees it again: until then the service has not watched enough to tell it has ended.
   */
  heldUntil?: number;
  /** Restored, it holds until `heldUntil` whether its rule sees it again or not (see `RestoredAlert.holds`). */
  holds?: boolean;
}

/** An alert that was firing when the service last stopped, as its history tells it. */
export interface RestoredAlert {
  condition: AlertCondition;
  startedAt: number;
  /** Whether its firing was due to its channels; false when a cooldown held it back. */
  due: boolean;
  /** When its cooldown started (its firing reached a channel, or was refused there); undefined when it did not. */
  notifiedAt: number | undefined;
  /** Not resolved before this instant unless the rule sees it again (see `ActiveAlert.heldUntil`). */
  heldUntil: number;
  /**
   * Its rule does not see it again after the restart (a budget crossing, taken before it), and it
   * holds until `heldUntil` all the same, as the rule would have held it: held back by a cooldown,
   * it is due once the cooldown ends, as it would have been without the restart.
   */
  holds: boolean;
}

/**
 * De-duplicates alerts: an alert (rule + group labels) notifies once when it starts firing and
 * once when it resolves, however many evaluations it holds through. After a notification reached
 * a channel (`notified`) the same alert stays quiet for the rule's cooldown: a flapping alert that
 * fires again within it is held back, and notified when the cooldown ends if it still fires. The
 * cooldown counts from the delivery, not from when the notification was made: one that never got
 * through must not hold back the next.
 */
export class AlertTracker {
  private readonly active = new Map<string, ActiveAlert>();
  private readonly lastNotified = new Map<string, number>();
  /** The longest cooldown of the rules seen: a delivery older than it holds nothing back any more. */
  private longestCooldownMs = 0;

  /** Applies one evaluation round; returns the transitions, notified or held back. */
  apply(verdicts: readonly RuleVerdict[], now: number): AlertTransition[] {
    const transitions: AlertTransition[] = [];
    for (const verdict of verdicts) {
      if (!verdict.known) continue;
      this.longestCooldownMs = Math.max(this.longestCooldownMs, verdict.rule.cooldownMs);
      const holding = new Set<string>((verdict.undecided ?? []).map((labels) => fingerprintOf(verdict.rule.id, labels)));
      for (const condition of verdict.conditions) {
        const fingerprint = fingerprintOf(condition.rule.id, condition.labels);
        holding.add(fingerprint);
        const current = this.active.get(fingerprint);
        if (current) {
          current.condition = condition;
          current.heldUntil = undefined;
          current.holds = undefined;
          if (!current.notified && this.outOfCooldown(fingerprint, condition.rule, now)) {
            current.notified = true;
            transitions.push(this.transition(fingerprint, current, 'firing', now, true));
          }
          continue;
        }
        const notify = this.outOfCooldown(fingerprint, condition.rule, now);
        const alert: ActiveAlert = { condition, startedAt: now, notified: notify };
        this.active.set(fingerprint, alert);
        transitions.push(this.transition(fingerprint, alert, 'firing', now, notify));
      }
      if (verdict.incomplete) continue;
      for (const [fingerprint, alert] of this.active) {
        if (alert.condition.rule.id !== verdict.rule.id || holding.has(fingerprint)) continue;
        if (alert.heldUntil !== undefined && now < alert.heldUntil) {
          // Restored and holding though its rule does not see it: due once a cooldown that held it back ends.
          if (alert.holds && !alert.notified && this.outOfCooldown(fingerprint, alert.condition.rule, now)) {
            alert.notified = true;
            transitions.push(this.transition(fingerprint, alert, 'firing', now, true));
          }
          continue;
        }
        this.active.delete(fingerprint);
        transitions.push(this.transition(fingerprint, alert, 'resolved', now, alert.notified));
      }
    }
    this.forgetOldCooldowns(now);
    return transitions;
  }

  /**
   * Takes back the alerts that were firing when the service stopped: one that still holds is not
   * notified again (one held back by a cooldown is, once the cooldown ends), and one that has
   * ended is resolved, notified as its firing was.
   */
  restore(alerts: readonly RestoredAlert[]): void {
    for (const a of alerts) {
      const fingerprint = fingerprintOf(a.condition.rule.id, a.condition.labels);
      if (this.active.has(fingerprint)) continue;
      this.active.set(fingerprint, { condition: a.condition, startedAt: a.startedAt, notified: a.due, heldUntil: a.heldUntil, holds: a.holds });
      if (a.notifiedAt !== undefined) this.notified(fingerprint, a.notifiedAt);
    }
  }

  /** A firing notification of the alert reached a channel (or had none to go to) at `at`: its cooldown starts. */
  notified(fingerprint: string, at: number): void {
    this.lastNotified.set(fingerprint, Math.max(at, this.lastNotified.get(fingerprint) ?? at));
  }

  /** Alerts firing now. */
  firing(): Array<{ fingerprint: string; rule: AlertRuleConfig; labels: Record<string, string>; startedAt: number }> {
    return [...this.active].map(([fingerprint, a]) => ({ fingerprint, rule: a.condition.rule, labels: a.condition.labels, startedAt: a.startedAt }));
  }

  private outOfCooldown(fingerprint: string, rule: AlertRuleConfig, now: number): boolean {
    const last = this.lastNotified.get(fingerprint);
    return last === undefined || now - last >= rule.cooldownMs;
  }

  private transition(fingerprint: string, alert: ActiveAlert, status: AlertStatus, now: number, notify: boolean): AlertTransition {
    const c = alert.condition;
    return { fingerprint, rule: c.rule, status, labels: c.labels, value: c.value, threshold: c.threshold, summary: c.summary, startedAt: alert.startedAt, at: now, notify };
  }

  private forgetOldCooldowns(now: number): void {
    if (this.lastNotified.size < 10_000) return;
    const expiredAfterMs = Math.max(24 * 60 * 60_000, this.longestCooldownMs);
    for (const [fingerprint, at] of this.lastNotified) if (!this.active.has(fingerprint) && now - at > expiredAfterMs) this.lastNotified.delete(fingerprint);
  }
}
