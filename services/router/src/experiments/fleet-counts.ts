import type { GrayReleaseArm } from './gray-release';

/** Counters by time bucket: bucket index (see `SlidingWindow.bucketOf`) → counter index → count. */
export type BucketCounts = Map<number, Map<number, number>>;

/** Bucketed counters of each arm of a release. */
export type ArmCounts = Record<GrayReleaseArm, BucketCounts>;

export const ARMS: readonly GrayReleaseArm[] = ['baseline', 'canary'];

export function emptyArmCounts(): ArmCounts {
  return { baseline: new Map(), canary: new Map() };
}

function isEmpty(counts: ArmCounts): boolean {
  return ARMS.every((arm) => counts[arm].size === 0);
}

export function addCount(counts: BucketCounts, bucket: number, field: number, amount: number): void {
  let fields = counts.get(bucket);
  if (!fields) counts.set(bucket, (fields = new Map()));
  const sum = (fields.get(field) ?? 0) + amount;
  if (sum === 0) fields.delete(field);
  else fields.set(field, sum);
}

/**
 * A replica's deltas sent to the fleet's counters in one go. `seq` grows with each batch a replica
 * makes (0: an empty batch, nothing to add); the store applies a batch only if it has not applied
 * this replica's batch `seq` (or a later one) yet, so a batch sent again after its answer was lost
 * is not counted twice.
 */
export interface CountBatch {
  readonly seq: number;
  readonly deltas: ArmCounts;
}

/**
 * What this replica counted that the fleet's counters may not hold yet: the batch sent and not
 * acknowledged (sent again, as it is, until it is) and the deltas recorded since that batch was
 * made. Bounded by the window: buckets that left it are dropped, and the calls in them counted
 * as `dropped`.
 *
 * Once sealed (the release is judged no more), what was counted until then is still sent, in
 * at most two batches; what is counted after is this replica's alone, never sent, and dropped
 * without a word as it leaves the window.
 */
export class UnsharedCounts {
  private pending = emptyArmCounts();
  private unacknowledged: CountBatch | undefined;
  /** Once sealed: the deltas recorded before, not batched yet. */
  private last: ArmCounts | undefined;
  private sealed = false;
  private seq = 0;
  /** Calls this replica counted that left the window before the fleet's counters took them. */
  private dropped = 0;

  constructor(private readonly requestsField: number) {}

  add(arm: GrayReleaseArm, bucket: number, field: number, amount: number): void {
    addCount(this.pending[arm], bucket, field, amount);
  }

  /** From now on only what was counted until now is sent (see above). */
  seal(): void {
    if (this.sealed) return;
    this.sealed = true;
    if (!isEmpty(this.pending)) this.last = this.pending;
    this.pending = emptyArmCounts();
  }

  /**
   * The batch to send now: the one not acknowledged yet, again, or else the deltas recorded since
   * the last one (once sealed, those recorded before). Buckets older than `oldest` are dropped
   * from all of them first. An empty batch (`seq` 0) when there is nothing to send.
   */
  batch(oldest: number): CountBatch {
    this.dropBefore(this.pending, oldest, !this.sealed);
    if (this.last) {
      this.dropBefore(this.last, oldest);
      if (isEmpty(this.last)) this.last = undefined;
    }
    if (this.unacknowledged) {
      this.dropBefore(this.unacknowledged.deltas, oldest);
      // Nothing left of it to add, applied or not: the deltas since need not wait for it.
      if (isEmpty(this.unacknowledged.deltas)) this.unacknowledged = undefined;
      else return this.unacknowledged;
    }
    const next = this.sealed ? this.last : this.pending;
    if (!next || isEmpty(next)) return { seq: 0, deltas: emptyArmCounts() };
    this.unacknowledged = { seq: ++this.seq, deltas: next };
    if (this.sealed) this.last = undefined;
    else this.pending = emptyArmCounts();
    return this.unacknowledged;
  }

  /** Sealed, with nothing left to send: no batch will come any more. */
  done(): boolean {
    return this.sealed && !this.unacknowledged && !this.last;
  }

  /** The store applied `batch` (now or before): it is no longer this replica's alone. */
  acknowledge(batch: CountBatch): void {
    if (this.unacknowledged === batch) this.unacknowledged = undefined;
  }

  /** The deltas of no batch yet: what the fleet's counters cannot hold. */
  unbatched(): ArmCounts {
    if (!this.last) return this.pending;
    const both = emptyArmCounts();
    for (const counts of [this.last, this.pending]) for (const arm of ARMS) for (const [bucket, fields] of counts[arm]) for (const [field, amount] of fields) addCount(both[arm], bucket, field, amount);
    return both;
  }

  /**
   * The sums of the counters of `arm` over the buckets `oldest` to `newest`, of the batch not
   * acknowledged and the deltas of no batch yet: what this replica counted that the fleet's
   * counters may not hold (a batch not acknowledged may have been applied, its answer lost).
   */
  totals(arm: GrayReleaseArm, buckets: { oldest: number; newest: number }, width: number): Float64Array {
    const totals = new Float64Array(width);
    for (const counts of [this.unacknowledged?.deltas, this.last, this.pending]) {
      for (const [bucket, fields] of counts?.[arm] ?? []) {
        if (bucket < buckets.oldest || bucket > buckets.newest) continue;
        for (const [field, amount] of fields) if (field >= 0 && field < width) totals[field] = (totals[field] ?? 0) + amount;
      }
    }
    return totals;
  }

  /** The calls dropped since the last call, and counts them from 0 again. */
  takeDropped(): number {
    const dropped = this.dropped;
    this.dropped = 0;
    return dropped;
  }

  private dropBefore(counts: ArmCounts, oldest: number, counted = true): void {
    for (const arm of ARMS) {
      for (const [bucket, fields] of counts[arm]) {
        if (bucket >= oldest) continue;
        if (counted) this.dropped += fields.get(this.requestsField) ?? 0;
        counts[arm].delete(bucket);
      }
    }
  }
}
