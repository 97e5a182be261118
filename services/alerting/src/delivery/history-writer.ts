import type { AlertHistoryEntry, AlertHistoryStore, Logger } from '@openrouter/observability';

/**
 * Writes alert history in the background: entries are buffered and appended in batches; a failed
 * write is retried with backoff (the buffer is bounded, the oldest entries go first when it is
 * full), so a slow or absent store never holds up evaluation.
 */
export class HistoryWriter {
  private buffer: AlertHistoryEntry[] = [];
  private writing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private delay: number;
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
      await (this.writing ?? new Promise((done) => setTimeout(done, 20)));
    }
  }

  async close(timeoutMs = 5_000): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.buffer.length > 0 && !this.writing) this.flush();
    await Promise.race([this.writing ?? Promise.resolve(), new Promise((done) => setTimeout(done, timeoutMs).unref())]);
    // No retry after the close: the store may be closed too, and a replica that stood by would
    // otherwise keep a writer retrying (and its buffer) for every time it lost the lease.
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.buffer.length > 0) this.logger.warn({ entries: this.buffer.length }, 'alert history left unwritten at shutdown');
  }

  private flush(): void {
    if (this.writing || !this.store || this.closed) return;
    const store = this.store;
    const batch = this.buffer.slice(0, 1_000);
    this.writing = store
      .append(batch)
      .then(
        () => {
          // By identity: the buffer may have been trimmed while the batch was written.
          const written = new Set(batch);
          this.buffer = this.buffer.filter((e) => !written.has(e));
          this.delay = this.initialDelayMs;
        },
        (error: unknown) => {
          if (this.closed) return;
          this.logger.warn({ err: error, entries: batch.length, retryInMs: this.delay }, 'alert history not written; retrying');
          this.timer = setTimeout(() => {
            this.timer = undefined;
            this.flush();
          }, this.delay);
          this.timer.unref();
          this.delay = Math.min(this.delay * 2, this.maxDelayMs);
        },
      )
      .finally(() => {
        this.writing = undefined;
        if (this.buffer.length > 0 && !this.timer && !this.closed) this.flush();
      });
  }
}
