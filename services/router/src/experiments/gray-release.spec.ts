import { configWith, ManualClock, TWO_MODELS } from '../routing/test-engine.testing';
import { GrayRelease } from './gray-release';

function releaseConfig(steps: Array<{ afterMinutes: number; percent: number }>) {
  const release = configWith(TWO_MODELS, { grayReleases: [{ id: 'gr', target: 'cheap', baseline: 'cheap', canary: 'premium', steps, rollback: { minRequests: 10, errorRateMargin: 0.1 } }] }).routing.grayReleases[0];
  if (!release) throw new Error('no gray release configured');
  return release;
}

describe('GrayRelease status', () => {
  it('is completed only once the last step sends the canary everything; a last step below 100 % stays active', () => {
    const clock = new ManualClock();
    const partial = new GrayRelease(releaseConfig([{ afterMinutes: 0, percent: 10 }, { afterMinutes: 60, percent: 50 }]), clock);
    const whole = new GrayRelease(releaseConfig([{ afterMinutes: 0, percent: 10 }, { afterMinutes: 60, percent: 100 }]), clock);
    expect([partial.status(), whole.status()]).toEqual(['active', 'active']);
    clock.advance(61 * 60_000);
    expect(partial.state()).toMatchObject({ status: 'active', canaryPercent: 50, step: 2 });
    expect(whole.state()).toMatchObject({ status: 'completed', canaryPercent: 100, step: 2 });
  });
});

describe('GrayRelease.failAfterSuccess', () => {
  it('counts a call whose success is taken back once, as an error, with its latency out of the p95', () => {
    const clock = new ManualClock();
    const release = new GrayRelease(releaseConfig([{ afterMinutes: 0, percent: 50 }]), clock);
    for (let i = 0; i < 10; i++) release.record('baseline', true, 5_000);
    const calls = Array.from({ length: 9 }, () => release.record('canary', true, 5_000));
    release.record('canary', true, 100);
    clock.advance(1000);
    for (const call of calls) release.failAfterSuccess(call);
    // Nine of ten canary calls failed after all: 90 % errors, and only the one that ended well is timed.
    expect(release.stats('canary')).toMatchObject({ requests: 10, errors: 9 });
    expect(Math.abs(release.stats('canary').p95LatencyMs - 100)).toBeLessThanOrEqual(3);
    expect(release.state()).toMatchObject({ status: 'rolled_back', rollbackReason: expect.stringContaining('error rate') });
  });

  it('counts a success that has left the window as a new error when it fails', () => {
    const clock = new ManualClock();
    const release = new GrayRelease(releaseConfig([{ afterMinutes: 0, percent: 50 }]), clock);
    const call = release.record('canary', true, 100);
    clock.advance(release.config.rollback.windowMs + 60_000);
    release.failAfterSuccess(call);
    expect(release.stats('canary')).toMatchObject({ requests: 1, errors: 1, p95LatencyMs: 0 });
  });
});

describe('GrayRelease judged on the fleet’s counts', () => {
  const REQUESTS = 0;
  const ERRORS = 1;
  const windowBucket = (release: GrayRelease, at: number): number => Math.floor(at / (release.config.rollback.windowMs / 20));

  it('without sharing, judges on its own calls and says so', () => {
    const release = new GrayRelease(releaseConfig([{ afterMinutes: 0, percent: 50 }]), new ManualClock());
    release.record('canary', false, 0);
    expect(release.countsToShare()).toBeUndefined();
    expect(release.state()).toMatchObject({ statsScope: 'replica', statsReadAtMs: 0, canaryStats: { requests: 1, errors: 1 } });
  });

  it('judges on the fleet’s counts as read plus its own calls of no batch yet, never its own twice', () => {
    const clock = new ManualClock();
    const release = new GrayRelease(releaseConfig([{ afterMinutes: 0, percent: 50 }]), clock);
    release.shareCounts();
    expect(release.state()).toMatchObject({ statsScope: 'replica' });
    for (let i = 0; i < 3; i++) release.record('canary', false, 0);
    const toShare = release.countsToShare();
    if (!toShare) throw new Error('a shared release has counts to share');
    expect(toShare.batch.deltas.canary.get(windowBucket(release, clock.now()))).toEqual(new Map([[REQUESTS, 3], [ERRORS, 3]]));
    // Two more while the batch is on its way: not in it, so not in what the store answers.
    release.record('canary', false, 0);
    release.record('canary', false, 0);
    // The store's answer: the batch, plus six calls (all errors) from other replicas.
    const bucket = windowBucket(release, clock.now());
    release.adoptFleetCounts(toShare.batch, { baseline: new Map(), canary: new Map([[bucket, new Map([[REQUESTS, 9], [ERRORS, 9]])]]) });
    expect(release.state()).toMatchObject({ statsScope: 'fleet', statsReadAtMs: clock.now(), canaryStats: { requests: 11, errors: 11 } });
    expect(release.countsToShare()?.batch.deltas.canary.get(bucket)).toEqual(new Map([[REQUESTS, 2], [ERRORS, 2]]));
  });

  it('rolls back on the fleet’s counts when they are read, without a call of its own', () => {
    const clock = new ManualClock();
    const release = new GrayRelease(releaseConfig([{ afterMinutes: 0, percent: 50 }]), clock);
    release.shareCounts();
    const toShare = release.countsToShare();
    if (!toShare) throw new Error('a shared release has counts to share');
    const bucket = windowBucket(release, clock.now());
    release.adoptFleetCounts(toShare.batch, { baseline: new Map([[bucket, new Map([[REQUESTS, 10]])]]), canary: new Map([[bucket, new Map([[REQUESTS, 10], [ERRORS, 5]])]]) });
    expect(release.state()).toMatchObject({ status: 'rolled_back', rollbackReason: expect.stringContaining('error rate 50.0%') });
  });
});

describe('GrayRelease sharing with the fleet', () => {
  const REQUESTS = 0;
  const ERRORS = 1;
  const bucketMs = (release: GrayRelease): number => release.config.rollback.windowMs / 20;
  const windowBucket = (release: GrayRelease, at: number): number => Math.floor(at / bucketMs(release));

  it('takes a success back in the bucket it was counted in, not the bucket of its time, after the clock stepped back', () => {
    const clock = new ManualClock();
    const release = new GrayRelease(releaseConfig([{ afterMinutes: 0, percent: 50 }]), clock);
    release.shareCounts();
    release.record('baseline', true, 100);
    const newest = windowBucket(release, clock.now());
    clock.advance(-2 * bucketMs(release));
    const call = release.record('canary', true, 100);
    release.failAfterSuccess(call);
    expect(release.stats('canary')).toMatchObject({ requests: 1, errors: 1, p95LatencyMs: 0 });
    // The window counted it in its newest bucket, which is where it is taken back, for the fleet too.
    expect(release.countsToShare()?.batch.deltas.canary).toEqual(new Map([[newest, new Map([[REQUESTS, 1], [ERRORS, 1]])]]));
    expect(call.bucket).toBe(newest);
  });

  it('reports what the fleet’s counters may not hold: the calls not sent, then those of a batch not acknowledged too', () => {
    const clock = new ManualClock();
    const release = new GrayRelease(releaseConfig([{ afterMinutes: 0, percent: 50 }]), clock);
    release.shareCounts();
    release.record('canary', false, 0);
    release.record('canary', false, 0);
    expect(release.state()).toMatchObject({ canaryUnshared: { requests: 2, errors: 2 }, baselineUnshared: { requests: 0, errors: 0 } });
    // A round whose answer never came: its batch is still this replica's, and so is the call since.
    const sent = release.countsToShare();
    if (!sent) throw new Error('a shared release has counts to share');
    release.record('canary', true, 100);
    expect(release.state()).toMatchObject({ canaryStats: { requests: 3, errors: 2 }, canaryUnshared: { requests: 3, errors: 2, p95LatencyMs: expect.any(Number) } });
    // The next round: the batch is sent again and applied; four calls of other replicas come back with it.
    expect(release.countsToShare()?.batch).toBe(sent.batch);
    const bucket = windowBucket(release, clock.now());
    release.adoptFleetCounts(sent.batch, { baseline: new Map(), canary: new Map([[bucket, new Map([[REQUESTS, 6], [ERRORS, 6]])]]) });
    expect(release.state()).toMatchObject({ statsScope: 'fleet', canaryStats: { requests: 7, errors: 6 }, canaryUnshared: { requests: 1, errors: 0 } });
    // Not shared at all: nothing to report apart.
    const alone = new GrayRelease(releaseConfig([{ afterMinutes: 0, percent: 50 }]), clock);
    alone.record('canary', false, 0);
    expect(alone.state()).toMatchObject({ baselineUnshared: undefined, canaryUnshared: undefined });
  });

  it('reports a success taken back after it was shared as an error apart, with no latency of its own', () => {
    const clock = new ManualClock();
    const release = new GrayRelease(releaseConfig([{ afterMinutes: 0, percent: 50 }]), clock);
    release.shareCounts();
    const call = release.record('canary', true, 100);
    const sent = release.countsToShare();
    if (!sent) throw new Error('a shared release has counts to share');
    release.adoptFleetCounts(sent.batch, sent.batch.deltas);
    release.failAfterSuccess(call);
    expect(release.state()).toMatchObject({ canaryStats: { requests: 1, errors: 1, p95LatencyMs: 0 }, canaryUnshared: { requests: 0, errors: 1, p95LatencyMs: 0 } });
  });

  it('stops sharing once rolled back: the calls counted until then are sent, then no batch any more; its own calls since are reported as not shared until they leave the window', () => {
    const clock = new ManualClock();
    const release = new GrayRelease(releaseConfig([{ afterMinutes: 0, percent: 50 }]), clock);
    release.shareCounts();
    release.record('canary', false, 0);
    release.adoptRollback({ at: clock.now(), reason: 'rolled back by another router' });
    release.record('baseline', true, 100);
    const last = release.countsToShare();
    expect(last?.batch.deltas).toEqual({ baseline: new Map(), canary: new Map([[windowBucket(release, clock.now()), new Map([[REQUESTS, 1], [ERRORS, 1]])]]) });
    if (!last) throw new Error('the calls before the rollback are still sent');
    release.adoptFleetCounts(last.batch, last.batch.deltas);
    expect(release.countsToShare()).toBeUndefined();
    release.record('baseline', true, 100);
    expect(release.countsToShare()).toBeUndefined();
    expect(release.state()).toMatchObject({ status: 'rolled_back', baselineStats: { requests: 2 }, baselineUnshared: { requests: 2 }, canaryUnshared: { requests: 0 } });
    clock.advance(release.config.rollback.windowMs + bucketMs(release));
    expect(release.countsToShare()).toBeUndefined();
    expect(release.state()).toMatchObject({ baselineUnshared: { requests: 0 }, canaryUnshared: { requests: 0 } });
    // Calls it was never meant to share are not reported as dropped.
    expect(release.takeDroppedCalls()).toBe(0);
  });

  it('stops sharing once completed with no baseline call left in the fleet’s window, not before it read the fleet’s counts', () => {
    const clock = new ManualClock();
    const release = new GrayRelease(releaseConfig([{ afterMinutes: 0, percent: 50 }, { afterMinutes: 60, percent: 100 }]), clock);
    release.shareCounts();
    clock.advance(61 * 60_000);
    expect(release.status()).toBe('completed');
    // Never read the fleet's counts: other replicas' baseline calls may be in the window.
    const first = release.countsToShare();
    if (!first) throw new Error('a completed release that never read the fleet still shares');
    release.adoptFleetCounts(first.batch, { baseline: new Map([[windowBucket(release, clock.now()), new Map([[REQUESTS, 12]])]]), canary: new Map() });
    // The fleet's baseline calls can still roll the canary back: it goes on sharing.
    clock.advance(10 * bucketMs(release));
    release.record('canary', true, 100);
    const next = release.countsToShare();
    if (!next) throw new Error('a completed release with baseline calls in the window still shares');
    expect(next.batch.seq).toBe(1);
    release.adoptFleetCounts(next.batch, { baseline: new Map([[windowBucket(release, clock.now()) - 10, new Map([[REQUESTS, 12]])]]), canary: next.batch.deltas.canary });
    // Those baseline calls left the window: the canary call counted until then is still sent, then nothing.
    clock.advance(11 * bucketMs(release));
    release.record('canary', true, 100);
    const last = release.countsToShare();
    if (!last) throw new Error('the calls counted until the release was judged no more are still sent');
    expect(last.batch.seq).toBe(2);
    release.adoptFleetCounts(last.batch, { baseline: new Map(), canary: new Map([...next.batch.deltas.canary, ...last.batch.deltas.canary]) });
    expect(release.countsToShare()).toBeUndefined();
    release.record('canary', false, 0);
    expect(release.countsToShare()).toBeUndefined();
    expect(release.state()).toMatchObject({ canaryStats: { requests: 3, errors: 1 }, canaryUnshared: { requests: 1, errors: 1 } });
  });
});
