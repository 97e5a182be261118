/**
 * The generic cell rate algorithm: one stored number per limit, the theoretical arrival time
 * (TAT). A limit of L units per window W admits a burst of L and refills at one unit every W/L.
 */
export interface GcraLimit {
  /** Units per window. */
  limit: number;
  windowMs: number;
}

export interface GcraOutcome {
  allowed: boolean;
  /** Units still available right after this decision. */
  remaining: number;
  /** Until the limit is back to full. */
  resetMs: number;
  /** When denied: until `cost` units would be admitted. */
  retryAfterMs: number;
  /** The TAT to store if every limit of the request admits it. */
  nextTat: number;
}

/**
 * How far a time may be past another and still count as equal. A TAT is an epoch timestamp in
 * milliseconds plus fractional intervals (60,000 / 7 ms…), and a double that large is exact to
 * about 0.24 µs only: compared exactly, a burst of exactly the limit could end a hair past the
 * window and its last request be refused, and `remaining` read one short. Below the 1 ms of the
 * clocks, and at most a hundredth of an interval: no request is admitted sooner than that.
 */
export const SLACK_MS = 0.5;

function slackOf(interval: number): number {
  return Math.min(SLACK_MS, interval / 100);
}

export function gcra(tat: number, now: number, cost: number, { limit, windowMs }: GcraLimit): GcraOutcome {
  const interval = windowMs / limit;
  const slack = slackOf(interval);
  const start = Math.max(tat, now);
  const nextTat = start + cost * interval;
  const allowAt = nextTat - windowMs;
  if (allowAt - now > slack) {
    return {
      allowed: false,
      remaining: Math.max(0, Math.floor((now + windowMs + slack - start) / interval)),
      resetMs: Math.max(0, Math.ceil(start - now - slack)),
      retryAfterMs: Math.ceil(allowAt - now - slack),
      nextTat: tat,
    };
  }
  return admitted(nextTat, now, { limit, windowMs });
}

/** The outcome of a charge admitted with `nextTat`, as of `now` (a take answered again reads the same). */
export function admitted(nextTat: number, now: number, { limit, windowMs }: GcraLimit): GcraOutcome {
  const interval = windowMs / limit;
  const slack = slackOf(interval);
  return { allowed: true, remaining: Math.floor((now + windowMs + slack - nextTat) / interval), resetMs: Math.max(0, Math.ceil(nextTat - now - slack)), retryAfterMs: 0, nextTat };
}

/**
 * Moves a TAT by `delta` units (a correction after the real usage is known); never below now. A
 * refund (negative `delta`) for a charge whose units ran until `until` (the TAT it was admitted
 * with) gives back only those still ahead of now: the rest has refilled already, and the TAT may
 * hold later requests' charges by now, which a refund must not erase.
 */
export function adjustTat(tat: number, now: number, delta: number, { limit, windowMs }: GcraLimit, until = 0): number {
  const interval = windowMs / limit;
  const moved = delta < 0 && until > 0 ? Math.max(delta, -Math.max(0, (until - now) / interval)) : delta;
  return Math.max(now, Math.max(tat, now) + moved * interval);
}
