import type { UsageBatchHandler, UsageMessage } from '@openrouter/usage';

/** A batch handler in two stages: see {@link UsageBatchCoalescer}. */
export interface StagedUsageHandler<P> {
  /** The CPU part (decode, encode), done as each chunk arrives. */
  prepare(messages: UsageMessage[]): P;
  /** The write, for chunks prepared so far, together; one call at a time. */
  store(prepared: P[]): Promise<void>;
}

interface Waiter<P> {
  prepared: P;
  size: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Joins the chunks that partitions hand in at about the same time into one store call, so the
 * partitions of a fetch become one ClickHouse insert instead of one each: every insert writes a
 * part in each table and its views, and parts are merged later, so fewer and larger inserts cost
 * much less. One store runs at a time; chunks that arrive meanwhile are prepared at once (decoded
 * and encoded while the store's write runs on ClickHouse's side) and go together in the next,
 * up to `maxEvents` messages (a chunk is never split). Each submitter learns the outcome of the
 * call that carried its chunk: it commits only after that call stored it, and on failure retries
 * its own chunk, so the guarantees of a plain handler call are kept.
 */
export class UsageBatchCoalescer<P> {
  private readonly waiting: Array<Waiter<P>> = [];
  private running = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly stages: StagedUsageHandler<P>,
    private readonly maxEvents: number,
    /** How long the first chunk waits for the other partitions of its fetch when no call runs. */
    private readonly lingerMs: number,
  ) {}

  readonly handle: UsageBatchHandler = (messages) =>
    new Promise<void>((resolve, reject) => {
      let prepared: P;
      try {
        prepared = this.stages.prepare(messages);
      } catch (error) {
        reject(error);
        return;
      }
      this.waiting.push({ prepared, size: messages.length, resolve, reject });
      if (this.running) return;
      if (this.waitingEvents() >= this.maxEvents || this.lingerMs === 0) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.lingerMs);
    });

  private waitingEvents(): number {
    let events = 0;
    for (const w of this.waiting) events += w.size;
    return events;
  }

  private flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.running || this.waiting.length === 0) return;
    const group: Array<Waiter<P>> = [];
    let events = 0;
    while (this.waiting.length > 0) {
      const next = this.waiting[0];
      if (!next || (group.length > 0 && events + next.size > this.maxEvents)) break;
      group.push(next);
      events += next.size;
      this.waiting.shift();
    }
    this.running = true;
    let storing: Promise<void>;
    try {
      storing = this.stages.store(group.map((w) => w.prepared));
    } catch (error) {
      storing = Promise.reject(error);
    }
    void storing.then(
      () => this.settle(group, undefined),
      (error: unknown) => this.settle(group, error ?? new Error('usage batch failed')),
    );
  }

  private settle(group: Array<Waiter<P>>, error: unknown): void {
    this.running = false;
    for (const w of group) {
      if (error === undefined) w.resolve();
      else w.reject(error);
    }
    // What arrived during the call goes now, without another linger.
    this.flush();
  }
}
