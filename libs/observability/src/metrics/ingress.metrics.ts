import { Counter, Histogram, type Registry } from 'prom-client';
import { FAST_BUCKETS, label, LATENCY_BUCKETS } from './metrics-registry';

/** What ingress knows when a metered API request ends (a usage event and its routing decision). */
export interface MeteredRequest {
  endpoint: string;
  model: string;
  provider: string;
  httpStatus: number;
  outcome: 'ok' | 'error' | 'cancelled';
  errorKind: string;
  stream: boolean;
  latencyMs: number;
  /** 0 when no token was produced. */
  ttftMs: number;
  /** Time the request spent with providers (every attempt up to the first answer event), when known. */
  upstreamMs: number | undefined;
  promptTokens: number;
  completionTokens: number;
  cost: number;
  currency: string;
}

type RequestLabels = 'endpoint' | 'model' | 'provider' | 'status';

/**
 * The OpenAI-compatible API as clients see it. Labels are bounded: endpoint patterns, catalog
 * model ids and provider ids from configuration, status codes — never key, user or org ids.
 */
export class IngressMetrics {
  readonly requests: Counter<RequestLabels>;
  readonly latency: Histogram<'endpoint' | 'model' | 'provider' | 'outcome'>;
  readonly ttft: Histogram<'endpoint' | 'model' | 'provider'>;
  readonly overhead: Histogram<'endpoint'>;
  readonly tokens: Counter<'model' | 'provider' | 'direction'>;
  readonly cost: Counter<'model' | 'provider' | 'currency'>;
  readonly rateLimited: Counter<'endpoint'>;
  readonly budgetRejected: Counter<'endpoint'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.requests = new Counter({ name: 'openrouter_requests_total', help: 'API requests, by endpoint, served model, provider and HTTP status.', labelNames: ['endpoint', 'model', 'provider', 'status'], registers });
    this.latency = new Histogram({ name: 'openrouter_request_duration_seconds', help: 'End-to-end latency of API requests (arrival to last byte).', labelNames: ['endpoint', 'model', 'provider', 'outcome'], buckets: LATENCY_BUCKETS, registers });
    this.ttft = new Histogram({ name: 'openrouter_time_to_first_token_seconds', help: 'Arrival to the first answer token.', labelNames: ['endpoint', 'model', 'provider'], buckets: LATENCY_BUCKETS, registers });
    this.overhead = new Histogram({ name: 'openrouter_gateway_overhead_seconds', help: 'Time to first token minus the time spent waiting on providers: what the gateway adds.', labelNames: ['endpoint'], buckets: FAST_BUCKETS, registers });
    this.tokens = new Counter({ name: 'openrouter_tokens_total', help: 'Tokens metered, by direction (input = prompt, output = completion).', labelNames: ['model', 'provider', 'direction'], registers });
    this.cost = new Counter({ name: 'openrouter_cost_total', help: 'Cost of served requests in the price list currency (a float view; the exact decimal is in the usage records).', labelNames: ['model', 'provider', 'currency'], registers });
    this.rateLimited = new Counter({ name: 'openrouter_rate_limited_requests_total', help: 'Requests refused by the gateway rate limits (429 before routing).', labelNames: ['endpoint'], registers });
    this.budgetRejected = new Counter({ name: 'openrouter_budget_rejected_requests_total', help: 'Requests refused because a budget is exhausted.', labelNames: ['endpoint'], registers });
  }

  /** A metered request ended (called once per usage event). */
  metered(r: MeteredRequest): void {
    const model = label(r.model);
    const provider = label(r.provider);
    this.requests.inc({ endpoint: r.endpoint, model, provider, status: String(r.httpStatus) });
    this.latency.observe({ endpoint: r.endpoint, model, provider, outcome: r.outcome }, r.latencyMs / 1000);
    if (r.ttftMs > 0) {
      this.ttft.observe({ endpoint: r.endpoint, model, provider }, r.ttftMs / 1000);
      if (r.upstreamMs !== undefined) this.overhead.observe({ endpoint: r.endpoint }, Math.max(0, r.ttftMs - r.upstreamMs) / 1000);
    }
    if (r.promptTokens > 0) this.tokens.inc({ model, provider, direction: 'input' }, r.promptTokens);
    if (r.completionTokens > 0) this.tokens.inc({ model, provider, direction: 'output' }, r.completionTokens);
    if (r.cost > 0) this.cost.inc({ model, provider, currency: label(r.currency) }, r.cost);
    if (r.errorKind === 'budget_exceeded') this.budgetRejected.inc({ endpoint: r.endpoint });
    else if (r.errorKind === 'rate_limited' && !r.provider) this.rateLimited.inc({ endpoint: r.endpoint });
  }

  /**
   * Any API response ended. A metered request is counted by its metered end instead, which may
   * come later (a request cut during a provider call is metered once the call has unwound); the
   * others, refused before they were metered (bad key, rate limit, budget), are counted here.
   */
  responded(endpoint: string, status: number, metered: boolean): void {
    if (metered || !endpoint.startsWith('/v1/')) return;
    this.requests.inc({ endpoint, model: 'none', provider: 'none', status: String(status) });
    if (status === 429) this.rateLimited.inc({ endpoint });
    else if (status === 402) this.budgetRejected.inc({ endpoint });
  }
}
