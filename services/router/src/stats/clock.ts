/** Time and randomness behind seams, so routing decisions replay exactly in tests. */
export interface Clock {
  /** Milliseconds since 1970 on the wall clock, which can be set back or forward. */
  now(): number;
  /**
   * Milliseconds from some origin on a clock that is never set, for durations (a call's latency):
   * two wall clock readings a step apart would time a call at minus an hour. Unset (a test's
   * clock): durations are read from `now`.
   */
  monotonic?(): number;
}

export const systemClock: Clock = { now: () => Date.now(), monotonic: () => performance.now() };

/** Starts timing on `clock`: the function it returns gives the milliseconds since (see `Clock.monotonic`). */
export function stopwatch(clock: Clock): () => number {
  const read = (): number => clock.monotonic?.() ?? clock.now();
  const started = read();
  return () => read() - started;
}

/** A uniform draw in [0, 1). */
export type Random = () => number;

/** mulberry32: small, fast and good enough for load balancing and jitter. */
export function seededRandom(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** FNV-1a mapped to [0, 1): the same key always lands on the same point (sticky assignments). */
export function stablePoint(key: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  // One more avalanche round so keys that differ in the last character spread over the range.
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b) >>> 0;
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35) >>> 0;
  hash ^= hash >>> 16;
  return (hash >>> 0) / 4_294_967_296;
}
