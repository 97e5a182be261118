import { CancelScope } from './cancel-scope';
import { deliverFrames, type FrameSink, type PacedFrame } from './stream-pacer';

function recordingSink(): FrameSink & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    write: (text) => calls.push(`write:${text}`),
    end: (text) => calls.push(`end:${text}`),
    drop: (text) => calls.push(`drop:${text}`),
  };
}

const frames: PacedFrame[] = [{ text: 'H' }, { text: 'a', tokenStep: 0 }, { text: 'b', tokenStep: 1 }, { text: 'c', tokenStep: 2 }, { text: 'F' }];

describe('stream pacer', () => {
  it('coalesces an unpaced stream into one end()', async () => {
    const sink = recordingSink();
    await expect(deliverFrames(frames, { ttftMs: 0, tokensPerSecond: 0 }, new CancelScope(), sink)).resolves.toBe('completed');
    expect(sink.calls).toEqual(['end:HabcF']);
  });

  it('drops after the requested number of token frames', async () => {
    const drop = async (tokens: number): Promise<string[]> => {
      const sink = recordingSink();
      await expect(deliverFrames(frames, { ttftMs: 0, tokensPerSecond: 0, dropAfterTokens: tokens }, new CancelScope(), sink)).resolves.toBe('dropped');
      return sink.calls;
    };
    await expect(drop(0)).resolves.toEqual(['drop:H']);
    await expect(drop(2)).resolves.toEqual(['drop:Hab']);
    await expect(drop(99)).resolves.toEqual(['drop:Habc']);
  });

  describe('with fake timers', () => {
    beforeEach(() => jest.useFakeTimers());
    afterEach(() => jest.useRealTimers());

    it('waits ttft for the first token and 1/tps between tokens', async () => {
      const sink = recordingSink();
      const done = deliverFrames(frames, { ttftMs: 100, tokensPerSecond: 10 }, new CancelScope(), sink);
      await jest.advanceTimersByTimeAsync(0);
      expect(sink.calls).toEqual(['write:H']);
      await jest.advanceTimersByTimeAsync(99);
      expect(sink.calls).toEqual(['write:H']);
      await jest.advanceTimersByTimeAsync(1);
      expect(sink.calls).toEqual(['write:H', 'write:a']);
      await jest.advanceTimersByTimeAsync(100);
      expect(sink.calls).toEqual(['write:H', 'write:a', 'write:b']);
      await jest.advanceTimersByTimeAsync(100);
      await expect(done).resolves.toBe('completed');
      expect(sink.calls).toEqual(['write:H', 'write:a', 'write:b', 'end:cF']);
    });

    it('stops at once when cancelled, leaving no timer behind', async () => {
      const sink = recordingSink();
      const cancel = new CancelScope();
      const done = deliverFrames(frames, { ttftMs: 1000, tokensPerSecond: 1 }, cancel, sink);
      await jest.advanceTimersByTimeAsync(10);
      cancel.cancel();
      await expect(done).resolves.toBe('cancelled');
      expect(jest.getTimerCount()).toBe(0);
      expect(sink.calls).toEqual(['write:H']);
    });
  });
});
