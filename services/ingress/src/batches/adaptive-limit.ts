/**
 * How many batch lines a replica runs at once: up to `batches.concurrency`, halved when a line is
 * refused for a reason that passes (the key's rate limits, a provider's 429 or 5xx), and grown back
 * by one line per `limit` answered lines (additive increase, multiplicative decrease, as TCP finds
 * its window). A batch then settles at the rate its key and providers take, instead of sending
 * `concurrency` lines into refusals and leaving the key's interactive traffic no room. One
 * decrease per `cooldownMs`: the lines refused together by one burst count once.
 */
export class AdaptiveLimit {
  private value: number;
  private lastDecrease = -Infinity;

  constructor(
    private readonly max: number,
    private readonly cooldownMs = 1_000,
    private readonly now: () => number = Date.now,
  ) {
    this.value = max;
  }

  /** Lines that may run now (at least 1). */
  get current(): number {
    return Math.max(1, Math.floor(this.value));
  }

  /** A line was answered (or refused for good: it was not the rate that failed it). */
  succeeded(): void {
    this.value = Math.min(this.max, this.value + 1 / this.current);
  }

  /** A line was refused for a reason that passes. */
  refused(): void {
    const now = this.now();
    if (now - this.lastDecrease < this.cooldownMs) return;
    this.lastDecrease = now;
    this.value = Math.max(1, this.current / 2);
  }
}
