import { createLogger } from '@openrouter/observability';
import { MemoryAccessRepository } from './access.repository';
import { KeyUses } from './key-uses';

const logger = createLogger('key-uses-spec', 'silent');

/** A store whose writes fail while `down`, and whose writes can be held to answer later. */
class FlakyStore extends MemoryAccessRepository {
  down = false;
  hold: Promise<void> | undefined;
  writes = 0;

  override async recordKeyUses(uses: ReadonlyMap<string, number>): Promise<void> {
    this.writes += 1;
    await this.hold;
    if (this.down) throw new Error('store away');
    return super.recordKeyUses(uses);
  }
}

describe('KeyUses', () => {
  let now = 1_000;
  const clock = (): number => now;

  it('shows a use at once on the replica that noted it, and writes it to the store at the next flush', async () => {
    const store = new FlakyStore();
    const uses = new KeyUses(store, logger, 30_000, clock);
    uses.note('key_a');
    expect(await uses.lastUsed(['key_a', 'key_b'])).toEqual(new Map([['key_a', 1_000]]));
    expect(await store.keysLastUsed(['key_a'])).toEqual(new Map());
    await uses.flush();
    expect(await store.keysLastUsed(['key_a'])).toEqual(new Map([['key_a', 1_000]]));
    // Nothing new: no write.
    await uses.flush();
    expect(store.writes).toBe(1);
  });

  it('keeps the uses of a failed write for the next one, under any newer use noted meanwhile', async () => {
    const store = new FlakyStore();
    const uses = new KeyUses(store, logger, 30_000, clock);
    now = 2_000;
    uses.note('key_a');
    uses.note('key_b');
    store.down = true;
    let release = (): void => undefined;
    store.hold = new Promise<void>((resolve) => (release = resolve));
    const failing = uses.flush();
    now = 3_000;
    uses.note('key_a');
    release();
    await failing;
    store.down = false;
    store.hold = undefined;
    await uses.flush();
    expect(await store.keysLastUsed(['key_a', 'key_b'])).toEqual(new Map([['key_a', 3_000], ['key_b', 2_000]]));
  });

  it('writes what is left when it closes, but waits for a store that hangs only so long', async () => {
    const store = new FlakyStore();
    const uses = new KeyUses(store, logger, 30_000, clock);
    uses.note('key_a');
    await uses.close();
    expect(await store.keysLastUsed(['key_a'])).toEqual(new Map([['key_a', now]]));

    const hanging = new FlakyStore();
    hanging.hold = new Promise<void>(() => undefined);
    const stuck = new KeyUses(hanging, logger, 30_000, clock);
    stuck.note('key_a');
    jest.useFakeTimers();
    try {
      let closed = false;
      const closing = stuck.close(50).then(() => void (closed = true));
      // The write is tried, and close() waits for it up to its 50 ms, then resolves with the store still hanging.
      await jest.advanceTimersByTimeAsync(49);
      expect(hanging.writes).toBe(1);
      expect(closed).toBe(false);
      await jest.advanceTimersByTimeAsync(1);
      expect(closed).toBe(true);
      await closing;
    } finally {
      jest.useRealTimers();
    }
  });
});
