import { configWith, contextFor, engineFor, ManualClock, planRequest, TWO_MODELS } from '../routing/test-engine.testing';
import { AbExperiments } from './ab-experiments';
import { GrayRelease } from './gray-release';

describe('A/B experiments', () => {
  const experiments = new AbExperiments([{ id: 'exp', target: 'm', stickiness: 'user', enabled: true, arms: [{ name: 'a', model: 'x', weight: 70 }, { name: 'b', model: 'y', weight: 30 }] }]);

  it('splits by weight within ±3% over 10k callers', () => {
    let a = 0;
    for (let i = 0; i < 10_000; i++) if (experiments.assign('m', contextFor({ endUser: `user-${i}` }), undefined)?.arm === 'a') a++;
    expect(Math.abs(a / 10_000 - 0.7)).toBeLessThan(0.03);
  });

  it('keeps a caller on its arm, by end user, then key', () => {
    for (let i = 0; i < 100; i++) {
      const first = experiments.assign('m', contextFor({ endUser: `u${i}`, requestId: 'r1' }), undefined);
      const again = experiments.assign('m', contextFor({ endUser: `u${i}`, requestId: 'r2' }), undefined);
      expect(again).toEqual(first);
    }
    expect(experiments.assign('m', contextFor({ keyId: 'k', requestId: 'x' }), undefined)).toEqual(experiments.assign('m', contextFor({ keyId: 'k', requestId: 'y' }), undefined));
    expect(experiments.assign('other', contextFor(), undefined)).toBeUndefined();
  });

  it("keeps the gateway's end user on its arm whatever the body's per-session `user` says", () => {
    for (let i = 0; i < 100; i++) {
      const arms = new Set(['s1', 's2', 's3', undefined].map((user) => experiments.assign('m', contextFor({ endUser: `alice-${i}`, requestId: `r-${user}` }), user)?.arm));
      expect(arms.size).toBe(1);
    }
    // A caller that sets no end user in its context is kept by the body's `user`.
    expect(experiments.assign('m', contextFor({ keyId: 'k', requestId: 'a' }), 'bob')).toEqual(experiments.assign('m', contextFor({ keyId: 'k2', requestId: 'b' }), 'bob'));
  });

  it('routes the arm and records it on the plan', () => {
    const engine = engineFor(configWith(TWO_MODELS, { experiments: [{ id: 'e1', target: 'premium', arms: [{ name: 'control', model: 'premium', weight: 1 }, { name: 'cheaper', model: 'cheap', weight: 1 }] }] }));
    const plans = Array.from({ length: 40 }, (_, i) => engine.planner.plan(planRequest('premium', { context: contextFor({ endUser: `u${i}` }) })));
    for (const plan of plans) expect(plan.candidates[0]?.model.id).toBe(plan.assignment?.arm === 'control' ? 'premium' : 'cheap');
    expect(new Set(plans.map((p) => p.assignment?.arm))).toEqual(new Set(['control', 'cheaper']));
  });

  it('lets a key allowed only the target use every arm, and names the target when the key may not use it', () => {
    const engine = engineFor(
      configWith(TWO_MODELS, {
        aliases: { both: { models: ['cheap', 'premium'] }, pair: { models: ['cheap'] } },
        experiments: [{ id: 'e1', target: 'pair', arms: [{ name: 'a', model: 'cheap', weight: 1 }, { name: 'b', model: 'premium', weight: 1 }] }],
        grayReleases: [{ id: 'g1', target: 'both', baseline: 'cheap', canary: 'premium', steps: [{ afterMinutes: 0, percent: 50 }] }],
      }),
    );
    for (const target of ['pair', 'both']) {
      const plans = Array.from({ length: 30 }, (_, i) => engine.planner.plan(planRequest(target, { context: contextFor({ endUser: `u${i}`, allowedModels: [target] }) })));
      expect(new Set(plans.map((p) => p.candidates[0]?.model.id))).toEqual(new Set(['cheap', 'premium']));
    }
    // The canary's fallback to its baseline is an arm too.
    const canary = Array.from({ length: 30 }, (_, i) => engine.planner.plan(planRequest('both', { context: contextFor({ endUser: `u${i}`, allowedModels: ['both'] }) }))).find((p) => p.assignment?.arm === 'canary');
    expect(canary?.candidates.map((c) => c.model.id)).toEqual(['premium', 'premium', 'cheap']);
    // A key that may not use the target gets a 404 naming what it asked for, not an arm's model.
    for (let i = 0; i < 10; i++) {
      expect(() => engine.planner.plan(planRequest('both', { context: contextFor({ endUser: `u${i}`, allowedModels: ['elsewhere'] }) }))).toThrow(
        expect.objectContaining({ kind: 'not_found', param: 'model', message: 'The model `both` does not exist or you do not have access to it.' }),
      );
    }
    // Permission for one member of the target covers that member only, not the other arm.
    const member = Array.from({ length: 30 }, (_, i) => engine.planner.plan(planRequest('pair', { context: contextFor({ endUser: `u${i}`, allowedModels: ['cheap'] }) })));
    expect(new Set(member.flatMap((p) => p.candidates.map((c) => c.model.id)))).toEqual(new Set(['cheap']));
  });

  it('rejects experiments on unknown names', () => {
    expect(() => configWith(TWO_MODELS, { experiments: [{ id: 'e', target: 'ghost', arms: [{ name: 'a', model: 'cheap', weight: 1 }, { name: 'b', model: 'premium', weight: 1 }] }] })).toThrow(/routing.experiments\[0\].target: unknown model or alias "ghost"/);
  });
});

describe('gray release', () => {
  const config = configWith(TWO_MODELS, {
    grayReleases: [{ id: 'gr', target: 'cheap', baseline: 'cheap', canary: 'premium', steps: [{ afterMinutes: 0, percent: 10 }, { afterMinutes: 60, percent: 50 }, { afterMinutes: 120, percent: 100 }], rollback: { minRequests: 10, errorRateMargin: 0.1 } }],
  }).routing.grayReleases[0];

  it('moves through its steps on schedule', () => {
    const clock = new ManualClock();
    const release = new GrayRelease(config!, clock);
    expect(release.state()).toMatchObject({ status: 'active', canaryPercent: 10, step: 1 });
    clock.advance(61 * 60_000);
    expect(release.state()).toMatchObject({ status: 'active', canaryPercent: 50, step: 2 });
    clock.advance(60 * 60_000);
    expect(release.state()).toMatchObject({ status: 'completed', canaryPercent: 100 });
  });

  it('sends about the step share to the canary, sticky per user', () => {
    const release = new GrayRelease(config!, new ManualClock());
    let canary = 0;
    for (let i = 0; i < 10_000; i++) if (release.assign(contextFor({ endUser: `u${i}` }), undefined).arm === 'canary') canary++;
    expect(Math.abs(canary / 10_000 - 0.1)).toBeLessThan(0.03);
  });

  it('rolls back when the canary errors more than the baseline by the margin', () => {
    const release = new GrayRelease(config!, new ManualClock());
    for (let i = 0; i < 20; i++) release.record('baseline', true, 100);
    for (let i = 0; i < 9; i++) release.record('canary', i % 3 !== 0, 100);
    expect(release.status()).toBe('active');
    release.record('canary', false, 100);
    expect(release.state()).toMatchObject({ status: 'rolled_back', canaryPercent: 0, rollbackReason: expect.stringContaining('error rate') });
    expect(release.assign(contextFor({ endUser: 'anyone' }), undefined).arm).toBe('baseline');
  });

  it('judges the canary on the rollback window only, with its p95 read to within 2.5 %', () => {
    const clock = new ManualClock();
    const release = new GrayRelease(config!, clock);
    for (let i = 0; i < 20; i++) release.record('baseline', true, 100);
    for (let i = 0; i < 9; i++) release.record('canary', false, 100);
    // Nine canary failures, then the five-minute window moves past them.
    clock.advance(301_000);
    for (let i = 0; i < 20; i++) release.record('baseline', i !== 0, 200);
    for (let i = 0; i < 10; i++) release.record('canary', true, 210);
    expect(release.state()).toMatchObject({ status: 'active', baselineStats: { requests: 20, errors: 1 }, canaryStats: { requests: 10, errors: 0 } });
    const { baselineStats, canaryStats } = release.state();
    expect(Math.abs((baselineStats?.p95LatencyMs ?? 0) - 200)).toBeLessThanOrEqual(5);
    expect(Math.abs((canaryStats?.p95LatencyMs ?? 0) - 210)).toBeLessThanOrEqual(6);
  });

  it('judges the canary only against a baseline with its own minimum of calls, so a completed release stays', () => {
    const clock = new ManualClock();
    const release = new GrayRelease(config!, clock);
    for (let i = 0; i < 20; i++) release.record('canary', i % 2 === 0, 100);
    for (let i = 0; i < 9; i++) release.record('baseline', true, 100);
    expect(release.status()).toBe('active');
    // The tenth baseline call makes the comparison possible, and makes it: a canary whose breaker
    // has opened takes no more calls to be judged on.
    release.record('baseline', true, 100);
    expect(release.state()).toMatchObject({ status: 'rolled_back', rollbackReason: expect.stringContaining('error rate') });

    // At 100 % no request is the baseline's: the canary's errors have nothing to be compared with.
    const completed = new GrayRelease(config!, clock);
    clock.advance(121 * 60_000);
    for (let i = 0; i < 20; i++) completed.record('canary', i % 10 !== 0, 100);
    expect(completed.state()).toMatchObject({ status: 'completed', canaryPercent: 100, canaryStats: { requests: 20, errors: 2 } });
  });

  it('rolls back on p95 latency', () => {
    const release = new GrayRelease(config!, new ManualClock());
    for (let i = 0; i < 20; i++) release.record('baseline', true, 100);
    for (let i = 0; i < 10; i++) release.record('canary', true, 400);
    expect(release.state()).toMatchObject({ status: 'rolled_back', rollbackReason: expect.stringContaining('p95') });
  });
});
