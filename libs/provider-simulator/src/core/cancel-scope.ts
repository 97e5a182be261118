/**
 * Per-request cancellation: every timer a request starts is registered here so a client
 * disconnect (or server shutdown) clears it instead of letting generation run on.
 */
export class CancelScope {
  private cancelledFlag = false;
  private readonly listeners = new Set<() => void>();

  get cancelled(): boolean {
    return this.cancelledFlag;
  }

  cancel(): void {
    if (this.cancelledFlag) return;
    this.cancelledFlag = true;
    for (const listener of this.listeners) listener();
    this.listeners.clear();
  }

  /** Resolves true after `ms`, or false as soon as the scope is cancelled. */
  delay(ms: number): Promise<boolean> {
    if (this.cancelledFlag) return Promise.resolve(false);
    return new Promise((resolve) => {
      const onCancel = (): void => {
        clearTimeout(timer);
        resolve(false);
      };
      const timer = setTimeout(() => {
        this.listeners.delete(onCancel);
        resolve(true);
      }, ms);
      this.listeners.add(onCancel);
    });
  }

  /** Resolves once the scope is cancelled (used to never answer). */
  whenCancelled(): Promise<void> {
    if (this.cancelledFlag) return Promise.resolve();
    return new Promise((resolve) => this.listeners.add(resolve));
  }
}
