import type { Clock } from './clock';
import { SlidingWindow } from './sliding-window';

const WINDOW_MS = 60_000;
const LATENCY_SAMPLES = 200;
const REQUESTS = 0;
const TOKENS = 1;

/** Live numbers of one deployment in this router process. */
export class DeploymentStats {
  latencyEwmaMs: number | undefined;
  ttftEwmaMs: number | undefined;
  outstanding = 0;
  private readonly latencies: number[] = [];
  private latencyCursor = 0;
  /** Requests started and their token estimates over the last minute, for RPM/TPM capacity. */
  private readonly recent = new SlidingWindow(WINDOW_MS, 2);

  constructor(private readonly alpha: number) {}

  begin(now: number, tokens: number): void {
    this.outstanding++;
    this.recent.add(now, REQUESTS);
    this.recent.add(now, TOKENS, tokens);
  }

  end(): void {
    if (this.outstanding > 0) this.outstanding--;
  }

  /** Time to the first answer event (TTFT for streams, the whole answer otherwise). */
  observeFirstEvent(ms: number, stream: boolean): void {
    if (!measured(ms)) return;
    if (stream) this.ttftEwmaMs = ewma(this.ttftEwmaMs, ms, this.alpha);
    else this.observeLatency(ms);
  }

  observeLatency(ms: number): void {
    if (!measured(ms)) return;
    this.latencyEwmaMs = ewma(this.latencyEwmaMs, ms, this.alpha);
    if (this.latencies.length < LATENCY_SAMPLES) this.latencies.push(ms);
    else this.latencies[this.latencyCursor] = ms;
    this.latencyCursor = (this.latencyCursor + 1) % LATENCY_SAMPLES;
  }

  p95(): number {
    return percentile(this.latencies, 0.95);
  }

  usage(now: number): { requests: number; tokens: number } {
    const [requests = 0, tokens = 0] = this.recent.totalsAt(now);
    return { requests, tokens };
  }
}

/**
 * A time that can be a call's: not negative, not infinite, a number. Anything else (a wall clock
 * set back during the call) would stay in the average for many calls, and a negative one would
 * rank the deployment first and make its load-balancing cost negative.
 */
function measured(ms: number): boolean {
  return Number.isFinite(ms) && ms >= 0;
}

function ewma(previous: number | undefined, sample: number, alpha: number): number {
  return previous === undefined ? sample : previous + alpha * (sample - previous);
}

function percentile(values: readonly number[], q: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? 0;
}

/** Per-deployment live statistics, kept in memory per router process. */
export class LiveStats {
  private readonly byDeployment = new Map<string, DeploymentStats>();

  constructor(
    readonly clock: Clock,
    private readonly alpha = 0.2,
  ) {}

  of(deploymentId: string): DeploymentStats {
    let stats = this.byDeployment.get(deploymentId);
    if (!stats) this.byDeployment.set(deploymentId, (stats = new DeploymentStats(this.alpha)));
    return stats;
  }

  /**
   * Expected time to the first answer event: for a stream, the live average time to first token;
   * otherwise, to the whole answer; else the configured prior. Never the other kind's average: a
   * deployment that served only long whole answers would look slow to start a stream, and one that
   * served only streams fast to answer whole.
   */
  expectedLatency(deploymentId: string, stream: boolean, prior: number | undefined): number {
    const stats = this.byDeployment.get(deploymentId);
    const live = stream ? stats?.ttftEwmaMs : stats?.latencyEwmaMs;
    return live ?? prior ?? UNKNOWN_LATENCY_MS;
  }
}

/** What a deployment with no measurement and no prior is assumed to take. */
export const UNKNOWN_LATENCY_MS = 1_000;
