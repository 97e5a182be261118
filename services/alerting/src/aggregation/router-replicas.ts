/** One router replica's answer: its deployments' circuit breakers and its gray releases. */
export interface RouterReplicaStatus {
  circuits: Array<{ provider: string; deployment: string; state: string }>;
  grayReleases: Array<{ id: string; target: string; canary: string; status: string; rolledBackAtMs: number; reason: string }>;
}

/** A router replica as last polled. */
export interface RouterReplica {
  /** The address polled (`host:port`): a configured one, or one its name resolved to. */
  address: string;
  /** Its answer; undefined when it did not answer the last poll (or its name did not resolve). */
  status: RouterReplicaStatus | undefined;
  /** When it stopped answering: the first of the polls in a row it did not answer. */
  failingSinceMs?: number;
}

/**
 * The router replicas found and polled in the last round. Each replica keeps its own circuit
 * breakers (and, without Redis, its own gray releases), so one behind a load balancer is not the
 * others: every one is polled.
 */
export interface RouterSnapshot {
  replicas: RouterReplica[];
}

/** A deployment's circuit breaker across the replicas that answered. */
export interface CircuitAcrossReplicas {
  provider: string;
  deployment: string;
  /** Replicas that answered and know the deployment. */
  reporting: number;
  /** Of those, the replicas whose breaker is open or half-open. */
  open: number;
  /** Of `open`, those half-open: the cooldown over, a probe let through, none succeeded yet. */
  probing: number;
}

/** A gray release across the replicas that answered. */
export interface GrayReleaseAcrossReplicas {
  id: string;
  target: string;
  canary: string;
  /** Replicas that answered and know the release. */
  reporting: number;
  /** Of those, the replicas on which it is rolled back. */
  rolledBack: number;
  /** The rollback's reason, as the first replica to report it rolled back gives it. */
  reason: string;
}

/** How many replicas were polled, and how many of them answered. */
export function replicaCounts(snapshot: RouterSnapshot): { polled: number; answering: number } {
  return { polled: snapshot.replicas.length, answering: snapshot.replicas.filter((r) => r.status !== undefined).length };
}

/** Every deployment some answering replica knows, with its breaker counted across them, in the order first seen. */
export function circuitsAcrossReplicas(snapshot: RouterSnapshot): CircuitAcrossReplicas[] {
  const byDeployment = new Map<string, CircuitAcrossReplicas>();
  for (const replica of snapshot.replicas) {
    for (const c of replica.status?.circuits ?? []) {
      const key = `${c.provider}\u0000${c.deployment}`;
      const found = byDeployment.get(key) ?? { provider: c.provider, deployment: c.deployment, reporting: 0, open: 0, probing: 0 };
      byDeployment.set(key, found);
      found.reporting++;
      // Half-open is still down: the breaker lets one probe through and has not seen it succeed.
      if (c.state === 'open' || c.state === 'half_open') found.open++;
      if (c.state === 'half_open') found.probing++;
    }
  }
  return [...byDeployment.values()];
}

/** Every gray release some answering replica knows, with its rollback counted across them, in the order first seen. */
export function grayReleasesAcrossReplicas(snapshot: RouterSnapshot): GrayReleaseAcrossReplicas[] {
  const byRelease = new Map<string, GrayReleaseAcrossReplicas>();
  for (const replica of snapshot.replicas) {
    for (const g of replica.status?.grayReleases ?? []) {
      const key = `${g.id}\u0000${g.target}\u0000${g.canary}`;
      const found = byRelease.get(key) ?? { id: g.id, target: g.target, canary: g.canary, reporting: 0, rolledBack: 0, reason: '' };
      byRelease.set(key, found);
      found.reporting++;
      if (g.status !== 'rolled_back') continue;
      if (found.rolledBack === 0) found.reason = g.reason;
      found.rolledBack++;
    }
  }
  return [...byRelease.values()];
}

/**
 * Replicas of `reporting` that must have a deployment's breaker open for the alert to fire: at
 * least `share` of them, and one at least. (The small allowance keeps a share such as 0.3 of 10
 * at 3, whatever the floating-point product says.)
 */
export function replicasNeeded(share: number, reporting: number): number {
  return Math.max(1, Math.ceil(share * reporting - 1e-9));
}
