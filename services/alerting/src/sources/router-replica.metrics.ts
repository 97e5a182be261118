import { Gauge, type Registry } from 'prom-client';
import { replicaCounts, type RouterSnapshot } from '../aggregation/router-replicas';

/**
 * The router replicas alerting polls, answering or not, read from the last poll at scrape time: a
 * replica that does not answer has its circuits unwatched, which no rule about circuits can show.
 */
export class RouterReplicaMetrics {
  readonly replicas: Gauge<'state'>;

  constructor(registry: Registry, read: () => RouterSnapshot | undefined) {
    this.replicas = new Gauge({
      name: 'openrouter_alerting_router_replicas',
      help: 'Router replicas polled for circuit and gray-release state at the last poll, by state (answering, not_answering).',
      labelNames: ['state'],
      registers: [registry],
      collect() {
        this.reset();
        const snapshot = read();
        if (!snapshot) return;
        const { polled, answering } = replicaCounts(snapshot);
        this.set({ state: 'answering' }, answering);
        this.set({ state: 'not_answering' }, polled - answering);
      },
    });
  }
}
