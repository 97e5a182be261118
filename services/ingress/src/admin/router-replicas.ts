import type { routerv1 } from '@openrouter/contracts';
import type { ReplicaAnswer } from '../router.port';

/** A router replica in an admin answer: its address, and why it gave no answer if it did not. */
export interface ReplicaSummary {
  address: string;
  answering: boolean;
  /** The error's message (never its cause's details), when the replica did not answer. */
  error?: string;
}

/** How many answering replicas have a deployment's breaker in each state. */
export interface BreakerCounts {
  closed: number;
  halfOpen: number;
  open: number;
}

export type DeploymentAcrossReplicas = routerv1.DeploymentHealth & { replicas: BreakerCounts };

export interface HealthAcrossReplicas {
  providers: routerv1.ProviderHealth[];
  deployments: DeploymentAcrossReplicas[];
  replicas: ReplicaSummary[];
}

/** A release across replicas: each replica's calls not shared yet are in the arm stats, not apart. */
export type GrayReleaseAcrossReplicas = Omit<routerv1.GrayReleaseState, 'baselineUnshared' | 'canaryUnshared'> & { replicas: number };

export interface GrayReleasesAcrossReplicas {
  releases: GrayReleaseAcrossReplicas[];
  replicas: ReplicaSummary[];
}

const summaries = (answers: ReadonlyArray<ReplicaAnswer<unknown>>): ReplicaSummary[] =>
  answers.map((a) => (a.error === undefined ? { address: a.address, answering: true } : { address: a.address, answering: false, error: a.error.message }));

/** The answers of the replicas that gave one; when none did, the first error is thrown (the router is down: 503, or 504 past the deadline). */
function answered<T>(answers: ReadonlyArray<ReplicaAnswer<T>>): T[] {
  const results = answers.flatMap((a) => (a.error === undefined && a.result !== undefined ? [a.result] : []));
  const failure = answers.find((a) => a.error !== undefined)?.error;
  if (results.length === 0 && failure) throw failure;
  return results;
}

const SEVERITY: Record<string, number> = { closed: 0, half_open: 1, open: 2 };

/** The mean of `values` weighted by `weights`; the plain mean when every weight is 0. */
function weightedMean(values: number[], weights: number[]): number {
  const total = weights.reduce((a, b) => a + b, 0);
  if (total === 0) return values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);
  return values.reduce((sum, v, i) => sum + v * (weights[i] ?? 0), 0) / total;
}

/**
 * Deployment health across the router replicas that answered. Each replica keeps its own circuit
 * breakers, windows and `rpm` capacity, so per deployment: the breaker's worst state and how many
 * replicas have it in each state; `healthy` only when healthy on every replica; requests,
 * outstanding calls and `rpm` capacity summed (the fleet's); the error rate and latency averages
 * weighted by each replica's window requests; p95, consecutive failures and the cooldown at their
 * highest. A provider is healthy unless each of its deployments is open on every replica (none
 * could take a call anywhere); its `open_circuits` counts those.
 */
export function healthAcrossReplicas(answers: ReadonlyArray<ReplicaAnswer<routerv1.ProvidersHealthResponse>>): HealthAcrossReplicas {
  const results = answered(answers);
  const byDeployment = new Map<string, routerv1.DeploymentHealth[]>();
  for (const result of results) {
    for (const d of result.deployments) byDeployment.set(d.deployment, [...(byDeployment.get(d.deployment) ?? []), d]);
  }
  const deployments: DeploymentAcrossReplicas[] = [];
  const providers = new Map<string, routerv1.ProviderHealth>();
  for (const [id, all] of byDeployment) {
    const first = all[0] as routerv1.DeploymentHealth;
    const weights = all.map((d) => d.windowRequests);
    const counts: BreakerCounts = { closed: 0, halfOpen: 0, open: 0 };
    for (const d of all) {
      if (d.breakerState === 'open') counts.open += 1;
      else if (d.breakerState === 'half_open') counts.halfOpen += 1;
      else counts.closed += 1;
    }
    const worst = all.reduce((w, d) => ((SEVERITY[d.breakerState] ?? 0) > (SEVERITY[w] ?? 0) ? d.breakerState : w), first.breakerState);
    deployments.push({
      deployment: id,
      model: first.model,
      provider: first.provider,
      breakerState: worst,
      consecutiveFailures: Math.max(...all.map((d) => d.consecutiveFailures)),
      windowRequests: all.reduce((sum, d) => sum + d.windowRequests, 0),
      windowErrorRate: Number(weightedMean(all.map((d) => d.windowErrorRate), weights).toFixed(4)),
      latencyEwmaMs: Math.round(weightedMean(all.map((d) => d.latencyEwmaMs), weights)),
      ttftEwmaMs: Math.round(weightedMean(all.map((d) => d.ttftEwmaMs), weights)),
      p95LatencyMs: Math.max(...all.map((d) => d.p95LatencyMs)),
      outstanding: all.reduce((sum, d) => sum + d.outstanding, 0),
      requestsLastMinute: all.reduce((sum, d) => sum + d.requestsLastMinute, 0),
      rpmCapacity: all.reduce((sum, d) => sum + d.rpmCapacity, 0),
      cooldownUntilMs: Math.max(...all.map((d) => d.cooldownUntilMs)),
      healthy: all.every((d) => d.healthy),
      replicas: counts,
    });
    const provider = providers.get(first.provider) ?? { provider: first.provider, healthy: false, deployments: 0, openCircuits: 0 };
    provider.deployments += 1;
    if (counts.open === all.length) provider.openCircuits += 1;
    provider.healthy = provider.openCircuits < provider.deployments;
    providers.set(first.provider, provider);
  }
  return { providers: [...providers.values()].sort((a, b) => a.provider.localeCompare(b.provider)), deployments, replicas: summaries(answers) };
}

/** The furthest a release has gone: rolled back wins (a rollback made on one replica holds on all), then completed, active, pending. */
const PROGRESS: Record<string, number> = { pending: 0, active: 1, completed: 2, rolled_back: 3 };

function armAcross(stats: Array<routerv1.GrayReleaseArmStats | undefined>): routerv1.GrayReleaseArmStats {
  const present = stats.filter((s): s is routerv1.GrayReleaseArmStats => s !== undefined);
  const requests = present.reduce((sum, s) => sum + s.requests, 0);
  const errors = present.reduce((sum, s) => sum + s.errors, 0);
  return { requests, errors, errorRate: requests === 0 ? 0 : Number((errors / requests).toFixed(4)), p95LatencyMs: Math.max(0, ...present.map((s) => s.p95LatencyMs)) };
}

type ArmPair = Pick<routerv1.GrayReleaseState, 'baselineStats' | 'canaryStats'>;

/**
 * The arm stats of a release across replicas. Replicas judging on the fleet's calls (`statsScope`
 * "fleet", shared through Redis) each report the fleet's counts as they last read them, plus
 * their own calls the counters may not hold yet: the freshest of those views is taken once, never
 * summed, and to it is added, from every other replica, what it counted that the counters may not
 * hold (its `*Unshared` stats: calls not sent, as while it cannot reach Redis, or sent and not
 * acknowledged). A replica that reports no such stats is counted whole when it judges on its own
 * calls ("replica", or empty: no Redis, or a router older than the field), and not at all when it
 * reports an older fleet view (a router older than the `*Unshared` fields).
 *
 * A batch Redis applied whose answer was lost is in the fleet's counters and in its replica's
 * unshared stats until that replica's next round Redis answers: counted twice here meanwhile
 * (the judgment, on each replica, never counts a call twice).
 */
function statsAcross(all: routerv1.GrayReleaseState[]): ArmPair & Pick<routerv1.GrayReleaseState, 'statsScope' | 'statsReadAtMs'> {
  const fleet = all.filter((r) => r.statsScope === 'fleet').reduce<routerv1.GrayReleaseState | undefined>((freshest, r) => (freshest && freshest.statsReadAtMs >= r.statsReadAtMs ? freshest : r), undefined);
  const others = all.flatMap((r): ArmPair[] => {
    if (r === fleet) return [];
    if (r.baselineUnshared !== undefined || r.canaryUnshared !== undefined) return [{ baselineStats: r.baselineUnshared, canaryStats: r.canaryUnshared }];
    return r.statsScope === 'fleet' ? [] : [r];
  });
  const counted: ArmPair[] = [...(fleet ? [fleet] : []), ...others];
  return {
    baselineStats: armAcross(counted.map((r) => r.baselineStats)),
    canaryStats: armAcross(counted.map((r) => r.canaryStats)),
    statsScope: fleet ? 'fleet' : 'replica',
    statsReadAtMs: fleet?.statsReadAtMs ?? 0,
  };
}

/**
 * Gray releases across the router replicas that answered. Their schedule and rollback are shared
 * (in Redis), and so are the calls they judge the canary on: per release, the state of the
 * replica furthest along (a rollback on one holds on every other within
 * `routing.grayReleaseSyncMs`), and the arm stats as `statsAcross` merges them (the freshest fleet
 * view once, plus each other replica's calls not in it), with the p95 at its highest. `replicas`
 * counts those that know the release.
 */
export function grayReleasesAcrossReplicas(answers: ReadonlyArray<ReplicaAnswer<routerv1.GrayReleasesResponse>>): GrayReleasesAcrossReplicas {
  const results = answered(answers);
  const byId = new Map<string, routerv1.GrayReleaseState[]>();
  for (const result of results) for (const r of result.releases) byId.set(r.id, [...(byId.get(r.id) ?? []), r]);
  const releases: GrayReleaseAcrossReplicas[] = [];
  for (const all of byId.values()) {
    const furthest = all.reduce((f, r) => ((PROGRESS[r.status] ?? 0) > (PROGRESS[f.status] ?? 0) || ((PROGRESS[r.status] ?? 0) === (PROGRESS[f.status] ?? 0) && r.step > f.step) ? r : f));
    const { baselineUnshared: _baseline, canaryUnshared: _canary, ...state } = furthest;
    releases.push({ ...state, ...statsAcross(all), replicas: all.length });
  }
  return { releases, replicas: summaries(answers) };
}
