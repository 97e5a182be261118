/**
 * kafkajs 2.2.4 (its last release) schedules a "check the pending requests" timer on every broker
 * connection after each request it sends or answers, even when nothing is pending. Unthrottled,
 * the delay it computes is negative, so the timer fires after 1 ms, and each check schedules the
 * next: every connection wakes its process about a thousand times a second for as long as it
 * lives (kafkajs issues #1556 and #1704; the fix, pull request #1667, was never released).
 *
 * Measured on the distributed bench: the ingress (usage producer) spent about 30 ms of CPU per
 * idle second on it, billing and alerting (consumers) 30–48 ms, and under load the extra
 * wake-ups land between the requests' own work.
 *
 * `fixRequestQueueTimer` replaces the scheduling with the one from that fix: a check is scheduled
 * only while requests are pending or a broker throttle is to be waited out, exactly as before in
 * those cases. Applied once, before any Kafka client is created (`createKafka` does).
 */

/** The parts of kafkajs's `RequestQueue` (src/network/requestQueue) the fix touches. */
export interface RequestQueueInternals {
  pending: unknown[];
  throttledUntil: number;
  throttleCheckTimeoutId: NodeJS.Timeout | null | undefined;
  checkPendingRequests(): void;
  scheduleCheckPendingRequests(): void;
}

/** kafkajs's own interval for pending requests when no throttle applies. */
const CHECK_PENDING_REQUESTS_INTERVAL_MS = 10;

let fixed = false;

/** kafkajs's `RequestQueue` class (not part of its public API; the fix needs its prototype). */
export function requestQueueClass(): { prototype: RequestQueueInternals } {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- an internal module of kafkajs, not exported by its typings
  return require('kafkajs/src/network/requestQueue') as { prototype: RequestQueueInternals };
}

export function fixRequestQueueTimer(): void {
  if (fixed) return;
  const { prototype } = requestQueueClass();
  if (typeof prototype.scheduleCheckPendingRequests !== 'function' || typeof prototype.checkPendingRequests !== 'function') {
    throw new Error('kafkajs RequestQueue has changed: review libs/usage/src/kafka/request-queue-timer.ts for this kafkajs version');
  }
  prototype.scheduleCheckPendingRequests = function scheduleCheckPendingRequests(this: RequestQueueInternals): void {
    if (this.throttleCheckTimeoutId) return;
    const throttledForMs = this.throttledUntil - Date.now();
    // Nothing pending and no throttle: the next request to arrive, or to be answered, checks.
    if (this.pending.length === 0 && throttledForMs <= 0) return;
    const delayMs = throttledForMs > 0 ? throttledForMs : CHECK_PENDING_REQUESTS_INTERVAL_MS;
    this.throttleCheckTimeoutId = setTimeout(() => {
      this.throttleCheckTimeoutId = null;
      this.checkPendingRequests();
    }, delayMs);
  };
  fixed = true;
}
