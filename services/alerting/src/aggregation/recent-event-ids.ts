/**
 * The ids of the usage events seen lately, so that each event is counted once. Delivery is at
 * least once (a send that timed out and then the outbox's replay of it, the requests of a batch
 * sent again, offsets not yet committed read again after a rebalance), and every copy carries the
 * event's id.
 *
 * Bounded twice. By age: an id is kept for `retainMs` after it was first seen, the span of the
 * widest window; a copy that comes later is of an event that ended before it, outside every
 * window. By count: at most `maxIds` (the oldest forgotten first), so memory stays bounded under
 * heavy traffic, when copies must come within `maxIds` events of their original to be caught.
 */
export class RecentEventIds {
  /** First seen at, in insertion order (so the oldest are first). */
  private readonly firstSeen = new Map<string, number>();

  constructor(
    private readonly maxIds: number,
    private readonly retainMs: number,
  ) {}

  get size(): number {
    return this.firstSeen.size;
  }

  /** True when `id` was seen already (a copy); otherwise remembers it and returns false. */
  seen(id: string, now: number): boolean {
    this.forgetBefore(now - this.retainMs);
    if (this.firstSeen.has(id)) return true;
    this.firstSeen.set(id, now);
    if (this.firstSeen.size > this.maxIds) {
      const oldest = this.firstSeen.keys().next();
      if (!oldest.done) this.firstSeen.delete(oldest.value);
    }
    return false;
  }

  private forgetBefore(cutoff: number): void {
    for (const [id, at] of this.firstSeen) {
      if (at >= cutoff) return;
      this.firstSeen.delete(id);
    }
  }
}
