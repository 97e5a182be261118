import type { UsageBatchHandler, UsageMessage } from '@openrouter/usage';

interface Waiter {
  messages: UsageMessage[];
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Joins the chunks that partitions hand in at about the same time into one handler call, so the
 * partitions of a fetch become one ClickHouse insert instead of one each: every insert writes a
 * part in each table and its views, and parts are merged later, so fewer and larger inserts cost
 * much less. One call runs at a time; chunks that arrive meanwhile wait and go together in the
 * next, up to `maxEvents` messages (a chunk is never split). Each submitter learns the outcome of
 * the call that carried its chunk: it commits only after that call stored it, and on failure
 * retries its own chunk, so the guarantees of a plain handler call are kept.
 */
export class UsageBatchCoalescer {
  private readonly waiting: Waiter[] = [];
  private running = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly handler: UsageBatchHandler,
    private readonly maxEvents: number,
    /** How long the first chunk waits for the other partitions of its fetch when no call runs. */
    private readonly lingerMs: number,
  ) {}

  readonly handle: UsageBatchHandler = (messages) =>
    new Promise<void>((resolve, reject) => {
      this.waiting.push({ messages, resolve, reject });
      if (this.running) return;
      if (this.waitingEvents() >= this.maxEvents || this.lingerMs === 0) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.lingerMs);
    });

  private waitingEvents(): number {
    let events = 0;
    for (const w of this.waiting) events += w.messages.length;
    return events;
  }

  private flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.running || this.waiting.length === 0) return;
    const group: Waiter[] = [];
    let events = 0;
    while (this.waiting.length > 0) {
      const next = this.waiting[0];
      if (!next || (group.length > 0 && events + next.messages.length > this.maxEvents)) break;
      group.push(next);
      events += next.messages.length;
      this.waiting.shift();
    }
    const messages = group.length === 1 ? (group[0]?.messages ?? []) : group.flatMap((w) => w.messages);
    this.running = true;
    void this.handler(messages).then(
      () => this.settle(group, undefined),
      (error: unknown) => this.settle(group, error ?? new Error('usage batch failed')),
    );
  }

  private settle(group: Waiter[], error: unknown): void {
    this.running = false;
    for (const w of group) {
      if (error === undefined) w.resolve();
      else w.reject(error);
    }
    // What arrived during the call goes now, without another linger.
    this.flush();
  }
}
