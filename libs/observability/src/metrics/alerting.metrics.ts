import { Counter, Gauge, type Registry } from 'prom-client';
import { label } from './metrics-registry';

/** The alerting service: notifications, their delivery, and alerts firing now. */
export class AlertingMetrics {
  readonly sent: Counter<'rule_kind' | 'channel' | 'status'>;
  readonly deliveryFailures: Counter<'channel'>;
  readonly dropped: Counter<'channel'>;
  readonly suppressed: Counter<'rule_kind'>;
  readonly firing: Gauge<'rule' | 'rule_kind'>;
  readonly pending: Gauge;
  readonly evaluations: Counter;
  readonly signals: Counter<'kind'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.sent = new Counter({ name: 'openrouter_alerts_sent_total', help: 'Alert notifications delivered, by rule kind, channel and status (firing, resolved).', labelNames: ['rule_kind', 'channel', 'status'], registers });
    this.deliveryFailures = new Counter({ name: 'openrouter_alert_delivery_failures_total', help: 'Failed delivery attempts of alert notifications (each is retried with backoff).', labelNames: ['channel'], registers });
    this.dropped = new Counter({ name: 'openrouter_alert_deliveries_dropped_total', help: 'Notifications given up after the last retry or pushed out of a full queue.', labelNames: ['channel'], registers });
    this.suppressed = new Counter({ name: 'openrouter_alerts_suppressed_total', help: 'Notifications held back by a rule cooldown.', labelNames: ['rule_kind'], registers });
    this.firing = new Gauge({ name: 'openrouter_alerts_firing', help: 'Alerts firing now, by rule.', labelNames: ['rule', 'rule_kind'], registers });
    this.pending = new Gauge({ name: 'openrouter_alert_deliveries_pending', help: 'Notifications waiting for delivery or a retry.', registers });
    this.evaluations = new Counter({ name: 'openrouter_alert_evaluations_total', help: 'Rule evaluation rounds.', registers });
    this.signals = new Counter({ name: 'openrouter_alerting_events_total', help: 'Events taken in by the alerting service, by kind (usage, budget, router).', labelNames: ['kind'], registers });
  }

  delivered(ruleKind: string, channel: string, status: string): void {
    this.sent.inc({ rule_kind: label(ruleKind), channel: label(channel), status });
  }
}
