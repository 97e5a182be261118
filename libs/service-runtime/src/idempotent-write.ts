import { handleAll, IterableBackoff, retry } from 'cockatiel';

/**
 * Waits before sending a write again: across a timeout, a reconnection or a failover of the
 * store. Three tries after the first, about five seconds in all.
 */
export const IDEMPOTENT_WRITE_RETRY_DELAYS_MS: readonly number[] = [250, 1_000, 4_000];

/**
 * Sends a write the store applies once however often it arrives (a settle, a release) until it is
 * taken: again after each of `delaysMs` while it fails, a failure that may have run (a timeout)
 * included. Rejects with the last failure when every try failed. Its timers do not hold the
 * process open.
 */
export function sendIdempotent<T>(send: () => Promise<T>, delaysMs: readonly number[] = IDEMPOTENT_WRITE_RETRY_DELAYS_MS): Promise<T> {
  if (delaysMs.length === 0) return send();
  const policy = retry(handleAll, { maxAttempts: delaysMs.length, backoff: new IterableBackoff(delaysMs) }).dangerouslyUnref();
  return policy.execute(() => send());
}
