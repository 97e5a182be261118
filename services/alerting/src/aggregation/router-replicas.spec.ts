import { circuitsAcrossReplicas, grayReleasesAcrossReplicas, replicaCounts, replicasNeeded, type RouterReplicaStatus, type RouterSnapshot } from './router-replicas';

const circuit = (deployment: string, state: string) => ({ provider: 'p', deployment, state });
const release = (status: string, reason = '') => ({ id: 'g1', target: 'chat', canary: 'new-model', status, rolledBackAtMs: status === 'rolled_back' ? 1 : 0, reason });
const answering = (address: string, status: Partial<RouterReplicaStatus>) => ({ address, status: { circuits: [], grayReleases: [], ...status } });

describe('router status across replicas', () => {
  const snapshot: RouterSnapshot = {
    replicas: [
      answering('10.0.0.1:50051', { circuits: [circuit('d1', 'open'), circuit('d2', 'closed')], grayReleases: [release('active')] }),
      answering('10.0.0.2:50051', { circuits: [circuit('d1', 'half_open'), circuit('d2', 'closed')], grayReleases: [release('rolled_back', 'error rate 30%')] }),
      // Rolled out with a deployment the others do not have yet.
      answering('10.0.0.3:50051', { circuits: [circuit('d1', 'closed'), circuit('d2', 'closed'), circuit('d3', 'open')], grayReleases: [release('rolled_back', 'p95 12 s')] }),
      // Did not answer: it counts nowhere but in what was polled.
      { address: '10.0.0.4:50051', status: undefined, failingSinceMs: 1_000 },
    ],
  };

  it('counts a deployment open (or half-open) on each replica that answered and knows it', () => {
    expect(replicaCounts(snapshot)).toEqual({ polled: 4, answering: 3 });
    expect(circuitsAcrossReplicas(snapshot)).toEqual([
      { provider: 'p', deployment: 'd1', reporting: 3, open: 2, probing: 1 },
      { provider: 'p', deployment: 'd2', reporting: 3, open: 0, probing: 0 },
      { provider: 'p', deployment: 'd3', reporting: 1, open: 1, probing: 0 },
    ]);
  });

  it('counts a gray release rolled back on each replica, with the first reason given', () => {
    expect(grayReleasesAcrossReplicas(snapshot)).toEqual([{ id: 'g1', target: 'chat', canary: 'new-model', reporting: 3, rolledBack: 2, reason: 'error rate 30%' }]);
  });

  it('finds nothing when no replica answered', () => {
    const silent: RouterSnapshot = { replicas: [{ address: 'router:50051', status: undefined, failingSinceMs: 1 }] };
    expect(replicaCounts(silent)).toEqual({ polled: 1, answering: 0 });
    expect(circuitsAcrossReplicas(silent)).toEqual([]);
    expect(grayReleasesAcrossReplicas(silent)).toEqual([]);
  });

  it('needs at least the share of the reporting replicas, and one at least', () => {
    expect([1, 2, 3, 10].map((n) => replicasNeeded(0, n))).toEqual([1, 1, 1, 1]);
    expect([1, 2, 3, 4].map((n) => replicasNeeded(0.5, n))).toEqual([1, 1, 2, 2]);
    expect([1, 3, 5].map((n) => replicasNeeded(1, n))).toEqual([1, 3, 5]);
    // Products that land a hair off a whole number in floating point.
    expect(replicasNeeded(0.3, 10)).toBe(3);
    expect(replicasNeeded(0.7, 10)).toBe(7);
    expect(replicasNeeded(0.1, 30)).toBe(3);
  });
});
