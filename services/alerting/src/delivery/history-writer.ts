import type { AlertHistoryEntry, AlertHistoryStore, Logger } from '@openrouter/observability';

/** Entries appended to the store in one write at most. */
const BATCH = 1_000;

/**
 * Writes alert history in the background: entries are buffered and appended in batches; a failed
 * write is retried with backoff (the buffer is bounded, the oldest entries go first when it is
 * full), so a slow or absent store never holds up evaluation.
 */
export class HistoryWriter {
  private buffer: AlertHistoryEntry[] = [];
  /** The write under way; it says whether its batch was written. */
  private writing: Promise<boolean> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private delay: number;
  /** Closing: what is buffered is written batch after batch, a failed write not retried. */
  private closing = false;
  private closed = false;

  constructor(
    private readonly store: Pick<AlertHistoryStore, 'append'> | undefined,
    private readonly logger: Logger,
    private readonly limit = 10_000,
    private readonly initialDelayMs = 500,
    private readonly maxDelayMs = 60_000,
  ) {
    this.delay = initialDelayMs;
  }

  append(entries: readonly AlertHistoryEntry[]): void {
    if (!this.store || entries.length === 0 || this.closed) return;
    this.buffer.push(...entries);
    if (this.buffer.length > this.limit) {
      const dropped = this.buffer.splice(0, this.buffer.length - this.limit);
      this.logger.error(
        { dropped: dropped.length, first: dropped.slice(0, 20).map((e) => ({ at: e.at, alert: e.alertId, status: e.status })) },
        'alert history buffer full: oldest entries dropped',
      );
    }
    if (!this.timer) this.flush();
  }

  /** Resolves when everything buffered so far is written (or the store keeps failing and `close` gives up). */
  async flushed(): Promise<void> {
    while ((this.buffer.length > 0 || this.writing) && !this.closed) {
      await (this.writing ?? new Promise<void>((done) => setTimeout(done, 20)));
    }
  }

  /**
   * Writes what is buffered, batch after batch, for up to `timeoutMs`: the entries appended while
   * it does are written too (the outcomes of deliveries the shutdown ends come last), but a write
   * that fails is not tried again. Nothing is written after.
   */
  async close(timeoutMs = 5_000): Promise<void> {
    this.closing = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((done) => {
      timer = setTimeout(() => done(false), timeoutMs);
      timer.unref();
    });
    while (this.buffer.length > 0 || this.writing) {
      this.flush();
      if (!(await Promise.race([this.writing ?? Promise.resolve(false), timedOut]))) break;
    }
    clearTimeout(timer);
    // No retry after the close: the store may be closed too, and a replica that stood by would
    // otherwise keep a writer retrying (and its buffer) for every time it lost the lease.
    this.closed = true;
    if (this.buffer.length > 0) this.logger.warn({ entries: this.buffer.length }, 'alert history left unwritten at shutdown');
  }

  private flush(): void {
    if (this.writing || !this.store || this.closed || this.buffer.length === 0) return;
    const batch = this.buffer.slice(0, BATCH);
    this.writing = this.store
      .append(batch)
      .then(
        () => {
          // By identity: the buffer may have been trimmed while the batch was written.
          const written = new Set(batch);
          this.buffer = this.buffer.filter((e) => !written.has(e));
          this.delay = this.initialDelayMs;
          return true;
        },
        (error: unknown) => {
          if (this.closed) return false;
          if (this.closing) {
            this.logger.warn({ err: error, entries: batch.length }, 'alert history not written at shutdown');
            return false;
          }
          this.logger.warn({ err: error, entries: batch.length, retryInMs: this.delay }, 'alert history not written; retrying');
          this.timer = setTimeout(() => {
            this.timer = undefined;
            this.flush();
          }, this.delay);
          this.timer.unref();
          this.delay = Math.min(this.delay * 2, this.maxDelayMs);
          return false;
        },
      )
      .then((written) => {
        this.writing = undefined;
        // The next batch, unless a retry waits (or, closing, the write failed: `close` stops).
        if (written) this.flush();
        return written;
      });
  }
}
