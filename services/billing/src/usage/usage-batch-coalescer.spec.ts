import type { UsageMessage } from '@openrouter/usage';
import { UsageBatchCoalescer } from './usage-batch-coalescer';

const message = (key: string): UsageMessage => ({ key, value: Buffer.from(key), headers: {} });
const chunk = (prefix: string, n: number): UsageMessage[] => Array.from({ length: n }, (_, i) => message(`${prefix}${i}`));

/** A handler that records its calls and settles each when the test says so. */
class ControlledHandler {
  readonly calls: UsageMessage[][] = [];
  private readonly pending: Array<{ resolve: () => void; reject: (error: Error) => void }> = [];

  readonly handle = (messages: UsageMessage[]): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      this.calls.push(messages);
      this.pending.push({ resolve, reject });
    });

  succeed(): void {
    this.pending.shift()?.resolve();
  }

  fail(error: Error): void {
    this.pending.shift()?.reject(error);
  }
}

/** A coalescer over a plain handler: nothing prepared ahead, the chunks of a store concatenated. */
const coalescerOver = (handler: (messages: UsageMessage[]) => Promise<void>, maxEvents: number, lingerMs: number): UsageBatchCoalescer<UsageMessage[]> =>
  new UsageBatchCoalescer<UsageMessage[]>({ prepare: (messages) => messages, store: (chunks) => handler(chunks.flat()) }, maxEvents, lingerMs);

/** Lets queued promise callbacks and immediate timers run. */
const settle = (): Promise<void> => new Promise((done) => setImmediate(done));

describe('UsageBatchCoalescer', () => {
  afterEach(() => {
    jest.useRealTimers();
  });

  it('stores the chunks that arrive together in one call and resolves each', async () => {
    jest.useFakeTimers();
    const handler = new ControlledHandler();
    const coalescer = coalescerOver(handler.handle, 100, 1);
    const done = [coalescer.handle(chunk('a', 3)), coalescer.handle(chunk('b', 2)), coalescer.handle(chunk('c', 1))];
    // Held for the linger (1 ms), then stored together.
    expect(handler.calls).toEqual([]);
    await jest.advanceTimersByTimeAsync(1);
    expect(handler.calls.map((c) => c.map((m) => m.key))).toEqual([['a0', 'a1', 'a2', 'b0', 'b1', 'c0']]);
    handler.succeed();
    await expect(Promise.all(done)).resolves.toEqual([undefined, undefined, undefined]);
  });

  it('runs one call at a time and sends what arrived meanwhile next, up to the limit, never splitting a chunk', async () => {
    const handler = new ControlledHandler();
    const coalescer = coalescerOver(handler.handle, 5, 0);
    const first = coalescer.handle(chunk('a', 2));
    await settle();
    const later = [coalescer.handle(chunk('b', 3)), coalescer.handle(chunk('c', 2)), coalescer.handle(chunk('d', 4))];
    await settle();
    expect(handler.calls).toHaveLength(1);
    handler.succeed();
    await first;
    await settle();
    expect(handler.calls.map((c) => c.length)).toEqual([2, 5]);
    handler.succeed();
    await Promise.all(later.slice(0, 2));
    await settle();
    expect(handler.calls.map((c) => c.length)).toEqual([2, 5, 4]);
    handler.succeed();
    await later[2];
  });

  it('rejects every chunk of a failed call, so none of them is committed, and goes on with the next', async () => {
    jest.useFakeTimers();
    const handler = new ControlledHandler();
    const coalescer = coalescerOver(handler.handle, 100, 1);
    const a = coalescer.handle(chunk('a', 1));
    const b = coalescer.handle(chunk('b', 1));
    await jest.advanceTimersByTimeAsync(1);
    expect(handler.calls).toHaveLength(1);
    handler.fail(new Error('clickhouse is down'));
    await expect(a).rejects.toThrow('clickhouse is down');
    await expect(b).rejects.toThrow('clickhouse is down');
    // The retry of one partition's chunk is stored on its own.
    const retry = coalescer.handle(chunk('a', 1));
    await jest.advanceTimersByTimeAsync(1);
    expect(handler.calls).toHaveLength(2);
    handler.succeed();
    await expect(retry).resolves.toBeUndefined();
  });

  it('prepares each chunk as it arrives, while a store runs, and stores the prepared chunks together', async () => {
    const prepared: string[] = [];
    const stores: string[][][] = [];
    const pending: Array<() => void> = [];
    const coalescer = new UsageBatchCoalescer<string[]>(
      {
        prepare: (messages) => {
          const keys = messages.map((m) => m.key);
          prepared.push(keys.join(','));
          return keys;
        },
        store: (chunks) =>
          new Promise<void>((resolve) => {
            stores.push(chunks);
            pending.push(resolve);
          }),
      },
      100,
      0,
    );
    const first = coalescer.handle(chunk('a', 2));
    const second = coalescer.handle(chunk('b', 1));
    const third = coalescer.handle(chunk('c', 1));
    // b and c were prepared when they arrived, before a's store finished.
    expect(prepared).toEqual(['a0,a1', 'b0', 'c0']);
    expect(stores).toEqual([[['a0', 'a1']]]);
    pending.shift()?.();
    await first;
    await settle();
    expect(stores[1]).toEqual([['b0'], ['c0']]);
    pending.shift()?.();
    await expect(Promise.all([second, third])).resolves.toEqual([undefined, undefined]);
  });

  it('rejects a chunk whose preparation throws, without holding up the others', async () => {
    const coalescer = new UsageBatchCoalescer<number>(
      {
        prepare: (messages) => {
          if (messages[0]?.key === 'bad0') throw new Error('cannot encode');
          return messages.length;
        },
        store: () => Promise.resolve(),
      },
      100,
      0,
    );
    await expect(coalescer.handle(chunk('bad', 1))).rejects.toThrow('cannot encode');
    await expect(coalescer.handle(chunk('ok', 2))).resolves.toBeUndefined();
  });
});
