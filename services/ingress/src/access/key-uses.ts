import type { Logger } from '@openrouter/observability';
import type { AccessRepository } from './access.repository';

/** How often a replica writes the uses it saw, by default: a key's `last_used_at` is this late at most. */
export const KEY_USE_FLUSH_MS = 30_000;

/**
 * When each key was last used, for the admin API's `last_used_at`. A request only notes the time in
 * this replica's memory; the uses seen since the last write go to the store together every
 * `flushMs`, where a time only ever moves forward, so replicas writing in any order keep the latest.
 * A write that fails keeps its uses for the next one. Uses seen but not yet written are lost if the
 * replica dies: at most `flushMs` of them, and only their time, never a request.
 */
export class KeyUses {
  /** Uses noted since the last write (key id → its latest time here). */
  private pending = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private lastWarning = 0;
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly repository: Pick<AccessRepository, 'recordKeyUses' | 'keysLastUsed'>,
    private readonly logger: Logger,
    private readonly flushMs = KEY_USE_FLUSH_MS,
    private readonly clock: () => number = Date.now,
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.flush(), this.flushMs);
    this.timer.unref();
  }

  /** A request of this key was admitted now. */
  note(keyId: string): void {
    this.pending.set(keyId, this.clock());
  }

  /** Writes the uses noted since the last write; one write at a time. */
  flush(): Promise<void> {
    this.flushing ??= this.write().finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  private async write(): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    try {
      await this.repository.recordKeyUses(batch);
    } catch (error) {
      // Put back under anything newer noted meanwhile: the next write carries them.
      for (const [id, at] of batch) if (at > (this.pending.get(id) ?? 0)) this.pending.set(id, at);
      if (this.clock() - this.lastWarning >= 60_000) {
        this.lastWarning = this.clock();
        this.logger.warn({ err: error, keys: this.pending.size }, 'could not record when keys were last used; kept for the next write');
      }
    }
  }

  /**
   * When each key was last used (ms since the epoch): the later of the stored time and a use this
   * replica noted and has not written yet. Undefined for a key never used since it was recorded.
   * Throws when the store cannot be read.
   */
  async lastUsed(ids: readonly string[]): Promise<Map<string, number>> {
    const stored = await this.repository.keysLastUsed(ids);
    for (const id of ids) {
      const here = this.pending.get(id);
      if (here !== undefined && here > (stored.get(id) ?? 0)) stored.set(id, here);
    }
    return stored;
  }

  /** Stops the timer and writes what is left, waiting `waitMs` at most: a store that is away must not hold up a shutdown. */
  async close(waitMs = 2_000): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    let timeout: NodeJS.Timeout | undefined;
    await Promise.race([this.flush(), new Promise<void>((resolve) => (timeout = setTimeout(resolve, waitMs)))]);
    clearTimeout(timeout);
  }
}
