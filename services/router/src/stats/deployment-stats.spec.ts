import { LiveStats, UNKNOWN_LATENCY_MS } from './deployment-stats';

describe('LiveStats.expectedLatency', () => {
  const stats = (): LiveStats => new LiveStats({ now: () => 0 });

  it('expects the prior, else a second, of a deployment not measured yet', () => {
    const live = stats();
    expect(live.expectedLatency('d', true, 300)).toBe(300);
    expect(live.expectedLatency('d', false, undefined)).toBe(UNKNOWN_LATENCY_MS);
  });

  it('expects a stream to start as streams started, and a whole answer to take what whole answers took, never the other kind', () => {
    const live = stats();
    // Only long whole answers so far: a stream still expects the prior, not 20 s to its first token.
    live.of('d').observeFirstEvent(20_000, false);
    expect(live.expectedLatency('d', false, 100)).toBe(20_000);
    expect(live.expectedLatency('d', true, 100)).toBe(100);
    // Only quick first tokens so far: a whole answer expects the prior, not 50 ms.
    live.of('e').observeFirstEvent(50, true);
    expect(live.expectedLatency('e', true, 2_000)).toBe(50);
    expect(live.expectedLatency('e', false, 2_000)).toBe(2_000);
  });

  it('averages each kind on its own (EWMA)', () => {
    const live = stats();
    live.of('d').observeFirstEvent(100, true);
    live.of('d').observeFirstEvent(200, true);
    expect(live.expectedLatency('d', true, undefined)).toBeCloseTo(120);
  });

  it('ignores a time that is negative or not a number (a wall clock set back mid-call), so ranking stays sound', () => {
    const live = stats();
    live.of('d').observeFirstEvent(100, true);
    live.of('d').observeFirstEvent(100, false);
    for (const ms of [-719_360, Number.NaN, Number.POSITIVE_INFINITY]) {
      live.of('d').observeFirstEvent(ms, true);
      live.of('d').observeFirstEvent(ms, false);
      live.of('d').observeLatency(ms);
    }
    expect(live.expectedLatency('d', true, undefined)).toBe(100);
    expect(live.expectedLatency('d', false, undefined)).toBe(100);
    expect(live.of('d').p95()).toBe(100);
  });
});
