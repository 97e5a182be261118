import type { Logger, ReadinessCheck } from '@openrouter/observability';

export interface DependencyWaitOptions<T> {
  /** The dependency as log lines and `/ready` name it, e.g. `the usage store (ClickHouse)`. */
  what: string;
  /** Where it is, as it may be shown: never with credentials. */
  location: string;
  /** The setting that says where it is, e.g. `usage.clickhouse.url / CLICKHOUSE_URL`. */
  setting: string;
  /** One try: reach the dependency and set it up (e.g. apply migrations); what it resolves with is `ready`'s value. */
  attempt: () => Promise<T>;
  /**
   * Why an error of `attempt` passes by itself (the dependency is not up yet), in a few words; undefined
   * when it does not (a refused credential, a failed migration): the wait ends with that error.
   */
  outage: (error: unknown) => string | undefined;
  /** Once the dependency is up, whether it still answers (for `/ready`). */
  live?: () => Promise<boolean>;
  logger: Logger;
  /** Backoff between tries: doubled after each, from `initialDelayMs` up to `maxDelayMs`. */
  initialDelayMs: number;
  maxDelayMs: number;
  /** Aborted when the service is told to stop while it starts (a signal): the wait stops, as `stop()`. */
  signal?: AbortSignal | undefined;
}

/** A dependency that cannot be used for a reason that does not pass by itself: a configuration error. */
export class DependencyError extends Error {
  constructor(message: string, options: { cause: unknown }) {
    super(message, options);
    this.name = 'DependencyError';
  }
}

/**
 * Waits for a dependency that may come up after the service (a store started alongside it): tries,
 * and while it fails for a reason that passes by itself, tries again with backoff. It logs one
 * warning when it starts failing and one line when it gets through, none per try, and its readiness
 * check says what is awaited, where, and why meanwhile. Any other failure ends the wait: `ready`
 * rejects with a `DependencyError` naming the dependency, where it is and the setting.
 */
export class DependencyWait<T> {
  readonly ready: Promise<T>;
  private state: 'waiting' | 'ready' | 'failed' = 'waiting';
  private tries = 0;
  private lastError: string | undefined;
  private readonly since = Date.now();
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;

  constructor(private readonly options: DependencyWaitOptions<T>) {
    const { signal } = options;
    if (signal?.aborted) this.stopped = true;
    else signal?.addEventListener('abort', () => this.stop(), { once: true });
    this.ready = this.run();
    // Awaited by the start once it has listened; a failure before that is not unhandled meanwhile.
    this.ready.catch(() => undefined);
  }

  /**
   * Gives up (the service closes before the dependency came): no more tries, and `ready` rejects —
   * also when a try already under way gets through afterwards (the service is going away).
   */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.wake?.();
  }

  /** `/ready`'s check: failing until the dependency is up (and while it does not answer after), with what is awaited. */
  readiness(name: string): ReadinessCheck {
    const { what, location, setting, live } = this.options;
    return {
      name,
      check: async () => this.state === 'ready' && (live ? await live() : true),
      details: async () => ({
        dependency: what,
        location,
        state: this.state,
        ...(this.state === 'ready' ? {} : { setting, tries: this.tries, waitingForMs: Date.now() - this.since, ...(this.lastError ? { lastError: this.lastError } : {}) }),
      }),
    };
  }

  private async run(): Promise<T> {
    const { what, location, setting, logger } = this.options;
    let delay = this.options.initialDelayMs;
    for (;;) {
      if (this.stopped) throw new DependencyError(`stopped while waiting for ${what} at ${location}`, { cause: undefined });
      this.tries++;
      let value: T;
      try {
        value = await this.options.attempt();
      } catch (error) {
        if (this.stopped) throw new DependencyError(`stopped while waiting for ${what} at ${location}`, { cause: error });
        const outage = this.options.outage(error);
        if (outage === undefined) {
          this.state = 'failed';
          this.lastError = messageOf(error);
          throw new DependencyError(`${what} at ${location} (${setting}) cannot be used, and this does not pass by itself: ${this.lastError}`, { cause: error });
        }
        this.lastError = outage;
        // Once: the tries that follow are the same story, and `/ready` tells it meanwhile.
        if (this.tries === 1) logger.warn({ dependency: what, location, setting, reason: outage }, `${what} is not reachable at ${location} (${setting}): ${outage}; not ready, trying again with backoff until it is`);
        await new Promise<void>((done) => {
          this.wake = done;
          this.timer = setTimeout(done, delay);
        });
        if (this.stopped) throw new DependencyError(`stopped while waiting for ${what} at ${location}`, { cause: error });
        delay = Math.min(delay * 2, this.options.maxDelayMs);
        continue;
      }
      // Stopped while this try was under way: the start is going away, whatever the try found.
      if (this.stopped) throw new DependencyError(`stopped while waiting for ${what} at ${location}`, { cause: undefined });
      this.state = 'ready';
      if (this.tries > 1) logger.info({ dependency: what, location, tries: this.tries, waitedMs: Date.now() - this.since }, `${what} at ${location} is reachable; going on with the start`);
      return value;
    }
  }
}

function messageOf(error: unknown): string {
  // By shape: an error of Node's own may not be this realm's Error (a test's VM context).
  const message = (error as { message?: unknown } | undefined)?.message;
  return typeof message === 'string' ? message : String(error);
}
