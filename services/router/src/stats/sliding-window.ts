/**
 * Sums over a sliding time window, kept in a fixed ring of buckets: adding is O(1), reading a sum
 * is O(1), and memory stays the same whatever the traffic (a list of recent events grows with the
 * request rate and costs O(n) to prune and to read). Each bucket holds `width` numbers, so one
 * window can carry several sums (requests and errors, requests and tokens, a histogram).
 *
 * Events leave the window a whole bucket at a time: a read covers between `windowMs − windowMs /
 * buckets` and `windowMs` of history.
 */
export class SlidingWindow {
  private readonly bucketMs: number;
  private readonly slots: Float64Array;
  private readonly totals: Float64Array;
  /** Index (time / bucketMs) of the newest bucket the ring holds. */
  private newest = Number.NEGATIVE_INFINITY;

  constructor(
    windowMs: number,
    readonly width: number,
    private readonly buckets = 20,
  ) {
    // Fractional for windows shorter than `buckets` ms, so the window keeps its span.
    this.bucketMs = windowMs / buckets;
    this.slots = new Float64Array(buckets * width);
    this.totals = new Float64Array(width);
  }

  /**
   * Adds to the bucket of `now` (the newest, if the clock stepped back less than the window);
   * returns that bucket's index, which `addToBucket` takes to amend exactly that event later.
   */
  add(now: number, field: number, amount = 1): number {
    const slot = this.advance(now);
    this.slots[slot * this.width + field] = (this.slots[slot * this.width + field] ?? 0) + amount;
    this.totals[field] = (this.totals[field] ?? 0) + amount;
    return this.newest;
  }

  /** Adds to the bucket with index `index` (see `bucketOf`) if the window ending at `now` holds it; false when it does not. */
  addToBucket(index: number, now: number, field: number, amount = 1): boolean {
    this.advance(now);
    if (index > this.newest || index <= this.newest - this.buckets) return false;
    const slot = this.slotOf(index);
    this.slots[slot * this.width + field] = (this.slots[slot * this.width + field] ?? 0) + amount;
    this.totals[field] = (this.totals[field] ?? 0) + amount;
    return true;
  }

  /**
   * The index of the bucket holding time `at`: time over the bucket width, counted from the epoch,
   * so windows of the same span in different processes cut time into the same buckets.
   */
  bucketOf(at: number): number {
    return Math.floor(at / this.bucketMs);
  }

  /** The indices of the oldest and the newest bucket the window ending at `now` holds. */
  bucketsAt(now: number): { oldest: number; newest: number } {
    this.advance(now);
    return { oldest: this.newest - this.buckets + 1, newest: this.newest };
  }

  /** The sum of `field` over the window ending at `now`. */
  total(now: number, field: number): number {
    this.advance(now);
    return this.totals[field] ?? 0;
  }

  /** All the window's sums ending at `now` (a view: read it before the next add). */
  totalsAt(now: number): Float64Array {
    this.advance(now);
    return this.totals;
  }

  /** Empties the window. */
  clear(): void {
    this.slots.fill(0);
    this.totals.fill(0);
  }

  /**
   * Moves the ring to `now`'s bucket, dropping the buckets that left the window; returns its slot.
   * The wall clock can be set back. A step back shorter than the window stays in the newest bucket
   * rather than rewriting history: what the ring holds leaves the window at most that step late.
   * After a longer one every bucket held lies after the window ending at `now`, and would stay in
   * it until the clock caught up (hours, after a step of an hour): the ring starts over from `now`,
   * as after a jump forward past the window. Buckets keep the wall clock's numbers either way, as
   * windows in other processes number them (see `bucketOf`).
   */
  private advance(now: number): number {
    const index = Math.floor(now / this.bucketMs);
    if (index > this.newest) {
      // A clock that jumped further than the window drops everything; otherwise only the buckets passed.
      const from = Math.max(this.newest + 1, index - this.buckets + 1);
      for (let b = from; b <= index; b++) this.drop(this.slotOf(b));
      this.newest = index;
    } else if (index <= this.newest - this.buckets) {
      this.clear();
      this.newest = index;
    }
    return this.slotOf(this.newest);
  }

  private drop(slot: number): void {
    const base = slot * this.width;
    for (let f = 0; f < this.width; f++) {
      const value = this.slots[base + f] ?? 0;
      if (value !== 0) {
        this.totals[f] = (this.totals[f] ?? 0) - value;
        this.slots[base + f] = 0;
      }
    }
  }

  private slotOf(index: number): number {
    return ((index % this.buckets) + this.buckets) % this.buckets;
  }
}

/**
 * Latency bins for a percentile over a sliding window: logarithmic, each 5 % wider than the last,
 * so a percentile read from them is within ±2.5 % of the true value; 1 ms to one hour in 313 bins.
 */
export const LATENCY_BINS = 313;
const GROWTH = Math.log(1.05);

export function latencyBin(ms: number): number {
  if (!(ms >= 1)) return 0;
  return Math.min(LATENCY_BINS - 1, 1 + Math.floor(Math.log(ms) / GROWTH));
}

/** The bin's middle (geometric), the value a percentile read from it reports. */
export function latencyOfBin(bin: number): number {
  if (bin <= 0) return 0.5;
  return Math.exp((bin - 0.5) * GROWTH);
}

/**
 * The `q` quantile of the counts in `bins` (`counts[offset + bin]`), or 0 when they are empty:
 * the bin holding the ⌈q·n⌉-th smallest value.
 */
export function binnedPercentile(counts: Float64Array, offset: number, q: number): number {
  let n = 0;
  for (let b = 0; b < LATENCY_BINS; b++) n += counts[offset + b] ?? 0;
  if (n === 0) return 0;
  const rank = Math.max(1, Math.ceil(q * n));
  let seen = 0;
  for (let b = 0; b < LATENCY_BINS; b++) {
    seen += counts[offset + b] ?? 0;
    if (seen >= rank) return latencyOfBin(b);
  }
  return latencyOfBin(LATENCY_BINS - 1);
}
