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
