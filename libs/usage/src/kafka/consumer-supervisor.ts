import type { Consumer } from 'kafkajs';
import type { Logger } from '@openrouter/observability';

/** The first wait before a stopped consumer is tried again; each failed try doubles it. */
const FIRST_RESTART_DELAY_MS = 1_000;
/** The longest wait between tries. */
const MAX_RESTART_DELAY_MS = 60_000;
/**
 * How long a fresh consumer must run before its stop is a new one (logged as an error, backoff from
 * the start). Before, a crash is the same stop going on: with several brokers a fresh consumer can
 * fetch from a healthy one before the broker holding an unreadable batch fails it.
 */
const STABLE_RUN_MS = 2 * MAX_RESTART_DELAY_MS;

/** What stopped a consumer: the error's name and, for the Kafka client's own errors, its message. */
export interface ConsumerFailure {
  name: string;
  message: string;
}

/** A supervised consumer's state, as readiness shows it (instants as ISO text). */
export type ConsumerStatus =
  | { state: 'starting' }
  | { state: 'running'; since: string }
  | {
      state: 'stopped';
      /** When the consumer stopped (the first failure of this run of failures). */
      since: string;
      error: ConsumerFailure;
      /** Fresh consumers that failed since, each the same way or another. */
      failedRestarts: number;
      /** When the next fresh consumer starts; null while one is starting. */
      nextAttemptAt: string | null;
      /** What the error most likely means for an operator, when it is a known one. */
      hint?: string;
    }
  | { state: 'closed' };

/** One consumer's run as the supervisor drives it: a kafkajs consumer (`kafkaConsumerRun`), a fake in specs. */
export interface ConsumerRun {
  /** Every crash the client reports; `restart` is false when it gave up on this consumer for good. */
  onCrash(listener: (error: unknown, restart: boolean) => void): void;
  /** Every fetch that returned: its records were read. */
  onFetch(listener: () => void): void;
  /** Connects, subscribes and runs the consumer. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** A kafkajs consumer as a `ConsumerRun`; `start` connects, subscribes and runs it. */
export function kafkaConsumerRun(consumer: Consumer, start: (consumer: Consumer) => Promise<void>): ConsumerRun {
  return {
    onCrash(listener) {
      consumer.on(consumer.events.CRASH, (event) => listener(event.payload.error, event.payload.restart));
    },
    onFetch(listener) {
      consumer.on(consumer.events.FETCH, () => listener());
    },
    start: () => start(consumer),
    stop: () => consumer.disconnect(),
  };
}

export interface ConsumerSupervisorOptions {
  /** The consumer group, for logs. */
  group: string;
  /** A fresh consumer, not started: the first, and one after each stop. */
  create: () => ConsumerRun;
  logger: Logger;
  now?: () => number;
}

/**
 * Keeps a Kafka consumer consuming, and says so when it is not. kafkajs restarts a consumer
 * itself after a retriable error, but after a non-retriable one (a record batch it cannot decode,
 * an authorization refused) it disconnects it for good and only reports a crash. The supervisor
 * then marks the consumer stopped, logs the cause once as an error and starts a fresh consumer
 * after a backoff (1 s doubling to 60 s), for as long as it takes: the operator may remove the
 * cause. A fresh consumer counts as running only once a fetch returned, so one that fails the
 * same way again (a batch it cannot read, still at the group's offset) never shows as running.
 */
export class ConsumerSupervisor {
  private current: ConsumerRun | undefined;
  private state: 'starting' | 'running' | 'stopped' | 'closed' = 'starting';
  private since = 0;
  private failure: ConsumerFailure = { name: '', message: '' };
  private failedRestarts = 0;
  private nextAttemptAt: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Set while a consumer that came back has not yet run for `STABLE_RUN_MS`. */
  private probation: NodeJS.Timeout | undefined;
  /** When the current run of failures began (kept across a short-lived recovery). */
  private stoppedSince = 0;
  private readonly now: () => number;

  constructor(private readonly options: ConsumerSupervisorOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Starts the first consumer; an error of its start is thrown (the service cannot start). */
  async start(): Promise<void> {
    const run = this.launch();
    await run.start();
    // Closed while it started: the client may have connected again after the stop.
    if (this.closed()) await run.stop().catch(() => undefined);
    // A crash while starting (a refused group join) has already marked it stopped.
    if (this.state === 'starting' && run === this.current) this.enter('running');
  }

  isRunning(): boolean {
    return this.state === 'running';
  }

  status(): ConsumerStatus {
    const at = (ms: number): string => new Date(ms).toISOString();
    switch (this.state) {
      case 'starting':
      case 'closed':
        return { state: this.state };
      case 'running':
        return { state: 'running', since: at(this.since) };
      case 'stopped': {
        const hint = hintFor(this.failure);
        return {
          state: 'stopped',
          since: at(this.since),
          error: { ...this.failure },
          failedRestarts: this.failedRestarts,
          nextAttemptAt: this.nextAttemptAt === undefined ? null : at(this.nextAttemptAt),
          ...(hint ? { hint } : {}),
        };
      }
    }
  }

  async close(): Promise<void> {
    this.state = 'closed';
    clearTimeout(this.timer);
    this.timer = undefined;
    clearTimeout(this.probation);
    this.probation = undefined;
    await this.current?.stop().catch(() => undefined);
  }

  private launch(): ConsumerRun {
    const run = this.options.create();
    this.current = run;
    run.onCrash((error, restart) => {
      if (run === this.current && !restart) this.stopped(error);
    });
    run.onFetch(() => {
      if (run === this.current && this.state === 'stopped' && this.nextAttemptAt === undefined) this.recovered();
    });
    return run;
  }

  private stopped(error: unknown): void {
    if (this.state === 'closed') return;
    const failure = failureOf(error);
    const { group, logger } = this.options;
    const relapse = this.state === 'running' && this.probation !== undefined;
    if (relapse) {
      // Back for a moment only: the same stop goes on, with its backoff and without a new error line.
      clearTimeout(this.probation);
      this.probation = undefined;
      this.state = 'stopped';
      this.since = this.stoppedSince;
    }
    if (this.state === 'stopped') {
      this.failedRestarts++;
      const same = failure.name === this.failure.name && failure.message === this.failure.message;
      this.failure = failure;
      const delay = this.delay();
      logger.warn(
        { group, failure, failedRestarts: this.failedRestarts, stoppedSince: new Date(this.since).toISOString(), retryInMs: delay },
        same
          ? 'Kafka consumer still stopped: a fresh consumer failed the same way (a cause still there, e.g. a batch it cannot read at the group offset)'
          : 'Kafka consumer still stopped: a fresh consumer failed',
      );
      this.schedule(delay);
      return;
    }
    this.enter('stopped');
    this.stoppedSince = this.since;
    this.failure = failure;
    this.failedRestarts = 0;
    const delay = this.delay();
    const hint = hintFor(failure);
    logger.error({ group, failure, retryInMs: delay, ...(hint ? { hint } : {}) }, 'Kafka consumer stopped: the client gave up on it after a non-retriable error; nothing is consumed until a fresh consumer runs');
    this.schedule(delay);
  }

  private recovered(): void {
    const stoppedForMs = this.now() - this.since;
    this.options.logger.info({ group: this.options.group, failure: this.failure, failedRestarts: this.failedRestarts, stoppedForMs }, 'Kafka consumer running again');
    this.enter('running');
    // The failures are forgotten once it has run for a while.
    clearTimeout(this.probation);
    this.probation = setTimeout(() => {
      this.probation = undefined;
      this.failedRestarts = 0;
    }, STABLE_RUN_MS);
    this.probation.unref();
  }

  private delay(): number {
    return Math.min(FIRST_RESTART_DELAY_MS * 2 ** Math.min(this.failedRestarts, 16), MAX_RESTART_DELAY_MS);
  }

  private schedule(delay: number): void {
    clearTimeout(this.timer);
    this.nextAttemptAt = this.now() + delay;
    this.timer = setTimeout(() => void this.restart(), delay);
    this.timer.unref();
  }

  /** Replaces the stopped consumer with a fresh one; a start that throws is one more failure. */
  private async restart(): Promise<void> {
    this.timer = undefined;
    this.nextAttemptAt = undefined;
    await this.current?.stop().catch(() => undefined);
    if (this.state !== 'stopped') return;
    const run = this.launch();
    try {
      await run.start();
      // Closed while it started: the client may have connected again after the stop.
      if (this.closed()) await run.stop().catch(() => undefined);
    } catch (error) {
      // Unless a crash of this consumer already counted (and scheduled the next try).
      if (run === this.current && this.state === 'stopped' && this.nextAttemptAt === undefined) this.stopped(error);
    }
  }

  /** Read as a call: `close()` may have run during an await, which narrowing cannot see. */
  private closed(): boolean {
    return this.state === 'closed';
  }

  private enter(state: 'running' | 'stopped'): void {
    this.state = state;
    this.since = this.now();
    this.nextAttemptAt = undefined;
  }
}

/**
 * An error as readiness and logs show it. The Kafka client's own errors describe the protocol or
 * the client (`LZ4 compression not implemented`), so their message is kept; any other error could
 * quote a record (a parser's message does), so only its name is.
 */
export function failureOf(error: unknown): ConsumerFailure {
  if (!(error instanceof Error)) return { name: typeof error, message: '' };
  return { name: error.name, message: error.name.startsWith('KafkaJS') ? error.message : '' };
}

/** What a known failure means for an operator. */
function hintFor(failure: ConsumerFailure): string | undefined {
  if (failure.name === 'KafkaJSNotImplemented' && /compression not implemented/i.test(failure.message)) {
    return "a record batch is compressed with a codec the gateway's Kafka client cannot read (it reads gzip and uncompressed); set the topic's compression.type back to producer and move the group's offset past those batches (docs/usage-pipeline.md)";
  }
  return undefined;
}
