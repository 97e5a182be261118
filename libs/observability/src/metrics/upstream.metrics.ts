import { Counter, Histogram, type Registry } from 'prom-client';
import { LATENCY_BUCKETS } from './metrics-registry';

/** Provider calls as the adapter makes them. */
export class UpstreamMetrics {
  readonly requests: Counter<'provider' | 'operation' | 'outcome'>;
  readonly duration: Histogram<'provider' | 'operation' | 'outcome'>;
  readonly firstEvent: Histogram<'provider' | 'operation'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.requests = new Counter({ name: 'openrouter_upstream_requests_total', help: 'Provider calls, by outcome (ok, cancelled or the canonical error kind).', labelNames: ['provider', 'operation', 'outcome'], registers });
    this.duration = new Histogram({ name: 'openrouter_upstream_duration_seconds', help: 'Provider call latency, from the request to the end of the answer.', labelNames: ['provider', 'operation', 'outcome'], buckets: LATENCY_BUCKETS, registers });
    this.firstEvent = new Histogram({ name: 'openrouter_upstream_first_event_seconds', help: 'Provider call latency to its first answer event (time to first token for streams).', labelNames: ['provider', 'operation'], buckets: LATENCY_BUCKETS, registers });
  }
}
