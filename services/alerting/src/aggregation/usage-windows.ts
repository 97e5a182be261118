import { Money } from '@openrouter/usage';

/** Upper bounds (ms) of the latency histogram kept per bucket; p95 is read from it. */
export const LATENCY_BOUNDS_MS = [25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 20_000, 30_000, 60_000, 120_000, Number.POSITIVE_INFINITY];

const DECIMAL = /^\d+(\.\d+)?$/;

export type AttemptScope = 'provider' | 'deployment';

interface AttemptBucket {
  requests: number;
  errors: number;
  latency: number[];
  maxLatencyMs: number;
}

interface Series<B> {
  labels: Record<string, string>;
  buckets: Map<number, B>;
}

export interface WindowCounts {
  labels: Record<string, string>;
  requests: number;
  errors: number;
  /**
   * The 95th percentile, estimated from the histogram: interpolated linearly inside the bucket that
   * holds it, and never above the slowest call seen. Undefined without requests.
   */
  p95Ms: number | undefined;
}

/** Spend is money: added up in decimal, as billing does, so a sum that reaches a threshold exactly is not a hair below it. */
export interface SpendWindow {
  labels: Record<string, string>;
  current: Money;
  /** Spend of the windows before the current one, all of them (the baseline is its average). */
  before: Money;
}

/**
 * Sliding-window aggregates over usage: provider calls per provider and per deployment (requests,
 * errors, a latency histogram) and spend per organisation and currency, in fixed buckets of
 * `bucketMs` so memory is bounded by the retained span, not by traffic.
 */
export class UsageWindows {
  private readonly attempts: Record<AttemptScope, Map<string, Series<AttemptBucket>>> = { provider: new Map(), deployment: new Map() };
  private readonly spend = new Map<string, Series<Money>>();

  constructor(
    private readonly bucketMs: number,
    /** Buckets older than this are dropped. */
    private readonly retainMs: number,
  ) {}

  recordAttempt(provider: string, deployment: string, at: number, failed: boolean, latencyMs: number): void {
    const bucket = this.bucketOf(at);
    this.addAttempt('provider', provider, { provider }, bucket, failed, latencyMs);
    if (deployment) this.addAttempt('deployment', `${provider}\u0000${deployment}`, { provider, deployment }, bucket, failed, latencyMs);
  }

  /** `amount` is a decimal text (a usage event's cost); anything else is not spend. */
  recordSpend(org: string, currency: string, at: number, amount: string): void {
    if (!DECIMAL.test(amount)) return;
    const value = new Money(amount);
    if (!value.gt(0)) return;
    const key = `${org}\u0000${currency}`;
    let series = this.spend.get(key);
    if (!series) {
      series = { labels: { org, currency }, buckets: new Map() };
      this.spend.set(key, series);
    }
    const bucket = this.bucketOf(at);
    series.buckets.set(bucket, (series.buckets.get(bucket) ?? new Money(0)).plus(value));
  }

  /** Requests, errors and p95 per series over `[now - windowMs, now]`. */
  attemptWindows(scope: AttemptScope, windowMs: number, now: number): WindowCounts[] {
    const from = this.bucketOf(now - windowMs + this.bucketMs);
    const out: WindowCounts[] = [];
    for (const series of this.attempts[scope].values()) {
      let requests = 0;
      let errors = 0;
      let maxLatencyMs = 0;
      const latency = new Array<number>(LATENCY_BOUNDS_MS.length).fill(0);
      for (const [start, b] of series.buckets) {
        if (start < from || start > now) continue;
        requests += b.requests;
        errors += b.errors;
        maxLatencyMs = Math.max(maxLatencyMs, b.maxLatencyMs);
        b.latency.forEach((n, i) => (latency[i] = (latency[i] ?? 0) + n));
      }
      out.push({ labels: series.labels, requests, errors, p95Ms: percentile(latency, requests, 0.95, maxLatencyMs) });
    }
    return out;
  }

  /** Spend in the last `windowMs` and in the `baselineWindows` windows before it. */
  spendWindows(windowMs: number, baselineWindows: number, now: number): SpendWindow[] {
    const out: SpendWindow[] = [];
    const currentFrom = now - windowMs;
    const baselineFrom = currentFrom - windowMs * baselineWindows;
    for (const series of this.spend.values()) {
      let current = new Money(0);
      let before = new Money(0);
      for (const [start, amount] of series.buckets) {
        if (start > currentFrom && start <= now) current = current.plus(amount);
        else if (start > baselineFrom && start <= currentFrom) before = before.plus(amount);
      }
      out.push({ labels: series.labels, current, before });
    }
    return out;
  }

  /** Drops buckets past retention and series left empty. */
  prune(now: number): void {
    const oldest = now - this.retainMs;
    for (const series of [...this.attempts.provider.values(), ...this.attempts.deployment.values(), ...this.spend.values()]) {
      for (const start of series.buckets.keys()) if (start < oldest) series.buckets.delete(start);
    }
    for (const map of [this.attempts.provider, this.attempts.deployment, this.spend] as Array<Map<string, Series<unknown>>>) {
      for (const [key, series] of map) if (series.buckets.size === 0) map.delete(key);
    }
  }

  private bucketOf(at: number): number {
    return Math.floor(at / this.bucketMs) * this.bucketMs;
  }

  private addAttempt(scope: AttemptScope, key: string, labels: Record<string, string>, bucket: number, failed: boolean, latencyMs: number): void {
    const map = this.attempts[scope];
    let series = map.get(key);
    if (!series) {
      series = { labels, buckets: new Map() };
      map.set(key, series);
    }
    let b = series.buckets.get(bucket);
    if (!b) {
      b = { requests: 0, errors: 0, latency: new Array<number>(LATENCY_BOUNDS_MS.length).fill(0), maxLatencyMs: 0 };
      series.buckets.set(bucket, b);
    }
    b.requests++;
    if (failed) b.errors++;
    b.maxLatencyMs = Math.max(b.maxLatencyMs, latencyMs);
    const slot = LATENCY_BOUNDS_MS.findIndex((bound) => latencyMs <= bound);
    b.latency[slot] = (b.latency[slot] ?? 0) + 1;
  }
}

/**
 * The q-quantile of a histogram, interpolated linearly between the bounds of the bucket that holds
 * it (as Prometheus' histogram_quantile does) and capped at the slowest value seen: reading the
 * bucket's upper bound would report every call of 510 ms as "1000 ms". The open top bucket reads
 * as the slowest value seen.
 */
function percentile(counts: number[], total: number, q: number, max: number): number | undefined {
  if (total === 0) return undefined;
  const rank = total * q;
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    const inBucket = counts[i] ?? 0;
    if (inBucket > 0 && seen + inBucket >= rank) {
      const lower = LATENCY_BOUNDS_MS[i - 1] ?? 0;
      const upper = LATENCY_BOUNDS_MS[i] ?? Number.POSITIVE_INFINITY;
      if (!Number.isFinite(upper)) return Math.max(lower, max);
      return Math.min(max, Math.round(lower + ((upper - lower) * (rank - seen)) / inBucket));
    }
    seen += inBucket;
  }
  return max;
}
