/**
 * Runs `work` at most once at a time, for work that must see what changed after it began (a
 * reload heard of while one is loading, a sync asked for during a round): a call while a run is
 * in flight gets the next run, which starts when that one ends, and every call meanwhile shares
 * it. However often it is asked, one run is in flight and one waits.
 */
export class Coalesced<T> {
  private running: Promise<T> | undefined;
  private waiting: Promise<T> | undefined;

  constructor(private readonly work: () => Promise<T>) {}

  run(): Promise<T> {
    if (!this.running) {
      this.running = this.work().finally(() => {
        this.running = undefined;
      });
      return this.running;
    }
    const again = (): Promise<T> => {
      this.waiting = undefined;
      return this.run();
    };
    this.waiting ??= this.running.then(again, again);
    return this.waiting;
  }

  /** Resolves once the run in flight and the one waiting (if any) have ended, however they ended. */
  async idle(): Promise<void> {
    await Promise.allSettled([this.running, this.waiting]);
  }
}
