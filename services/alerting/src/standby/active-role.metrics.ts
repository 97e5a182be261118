import { Gauge, type Registry } from 'prom-client';

/** Whether this alerting replica is the active one (1) or stands by (0), read at scrape time. */
export class ActiveRoleMetrics {
  readonly active: Gauge;

  constructor(registry: Registry, isActive: () => boolean) {
    this.active = new Gauge({
      name: 'openrouter_alerting_active',
      help: 'Whether this alerting replica is the active one (1: consuming, evaluating and notifying) or stands by for its lease (0).',
      registers: [registry],
      collect() {
        this.set(isActive() ? 1 : 0);
      },
    });
  }
}
