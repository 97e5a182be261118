/**
 * Runs `task` every `everyMs` until the returned function is called. Injected so tests drive time;
 * `task` returns its work's promise so they can wait for it.
 */
export type Repeat = (task: () => Promise<void>, everyMs: number) => () => void;

/** `setInterval`, unreferenced: a pending renewal never keeps a process alive. */
export const repeatEvery: Repeat = (task, everyMs) => {
  const timer = setInterval(() => void task(), everyMs);
  timer.unref();
  return () => clearInterval(timer);
};

/**
 * How often a live request renews its reservation: three times per ttl, so a renewal that fails
 * (Redis slow for a moment) or runs late (a busy event loop) is followed by another before the
 * reservation expires.
 */
export function renewalIntervalMs(ttlMs: number): number {
  return Math.max(1, Math.floor(ttlMs / 3));
}
