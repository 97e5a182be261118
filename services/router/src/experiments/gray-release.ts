import type { GrayReleaseConfig } from '@openrouter/config';
import type { routerv1 } from '@openrouter/contracts';
import { stablePoint, type Clock } from '../stats/clock';
import { binnedPercentile, LATENCY_BINS, latencyBin, SlidingWindow } from '../stats/sliding-window';
import { stickyKey, type ArmAssignment } from './ab-experiments';
import { ARMS, UnsharedCounts, type ArmCounts, type BucketCounts, type CountBatch } from './fleet-counts';

export type GrayReleaseStatus = 'pending' | 'active' | 'completed' | 'rolled_back';

/** When and why a release rolled back. */
export interface Rollback {
  at: number;
  reason: string;
}
export type GrayReleaseArm = 'baseline' | 'canary';

/** One call as a release recorded it, so that a success can be taken back (see `failAfterSuccess`). */
export interface RecordedCall {
  readonly arm: GrayReleaseArm;
  readonly at: number;
  /**
   * The index of the window bucket the call was counted in: the bucket of `at`, or the newest
   * if the clock had stepped back behind it (see `SlidingWindow.add`). Its amends go there.
   */
  readonly bucket: number;
  readonly ok: boolean;
  readonly latencyMs: number;
}

/** Per arm over the rollback window: calls, errors, and the successful calls' latencies in bins. */
const REQUESTS = 0;
const ERRORS = 1;
const LATENCIES = 2;
/** The counters of one arm's window (see above). */
export const ARM_COUNTERS = LATENCIES + LATENCY_BINS;

/** Whose calls the arms' stats count: every replica's (shared through the store), or this replica's own. */
export type GrayReleaseStatsScope = 'fleet' | 'replica';

/** What a replica sends to the fleet's counters at a round, and the buckets of the window it reads back. */
export interface CountsToShare {
  batch: CountBatch;
  buckets: { oldest: number; newest: number };
}

/**
 * One gray release: the canary's share follows the configured steps over time; each arm's calls
 * are recorded as the router reports them, and when the canary's error rate or p95 latency exceeds
 * the baseline's by more than the configured margin the release rolls back (canary share 0) for good.
 * The start (when not configured) and the rollback are kept beyond the process by `GrayReleaseSync`.
 *
 * Shared by several replicas (`shareCounts`), each arm's window holds the fleet's counts as last
 * read from the store plus what this replica counted that they may not hold; alone, its own
 * calls. Either way a call is counted in the window at once, so the judgment needs no I/O. A
 * release judged no more (rolled back, or completed with no baseline call left in the window)
 * stops sharing: the fleet's counters are not needed any more.
 */
export class GrayRelease {
  private startAt: number;
  private rolledBack: Rollback | undefined;
  private readonly outcomes: Record<GrayReleaseArm, SlidingWindow>;
  /** This replica's counts the fleet's counters may not hold yet; undefined for a release not shared. */
  private unshared: UnsharedCounts | undefined;
  /** When this replica last read the fleet's counts (0: never). */
  private fleetReadAt = 0;
  /** Told of this process's rollback, to keep it beyond the process (see `GrayReleaseSync`). */
  onRollBack: ((rollback: Rollback) => void) | undefined;

  constructor(
    readonly config: GrayReleaseConfig,
    private readonly clock: Clock,
  ) {
    this.startAt = config.startAt ? Date.parse(config.startAt) : clock.now();
    const window = (): SlidingWindow => new SlidingWindow(config.rollback.windowMs, ARM_COUNTERS);
    this.outcomes = { baseline: window(), canary: window() };
  }

  /** The start kept for a release without `startAt` (the first replica's, or an earlier run's). */
  adoptStart(startAt: number): void {
    if (!this.config.startAt) this.startAt = startAt;
  }

  /** A rollback made by another replica or an earlier run: it holds here too. */
  adoptRollback(rollback: Rollback): void {
    this.rolledBack ??= rollback;
    this.unshared?.seal();
  }

  startedAt(): number {
    return this.startAt;
  }

  rollback(): Rollback | undefined {
    return this.rolledBack;
  }

  /** The current step (index into `steps`, -1 before the first) and canary percent. */
  position(): { step: number; percent: number; nextStepAt: number } {
    if (this.rolledBack) return { step: -1, percent: 0, nextStepAt: 0 };
    const elapsedMinutes = (this.clock.now() - this.startAt) / 60_000;
    let step = -1;
    this.config.steps.forEach((s, i) => {
      if (elapsedMinutes >= s.afterMinutes) step = i;
    });
    const next = this.config.steps[step + 1];
    return { step, percent: this.config.steps[step]?.percent ?? 0, nextStepAt: next ? this.startAt + next.afterMinutes * 60_000 : 0 };
  }

  /**
   * Completed once the last step is in effect and sends the canary everything: a last step below
   * 100 % holds the release at that share, still comparing the arms, so it stays active.
   */
  status(): GrayReleaseStatus {
    if (this.rolledBack) return 'rolled_back';
    const { step, percent } = this.position();
    if (step < 0) return 'pending';
    return step === this.config.steps.length - 1 && percent >= 100 ? 'completed' : 'active';
  }

  assign(context: Pick<routerv1.RequestContext, 'endUser' | 'keyId' | 'requestId'>, user: string | undefined): ArmAssignment {
    const { percent } = this.position();
    const point = stablePoint(`${this.config.id}:${stickyKey('user', context, user)}`);
    const arm: GrayReleaseArm = point * 100 < percent ? 'canary' : 'baseline';
    return { experiment: this.config.id, arm, model: arm === 'canary' ? this.config.canary : this.config.baseline };
  }

  /** One call to one arm, then the rollback check. */
  record(arm: GrayReleaseArm, ok: boolean, latencyMs: number): RecordedCall {
    const now = this.clock.now();
    const bucket = this.count(arm, now, REQUESTS);
    this.count(arm, now, ok ? LATENCIES + latencyBin(latencyMs) : ERRORS);
    // Either arm's call may complete the comparison.
    if (!this.rolledBack) this.check();
    return { arm, at: now, bucket, ok, latencyMs };
  }

  /**
   * A call recorded as a success failed after all (a stream the deployment broke after its first
   * token): it counts once, as an error, and its latency leaves the arm's p95. Then the rollback check.
   */
  failAfterSuccess(call: RecordedCall): void {
    if (!call.ok) return;
    const now = this.clock.now();
    // The window holds the call still (unless it has left it): its success becomes an error in
    // the bucket the call was counted in (not necessarily the bucket of its time, after the clock
    // stepped back), and for the fleet a delta in that same bucket, sent or not yet.
    if (this.countAt(call.arm, call.bucket, now, LATENCIES + latencyBin(call.latencyMs), -1)) this.countAt(call.arm, call.bucket, now, ERRORS, 1);
    else {
      this.count(call.arm, now, REQUESTS);
      this.count(call.arm, now, ERRORS);
    }
    if (!this.rolledBack) this.check();
  }

  /**
   * From now on the release is judged on every replica's calls: each call is also kept as a delta
   * for the fleet's counters (see `countsToShare`). Called before the router takes calls.
   */
  shareCounts(): void {
    if (this.unshared) return;
    this.unshared = new UnsharedCounts(REQUESTS);
    if (this.rolledBack) this.unshared.seal();
  }

  /**
   * For a release shared by replicas: the deltas to add to the fleet's counters now, and the
   * buckets of the window to read back. Once the release is judged no more (rolled back, or
   * completed with no baseline call left in the window), only the calls counted until then are
   * still sent, and then nothing (no round trip): the calls after are this replica's alone,
   * still reported as not shared (the admin view adds them up across replicas) until they leave
   * the window.
   */
  countsToShare(): CountsToShare | undefined {
    if (!this.unshared) return undefined;
    const now = this.clock.now();
    const buckets = this.outcomes.baseline.bucketsAt(now);
    if (this.drained(now)) this.unshared.seal();
    const batch = this.unshared.batch(buckets.oldest);
    return this.unshared.done() && batch.seq === 0 ? undefined : { batch, buckets };
  }

  /**
   * Completed, and no baseline call in the fleet's window as read: the baseline gets no more
   * calls, and `check` needs both arms, so no rollback can come. A release that completed before
   * this replica ever read the fleet's counts waits for that read: other replicas' baseline calls
   * may still be in the window.
   */
  private drained(now: number): boolean {
    return this.status() === 'completed' && this.fleetReadAt > 0 && this.outcomes.baseline.total(now, REQUESTS) === 0;
  }

  /**
   * The store applied `batch` and answered with the fleet's counts over the window, that batch
   * included: they replace what each arm's window held, plus this replica's deltas of no batch
   * yet (counted since the batch was made); then the rollback check, as the fleet may have
   * crossed a margin on other replicas' calls.
   */
  adoptFleetCounts(batch: CountBatch, fleet: ArmCounts): void {
    if (!this.unshared) return;
    this.unshared.acknowledge(batch);
    const now = this.clock.now();
    const unbatched = this.unshared.unbatched();
    for (const arm of ARMS) {
      const window = this.outcomes[arm];
      window.clear();
      fill(window, fleet[arm], now);
      fill(window, unbatched[arm], now);
    }
    this.fleetReadAt = now;
    if (!this.rolledBack) this.check();
  }

  /** Calls this replica counted that left the window before the fleet's counters took them, since the last call. */
  takeDroppedCalls(): number {
    return this.unshared?.takeDropped() ?? 0;
  }

  /**
   * For a release shared by replicas: per arm, the calls in the window this replica counted that
   * the fleet's counters may not hold (the arm's stats are the fleet's as last read plus these).
   */
  unsharedStats(arm: GrayReleaseArm): routerv1.GrayReleaseArmStats | undefined {
    if (!this.unshared) return undefined;
    const totals = this.unshared.totals(arm, this.outcomes[arm].bucketsAt(this.clock.now()), ARM_COUNTERS);
    // A success taken back after it was shared is a -1 in its latency bin here: no latency to report.
    for (let f = LATENCIES; f < ARM_COUNTERS; f++) if ((totals[f] ?? 0) < 0) totals[f] = 0;
    return armStats(totals);
  }

  /** Whose calls the arms' stats count, and when the fleet's were last read (0 for a replica's own). */
  statsScope(): { scope: GrayReleaseStatsScope; readAt: number } {
    return this.unshared && this.fleetReadAt > 0 ? { scope: 'fleet', readAt: this.fleetReadAt } : { scope: 'replica', readAt: 0 };
  }

  stats(arm: GrayReleaseArm): routerv1.GrayReleaseArmStats {
    return armStats(this.outcomes[arm].totalsAt(this.clock.now()));
  }

  state(): routerv1.GrayReleaseState {
    const position = this.position();
    const { scope, readAt } = this.statsScope();
    return {
      id: this.config.id,
      target: this.config.target,
      baseline: this.config.baseline,
      canary: this.config.canary,
      status: this.status(),
      canaryPercent: position.percent,
      step: Math.max(0, position.step + 1),
      nextStepAtMs: position.nextStepAt,
      rolledBackAtMs: this.rolledBack?.at ?? 0,
      rollbackReason: this.rolledBack?.reason ?? '',
      baselineStats: this.stats('baseline'),
      canaryStats: this.stats('canary'),
      statsScope: scope,
      statsReadAtMs: readAt,
      baselineUnshared: this.unsharedStats('baseline'),
      canaryUnshared: this.unsharedStats('canary'),
    };
  }

  /** Counts in the bucket of `now` (the newest, if the clock stepped back); returns that bucket's index. */
  private count(arm: GrayReleaseArm, now: number, field: number): number {
    const bucket = this.outcomes[arm].add(now, field);
    this.unshared?.add(arm, bucket, field, 1);
    return bucket;
  }

  /** Counts in the bucket with index `bucket`, if the window still holds it. */
  private countAt(arm: GrayReleaseArm, bucket: number, now: number, field: number, amount: number): boolean {
    if (!this.outcomes[arm].addToBucket(bucket, now, field, amount)) return false;
    this.unshared?.add(arm, bucket, field, amount);
    return true;
  }

  private check(): void {
    const { errorRateMargin, p95LatencyMargin, minRequests } = this.config.rollback;
    // A comparison needs both arms in the window: at a 100 % step the baseline takes no requests,
    // and an empty baseline's error rate of 0 would roll a completed release back on any error.
    const canary = this.stats('canary');
    if (canary.requests < minRequests) return;
    const baseline = this.stats('baseline');
    if (baseline.requests < minRequests) return;
    if (canary.errorRate > baseline.errorRate + errorRateMargin) {
      this.rollBack(`canary error rate ${pct(canary.errorRate)} exceeds baseline ${pct(baseline.errorRate)} by more than ${pct(errorRateMargin)}`);
      return;
    }
    if (baseline.p95LatencyMs > 0 && canary.p95LatencyMs > baseline.p95LatencyMs * (1 + p95LatencyMargin)) {
      this.rollBack(`canary p95 latency ${Math.round(canary.p95LatencyMs)} ms exceeds baseline ${Math.round(baseline.p95LatencyMs)} ms by more than ${pct(p95LatencyMargin)}`);
    }
  }

  private rollBack(reason: string): void {
    this.rolledBack = { at: this.clock.now(), reason };
    this.unshared?.seal();
    this.onRollBack?.(this.rolledBack);
  }
}

/** An arm's stats from its window's sums (or any counters laid out the same way). */
function armStats(totals: Float64Array): routerv1.GrayReleaseArmStats {
  const requests = totals[REQUESTS] ?? 0;
  const errors = totals[ERRORS] ?? 0;
  return {
    requests,
    errors,
    errorRate: requests ? errors / requests : 0,
    p95LatencyMs: Math.round(binnedPercentile(totals, LATENCIES, 0.95)),
  };
}

/** Adds bucketed counts to a window; buckets it no longer holds at `now` are left out. */
function fill(window: SlidingWindow, counts: BucketCounts, now: number): void {
  for (const [bucket, fields] of counts) {
    for (const [field, amount] of fields) {
      // A bucket the window no longer holds takes none of its counts.
      if (!window.addToBucket(bucket, now, field, amount)) break;
    }
  }
}

function pct(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}

/** Every configured gray release, by target name. */
export class GrayReleases {
  private readonly byTarget: ReadonlyMap<string, GrayRelease>;

  constructor(configs: readonly GrayReleaseConfig[], clock: Clock) {
    this.byTarget = new Map(configs.map((c) => [c.target, new GrayRelease(c, clock)]));
  }

  forTarget(target: string): GrayRelease | undefined {
    return this.byTarget.get(target);
  }

  byId(id: string): GrayRelease | undefined {
    for (const release of this.byTarget.values()) if (release.config.id === id) return release;
    return undefined;
  }

  all(): GrayRelease[] {
    return [...this.byTarget.values()];
  }

  states(): routerv1.GrayReleaseState[] {
    return [...this.byTarget.values()].map((r) => r.state());
  }
}
