import { routerv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { grayReleasesAcrossReplicas, healthAcrossReplicas } from './router-replicas';

const deployment = (over: Partial<routerv1.DeploymentHealth>): routerv1.DeploymentHealth => routerv1.DeploymentHealth.fromPartial({ deployment: 'mini-a', model: 'mini', provider: 'openai', breakerState: 'closed', healthy: true, ...over });
const health = (...deployments: routerv1.DeploymentHealth[]): routerv1.ProvidersHealthResponse => ({ providers: [], deployments });
const release = (over: Partial<routerv1.GrayReleaseState>): routerv1.GrayReleaseState => routerv1.GrayReleaseState.fromPartial({ id: 'r1', target: 'chat', baseline: 'a', canary: 'b', status: 'active', step: 1, ...over });

describe('provider health across router replicas', () => {
  it('sums what each replica counts, weights rates and averages by window requests, and keeps the worst breaker with its counts', () => {
    const merged = healthAcrossReplicas([
      { address: '10.0.0.1:50051', result: health(deployment({ breakerState: 'open', healthy: false, consecutiveFailures: 5, windowRequests: 10, windowErrorRate: 0.5, latencyEwmaMs: 100, ttftEwmaMs: 40, p95LatencyMs: 300, outstanding: 2, requestsLastMinute: 10, rpmCapacity: 600, cooldownUntilMs: 2_000 })) },
      { address: '10.0.0.2:50051', result: health(deployment({ windowRequests: 30, windowErrorRate: 0.1, latencyEwmaMs: 200, ttftEwmaMs: 80, p95LatencyMs: 250, outstanding: 3, requestsLastMinute: 30, rpmCapacity: 600 })) },
      { address: '10.0.0.3:50051', result: health(deployment({ breakerState: 'half_open', healthy: true, consecutiveFailures: 1 })) },
    ]);
    expect(merged.deployments).toEqual([
      {
        deployment: 'mini-a',
        model: 'mini',
        provider: 'openai',
        breakerState: 'open',
        consecutiveFailures: 5,
        windowRequests: 40,
        windowErrorRate: 0.2, // (10 × 0.5 + 30 × 0.1) / 40
        latencyEwmaMs: 175, // (10 × 100 + 30 × 200) / 40
        ttftEwmaMs: 70,
        p95LatencyMs: 300,
        outstanding: 5,
        requestsLastMinute: 40,
        rpmCapacity: 1_200,
        cooldownUntilMs: 2_000,
        healthy: false,
        replicas: { closed: 1, halfOpen: 1, open: 1 },
      },
    ]);
    // Open on one replica of three: the others still take its calls.
    expect(merged.providers).toEqual([{ provider: 'openai', healthy: true, deployments: 1, openCircuits: 0 }]);
    expect(merged.replicas).toEqual([
      { address: '10.0.0.1:50051', answering: true },
      { address: '10.0.0.2:50051', answering: true },
      { address: '10.0.0.3:50051', answering: true },
    ]);
  });

  it('a provider is unhealthy when each of its deployments is open on every replica that answered; a replica that did not answer is named with its error', () => {
    const open = { breakerState: 'open', healthy: false };
    const merged = healthAcrossReplicas([
      { address: 'a:1', result: health(deployment(open), deployment({ ...open, deployment: 'mini-b' })) },
      { address: 'b:1', error: new GatewayError('unavailable', 'An internal gateway service is unavailable.') },
      { address: 'c:1', result: health(deployment(open), deployment({ ...open, deployment: 'mini-b' })) },
    ]);
    expect(merged.providers).toEqual([{ provider: 'openai', healthy: false, deployments: 2, openCircuits: 2 }]);
    expect(merged.deployments.map((d) => d.replicas)).toEqual([
      { closed: 0, halfOpen: 0, open: 2 },
      { closed: 0, halfOpen: 0, open: 2 },
    ]);
    expect(merged.replicas[1]).toEqual({ address: 'b:1', answering: false, error: 'An internal gateway service is unavailable.' });
  });

  it('with no window requests anywhere, averages are plain means; a deployment one replica does not know yet is merged from those that do', () => {
    const merged = healthAcrossReplicas([
      { address: 'a:1', result: health(deployment({ latencyEwmaMs: 100 })) },
      { address: 'b:1', result: health(deployment({ latencyEwmaMs: 300 }), deployment({ deployment: 'new-one', provider: 'azure' })) },
    ]);
    expect(merged.deployments.map((d) => [d.deployment, d.latencyEwmaMs, d.replicas.closed])).toEqual([
      ['mini-a', 200, 2],
      ['new-one', 0, 1],
    ]);
    expect(merged.providers.map((p) => p.provider)).toEqual(['azure', 'openai']);
  });

  it('when no replica answers, the first error is the answer (the router is down)', () => {
    const down = new GatewayError('unavailable', 'An internal gateway service is unavailable.');
    expect(() => healthAcrossReplicas([{ address: 'a:1', error: down }, { address: 'b:1', error: new GatewayError('timeout', 'late') }])).toThrow(down);
  });
});

describe('gray releases across router replicas', () => {
  it('takes the state of the replica furthest along and sums the arms over the replicas', () => {
    const merged = grayReleasesAcrossReplicas([
      { address: 'a:1', result: { releases: [release({ step: 1, canaryPercent: 10, baselineStats: { requests: 90, errors: 1, errorRate: 0.0111, p95LatencyMs: 120 }, canaryStats: { requests: 10, errors: 2, errorRate: 0.2, p95LatencyMs: 400 } })] } },
      { address: 'b:1', result: { releases: [release({ step: 2, canaryPercent: 25, nextStepAtMs: 9_000, baselineStats: { requests: 60, errors: 0, errorRate: 0, p95LatencyMs: 150 }, canaryStats: { requests: 20, errors: 0, errorRate: 0, p95LatencyMs: 200 } })] } },
    ]);
    expect(merged.releases).toEqual([
      expect.objectContaining({
        id: 'r1',
        status: 'active',
        step: 2,
        canaryPercent: 25,
        nextStepAtMs: 9_000,
        baselineStats: { requests: 150, errors: 1, errorRate: 0.0067, p95LatencyMs: 150 },
        canaryStats: { requests: 30, errors: 2, errorRate: 0.0667, p95LatencyMs: 400 },
        replicas: 2,
      }),
    ]);
  });

  it('takes the fleet’s stats once, from the replica that read them last, instead of summing them', () => {
    const fleet = (requests: number, errors: number, p95LatencyMs: number): routerv1.GrayReleaseArmStats => ({ requests, errors, errorRate: errors / requests, p95LatencyMs });
    const merged = grayReleasesAcrossReplicas([
      { address: 'a:1', result: { releases: [release({ statsScope: 'fleet', statsReadAtMs: 5_000, baselineStats: fleet(100, 1, 120), canaryStats: fleet(20, 2, 300) })] } },
      { address: 'b:1', result: { releases: [release({ statsScope: 'fleet', statsReadAtMs: 7_000, baselineStats: fleet(110, 1, 125), canaryStats: fleet(22, 3, 310) })] } },
      { address: 'c:1', result: { releases: [release({ statsScope: 'fleet', statsReadAtMs: 6_000, baselineStats: fleet(105, 1, 122), canaryStats: fleet(21, 2, 305) })] } },
    ]);
    expect(merged.releases).toEqual([
      expect.objectContaining({
        statsScope: 'fleet',
        statsReadAtMs: 7_000,
        baselineStats: { requests: 110, errors: 1, errorRate: 0.0091, p95LatencyMs: 125 },
        canaryStats: { requests: 22, errors: 3, errorRate: 0.1364, p95LatencyMs: 310 },
        replicas: 3,
      }),
    ]);
  });

  it('adds the calls of a replica that judges on its own (an older router) to the fleet’s, whose counters do not hold them', () => {
    const merged = grayReleasesAcrossReplicas([
      { address: 'a:1', result: { releases: [release({ statsScope: 'fleet', statsReadAtMs: 5_000, canaryStats: { requests: 20, errors: 2, errorRate: 0.1, p95LatencyMs: 300 } })] } },
      { address: 'b:1', result: { releases: [release({ statsScope: 'fleet', statsReadAtMs: 5_000, canaryStats: { requests: 20, errors: 2, errorRate: 0.1, p95LatencyMs: 300 } })] } },
      { address: 'c:1', result: { releases: [release({ canaryStats: { requests: 5, errors: 3, errorRate: 0.6, p95LatencyMs: 900 } })] } },
    ]);
    expect(merged.releases[0]).toMatchObject({ statsScope: 'fleet', statsReadAtMs: 5_000, canaryStats: { requests: 25, errors: 5, errorRate: 0.2, p95LatencyMs: 900 } });
    // Replicas that each judge on their own calls say so, summed as before.
    const own = grayReleasesAcrossReplicas([
      { address: 'a:1', result: { releases: [release({ statsScope: 'replica', canaryStats: { requests: 4, errors: 1, errorRate: 0.25, p95LatencyMs: 100 } })] } },
      { address: 'b:1', result: { releases: [release({ statsScope: 'replica', canaryStats: { requests: 6, errors: 0, errorRate: 0, p95LatencyMs: 200 } })] } },
    ]);
    expect(own.releases[0]).toMatchObject({ statsScope: 'replica', statsReadAtMs: 0, canaryStats: { requests: 10, errors: 1, errorRate: 0.1, p95LatencyMs: 200 } });
  });

  it('adds to the freshest fleet view what every other replica counted that the fleet’s counters may not hold, as a replica that cannot reach Redis', () => {
    const arm = (requests: number, errors: number, p95LatencyMs = 100): routerv1.GrayReleaseArmStats => ({ requests, errors, errorRate: requests ? errors / requests : 0, p95LatencyMs });
    const merged = grayReleasesAcrossReplicas([
      // A lost Redis after its read at 5 s: the fleet's 15 calls as it read them, plus its own 5 since, not shared.
      { address: 'a:1', result: { releases: [release({ statsScope: 'fleet', statsReadAtMs: 5_000, canaryStats: arm(20, 4), canaryUnshared: arm(5, 3, 900), baselineStats: arm(30, 0), baselineUnshared: arm(0, 0) })] } },
      // B read last: the fleet's 15 (none of A's 5), plus 1 of its own since.
      { address: 'b:1', result: { releases: [release({ statsScope: 'fleet', statsReadAtMs: 7_000, canaryStats: arm(16, 1), canaryUnshared: arm(1, 0), baselineStats: arm(32, 0), baselineUnshared: arm(2, 0) })] } },
      // C read at 6 s, and counted 2 calls since (it shares them at its next round).
      { address: 'c:1', result: { releases: [release({ statsScope: 'fleet', statsReadAtMs: 6_000, canaryStats: arm(17, 2), canaryUnshared: arm(2, 1), baselineStats: arm(31, 0), baselineUnshared: arm(1, 0) })] } },
    ]);
    expect(merged.releases).toEqual([
      expect.objectContaining({ statsScope: 'fleet', statsReadAtMs: 7_000, canaryStats: { requests: 23, errors: 5, errorRate: 0.2174, p95LatencyMs: 900 }, baselineStats: { requests: 33, errors: 0, errorRate: 0, p95LatencyMs: 100 }, replicas: 3 }),
    ]);
    // What each replica had not shared is in the stats, not beside them.
    expect(merged.releases[0]).not.toHaveProperty('canaryUnshared');
    expect(merged.releases[0]).not.toHaveProperty('baselineUnshared');
  });

  it('counts a replica that shares but has not read the fleet’s counts yet by its unshared calls, an older router that judges on its own calls whole, and an older fleet view not at all', () => {
    const arm = (requests: number, errors: number): routerv1.GrayReleaseArmStats => ({ requests, errors, errorRate: requests ? errors / requests : 0, p95LatencyMs: 100 });
    const merged = grayReleasesAcrossReplicas([
      { address: 'a:1', result: { releases: [release({ statsScope: 'fleet', statsReadAtMs: 9_000, canaryStats: arm(10, 1), canaryUnshared: arm(0, 0) })] } },
      // Sharing, but it could not reach Redis since it started: every call of its own is unshared.
      { address: 'b:1', result: { releases: [release({ statsScope: 'replica', canaryStats: arm(4, 4), canaryUnshared: arm(4, 4) })] } },
      // A router older than the shared counts: its calls are in no counter.
      { address: 'c:1', result: { releases: [release({ canaryStats: arm(3, 0) })] } },
      // A router that shares but reports no unshared calls: an older fleet view, in the freshest already.
      { address: 'd:1', result: { releases: [release({ statsScope: 'fleet', statsReadAtMs: 8_000, canaryStats: arm(9, 1) })] } },
    ]);
    expect(merged.releases[0]).toMatchObject({ statsScope: 'fleet', statsReadAtMs: 9_000, canaryStats: { requests: 17, errors: 5 }, replicas: 4 });
  });

  it('a rollback on one replica is the release state, whatever step the others are at', () => {
    const merged = grayReleasesAcrossReplicas([
      { address: 'a:1', result: { releases: [release({ step: 3 })] } },
      { address: 'b:1', result: { releases: [release({ status: 'rolled_back', step: 1, rolledBackAtMs: 5_000, rollbackReason: 'canary error rate 0.3 above 0.05' })] } },
    ]);
    expect(merged.releases[0]).toMatchObject({ status: 'rolled_back', rolledBackAtMs: 5_000, rollbackReason: 'canary error rate 0.3 above 0.05' });
  });
});
