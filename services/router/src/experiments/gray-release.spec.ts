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
