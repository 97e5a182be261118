/**
 * How a request that found another already answering its cache entry ended its wait: the leader's
 * answer was stored (`value`: what was stored), or the request goes on to the provider itself
 * because the leader stored nothing (`abandoned`), took longer than the wait allows (`timed_out`),
 * or because its own client left (`cancelled`).
 */
export type WaitOutcome<T> = { outcome: 'stored'; value: T } | { outcome: 'abandoned' | 'timed_out' | 'cancelled' };

/** The leader's side of a flight: exactly one of these settles it, the first call wins. */
export interface Lead<T> {
  /** The answer is stored: every waiter is given `value`. */
  stored(value: T): void;
  /** Nothing will be stored (a failure, a cancelled call, an answer that may not be stored): every waiter goes on by itself. */
  abandon(): void;
  /**
   * Waits as the flight's waiters do, on their terms (`waitMs`, `signal`): for a leader whose own
   * answer comes from elsewhere (another process's flight it follows), which then settles this one.
   */
  follow(signal?: AbortSignal): Promise<WaitOutcome<T>>;
}

/** What joining a key gives: the lead, when no request was answering it; else the end of the wait for the one that was. */
export type Joined<T> = { lead: Lead<T>; wait?: undefined } | { lead?: undefined; wait: Promise<WaitOutcome<T>> };

interface Flight<T> {
  settled: Promise<WaitOutcome<T>>;
  settle(outcome: WaitOutcome<T>): void;
}

/**
 * Single flight for cache misses, within one process: the first request to miss an entry leads
 * (calls the provider), identical requests arriving while it does wait for it, each for at most
 * `waitMs` from its own arrival. A flight is settled once, by its leader, and forgotten then: a
 * request arriving after that leads a flight of its own. Waiters let go by an abandoned or timed-out
 * flight do not lead again: each goes on by itself, so an answer that cannot be stored (which
 * would be as unstorable for the next leader) never chains the waiters one after the other.
 */
export class CoalescedMisses<T> {
  private readonly flights = new Map<string, Flight<T>>();
  private waitingNow = 0;

  constructor(private readonly waitMs: number) {}

  /** Requests waiting for another's answer now. */
  get waiting(): number {
    return this.waitingNow;
  }

  /** Keys being answered now. */
  get inFlight(): number {
    return this.flights.size;
  }

  /**
   * Leads `key` when no request is answering it; else waits for the one that is, until its answer
   * is stored or abandoned, `waitMs` passed, or `signal` aborted (the waiter's client left).
   */
  join(key: string, signal?: AbortSignal): Joined<T> {
    const flight = this.flights.get(key);
    if (flight) return { wait: this.waitFor(flight, signal) };
    let settle!: (outcome: WaitOutcome<T>) => void;
    const settled = new Promise<WaitOutcome<T>>((resolve) => (settle = resolve));
    let open = true;
    const own: Flight<T> = {
      settled,
      settle: (outcome) => {
        if (!open) return;
        open = false;
        if (this.flights.get(key) === own) this.flights.delete(key);
        settle(outcome);
      },
    };
    this.flights.set(key, own);
    return {
      lead: {
        stored: (value) => own.settle({ outcome: 'stored', value }),
        abandon: () => own.settle({ outcome: 'abandoned' }),
        follow: (signal) => this.waitFor(own, signal),
      },
    };
  }

  private async waitFor(flight: Flight<T>, signal: AbortSignal | undefined): Promise<WaitOutcome<T>> {
    if (signal?.aborted) return { outcome: 'cancelled' };
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const timedOut = new Promise<WaitOutcome<T>>((resolve) => {
      timer = setTimeout(() => resolve({ outcome: 'timed_out' }), this.waitMs);
      // A waiter never keeps the process alive: shutdown drains the leader, and the waiter with it.
      timer.unref();
    });
    const cancelled = new Promise<WaitOutcome<T>>((resolve) => {
      onAbort = () => resolve({ outcome: 'cancelled' });
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    this.waitingNow++;
    try {
      return await Promise.race([flight.settled, timedOut, cancelled]);
    } finally {
      this.waitingNow--;
      clearTimeout(timer);
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    }
  }
}
