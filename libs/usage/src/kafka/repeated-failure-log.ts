import { performance } from 'node:perf_hooks';

/** How a failure of something retried is to be logged. */
export interface FailureLogLine {
  level: 'warn' | 'debug';
  /** Failures in a row, this one included. */
  failures: number;
  /** Since the first of them. */
  failingForMs: number;
}

/** Distinct messages remembered per run of failures (errors naming brokers in turn repeat anyway). */
const MAX_MESSAGES = 20;

/**
 * Keeps a retried operation's failures visible without a line per retry: the first failure, one
 * with a message not seen before in this run of failures, and at least one every `everyMs` while
 * they go on are warnings; the others debug.
 */
export class RepeatedFailureLog {
  private failures = 0;
  private firstAt = 0;
  private warnedAt = 0;
  private readonly messages = new Set<string>();

  constructor(
    private readonly everyMs: number,
    /** Monotonic (a step of the wall clock would bunch or stop the warnings). */
    private readonly clock: () => number = () => performance.now(),
  ) {}

  failed(error: unknown): FailureLogLine {
    const now = this.clock();
    const message = error instanceof Error ? error.message : String(error);
    if (this.failures === 0) this.firstAt = now;
    this.failures++;
    const fresh = !this.messages.has(message) && this.messages.size < MAX_MESSAGES;
    if (fresh) this.messages.add(message);
    const warn = this.failures === 1 || fresh || now - this.warnedAt >= this.everyMs;
    if (warn) this.warnedAt = now;
    return { level: warn ? 'warn' : 'debug', failures: this.failures, failingForMs: now - this.firstAt };
  }

  /** The operation succeeded: the failures in a row it ends (0 when there were none). */
  succeeded(): number {
    const failures = this.failures;
    this.failures = 0;
    this.messages.clear();
    return failures;
  }
}
