import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { LATENCY_BUCKETS } from './metrics-registry';

export interface HttpExchange {
  /** The matched route pattern (`/v1/models/:id`), `unmatched` for a 404 without a route. */
  route: string;
  method: string;
  status: number;
  durationSeconds: number;
}

/** Every HTTP exchange of a service, by route pattern (never the raw URL, which is unbounded). */
export class HttpMetrics {
  readonly requests: Counter<'route' | 'method' | 'status'>;
  readonly duration: Histogram<'route' | 'method'>;
  readonly inFlight: Gauge<'endpoint'>;

  constructor(registry: Registry) {
    this.requests = new Counter({ name: 'openrouter_http_requests_total', help: 'HTTP requests answered, by route pattern, method and status code.', labelNames: ['route', 'method', 'status'], registers: [registry] });
    this.duration = new Histogram({ name: 'openrouter_http_request_duration_seconds', help: 'Time from request arrival to the end of the response.', labelNames: ['route', 'method'], buckets: LATENCY_BUCKETS, registers: [registry] });
    this.inFlight = new Gauge({ name: 'openrouter_requests_in_flight', help: 'Requests being served now, by endpoint.', labelNames: ['endpoint'], registers: [registry] });
  }

  started(route: string): void {
    this.inFlight.inc({ endpoint: route });
  }

  ended(exchange: HttpExchange): void {
    this.inFlight.dec({ endpoint: exchange.route });
    this.requests.inc({ route: exchange.route, method: exchange.method, status: String(exchange.status) });
    this.duration.observe({ route: exchange.route, method: exchange.method }, exchange.durationSeconds);
  }
}
