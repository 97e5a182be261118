import { ManualClock } from '../routing/test-engine.testing';
import { CircuitBreaker } from '../resilience/circuit-breaker';
import { DeploymentStats } from './deployment-stats';
import { binnedPercentile, LATENCY_BINS, latencyBin, latencyOfBin, SlidingWindow } from './sliding-window';

describe('SlidingWindow', () => {
  const start = Date.parse('2025-06-01T00:00:00Z');

  it('sums each field over the window and forgets a bucket once the window has passed it', () => {
    const window = new SlidingWindow(10_000, 2, 10);
    window.add(start, 0);
    window.add(start + 500, 1, 7);
    window.add(start + 4_000, 0, 2);
    expect([window.total(start + 4_000, 0), window.total(start + 4_000, 1)]).toEqual([3, 7]);
    // The first bucket (start .. start + 1 s) leaves the window 10 s after it began.
    expect([window.total(start + 9_999, 0), window.total(start + 9_999, 1)]).toEqual([3, 7]);
    expect([window.total(start + 10_000, 0), window.total(start + 10_000, 1)]).toEqual([2, 0]);
    expect(window.total(start + 14_000, 0)).toBe(0);
  });

  it('keeps adding into the ring as time goes round it many times', () => {
    const window = new SlidingWindow(1_000, 1, 4);
    // One event every 10 ms for 10 s: the window always holds 75 to 100 of them.
    for (let t = 0; t < 10_000; t += 10) {
      window.add(start + t, 0);
      const held = window.total(start + t, 0);
      expect(held).toBeGreaterThanOrEqual(Math.min(t / 10 + 1, 76));
      expect(held).toBeLessThanOrEqual(100);
    }
  });

  it('drops everything when the clock jumps past the window, and stays put when it steps back less than the window', () => {
    const window = new SlidingWindow(10_000, 1);
    window.add(start, 0, 5);
    window.add(start + 3_000, 0, 5);
    expect(window.total(start + 60_000, 0)).toBe(0);
    window.add(start + 60_000, 0);
    window.add(start + 55_000, 0);
    expect(window.total(start + 55_000, 0)).toBe(2);
    expect(window.total(start + 60_000, 0)).toBe(2);
    expect(window.totalsAt(start + 70_000)[0]).toBe(0);
  });

  it('starts over when the clock steps back further than the window, and slides on from there', () => {
    const window = new SlidingWindow(60_000, 1);
    for (let i = 0; i < 301; i++) window.add(start + i * 100, 0);
    expect(window.total(start + 30_000, 0)).toBe(301);
    // Set back an hour: what the window held lies in its future, and would stay until the clock caught up.
    const back = start - 3_600_000;
    expect(window.total(back, 0)).toBe(0);
    expect(window.add(back, 0)).toBe(window.bucketOf(back));
    expect(window.bucketsAt(back)).toEqual({ oldest: window.bucketOf(back) - 19, newest: window.bucketOf(back) });
    expect(window.total(back + 59_999, 0)).toBe(1);
    expect(window.total(back + 60_000, 0)).toBe(0);
  });

  it('keeps its span when it is shorter than its number of buckets', () => {
    const window = new SlidingWindow(5, 1);
    window.add(start, 0);
    expect(window.total(start + 4, 0)).toBe(1);
    expect(window.total(start + 5, 0)).toBe(0);
  });

  it('cuts time into buckets counted from the epoch, the same in every process, and adds to one by its index', () => {
    const window = new SlidingWindow(10_000, 1, 10);
    const other = new SlidingWindow(10_000, 1, 10);
    expect(window.add(start + 2_500, 0)).toBe(window.bucketOf(start + 2_500));
    expect(window.bucketOf(start + 2_500)).toBe(Math.floor((start + 2_500) / 1_000));
    expect(other.bucketOf(start + 2_999)).toBe(window.bucketOf(start + 2_000));
    const newest = window.bucketOf(start + 9_000);
    expect(window.bucketsAt(start + 9_000)).toEqual({ oldest: newest - 9, newest });
    expect(window.addToBucket(newest - 9, start + 9_000, 0, 4)).toBe(true);
    expect(window.addToBucket(newest - 10, start + 9_000, 0, 4)).toBe(false);
    expect(window.addToBucket(newest + 1, start + 9_000, 0, 4)).toBe(false);
    expect(window.total(start + 9_000, 0)).toBe(5);
    // A clock that stepped back adds to the newest bucket, and says so.
    expect(window.add(start + 1_000, 0)).toBe(newest);
  });

  it('empties on clear', () => {
    const window = new SlidingWindow(10_000, 2);
    window.add(start, 0, 3);
    window.add(start, 1, 4);
    window.clear();
    expect([...window.totalsAt(start)]).toEqual([0, 0]);
    window.add(start + 20_000, 0);
    expect(window.total(start + 20_000, 0)).toBe(1);
  });
});

describe('latency bins', () => {
  it('read a percentile within 2.5 % of the exact one', () => {
    const counts = new Float64Array(LATENCY_BINS);
    const values: number[] = [];
    for (let i = 1; i <= 1_000; i++) {
      const ms = 3 + ((i * 7919) % 2_000) * 1.37;
      values.push(ms);
      const bin = latencyBin(ms);
      counts[bin] = (counts[bin] ?? 0) + 1;
    }
    values.sort((a, b) => a - b);
    for (const q of [0.5, 0.95, 0.99]) {
      const exact = values[Math.ceil(q * values.length) - 1] ?? 0;
      expect(Math.abs(binnedPercentile(counts, 0, q) - exact) / exact).toBeLessThanOrEqual(0.025);
    }
  });

  it('cover below a millisecond and above an hour, and read 0 when empty', () => {
    expect(latencyBin(0)).toBe(0);
    expect(latencyBin(Number.NaN)).toBe(0);
    expect(latencyBin(10 * 3_600_000)).toBe(LATENCY_BINS - 1);
    expect(latencyOfBin(LATENCY_BINS - 1)).toBeGreaterThan(3_600_000);
    expect(binnedPercentile(new Float64Array(LATENCY_BINS), 0, 0.95)).toBe(0);
  });
});

describe('windows of the router', () => {
  it('a breaker opens on the error rate within its window, not on errors that left it', () => {
    const clock = new ManualClock();
    const breaker = new CircuitBreaker({ consecutiveFailures: 100, errorRate: 0.5, minRequests: 10, windowMs: 30_000, cooldownMs: 5_000 }, clock);
    for (let i = 0; i < 4; i++) {
      breaker.success();
      breaker.success();
      breaker.failure();
    }
    expect(breaker.snapshot()).toMatchObject({ state: 'closed', windowRequests: 12 });
    expect(breaker.snapshot().windowErrorRate).toBeCloseTo(1 / 3);
    clock.advance(31_000);
    expect(breaker.snapshot()).toMatchObject({ windowRequests: 0, windowErrorRate: 0 });
    // 1 failure in 10, then failures until half the window failed: the 8th makes 9 of 18.
    for (let i = 0; i < 9; i++) breaker.success();
    breaker.failure();
    for (let i = 0; i < 7; i++) breaker.failure();
    expect(breaker.current()).toBe('closed');
    breaker.failure();
    expect(breaker.current()).toBe('open');
  });

  it('a breaker and a deployment’s capacity count nothing from before the clock was set back an hour', () => {
    const clock = new ManualClock();
    const breaker = new CircuitBreaker({ consecutiveFailures: 100, errorRate: 0.5, minRequests: 10, windowMs: 30_000, cooldownMs: 5_000 }, clock);
    const stats = new DeploymentStats(0.2);
    for (let i = 0; i < 301; i++) {
      stats.begin(clock.now(), 10);
      breaker.success();
    }
    for (let i = 0; i < 9; i++) breaker.failure();
    clock.advance(-3_600_000);
    expect(stats.usage(clock.now())).toEqual({ requests: 0, tokens: 0 });
    expect(breaker.snapshot()).toMatchObject({ windowRequests: 0 });
    // Counting goes on from the new time: 10 failures in 10 calls open it.
    breaker.failure();
    expect(breaker.current()).toBe('closed');
    for (let i = 0; i < 9; i++) breaker.failure();
    expect(breaker.current()).toBe('open');
  });

  it('a deployment counts the requests and tokens of the last minute', () => {
    const clock = new ManualClock();
    const stats = new DeploymentStats(0.2);
    for (let i = 0; i < 30; i++) {
      stats.begin(clock.now(), 100);
      clock.advance(1_000);
    }
    expect(stats.usage(clock.now())).toEqual({ requests: 30, tokens: 3_000 });
    clock.advance(45_000);
    // Between 45 and 60 s old: what is left is the newest quarter, give or take a 3 s bucket.
    const { requests, tokens } = stats.usage(clock.now());
    expect(requests).toBeGreaterThanOrEqual(12);
    expect(requests).toBeLessThanOrEqual(15);
    expect(tokens).toBe(requests * 100);
    clock.advance(60_000);
    expect(stats.usage(clock.now())).toEqual({ requests: 0, tokens: 0 });
  });
});
