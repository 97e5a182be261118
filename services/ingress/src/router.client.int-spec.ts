import type { sendUnaryData, ServerUnaryCall } from '@grpc/grpc-js';
import { routerv1 } from '@openrouter/contracts';
import { GrpcSecurity, GrpcServerHandle, type RouterTarget } from '@openrouter/grpc';
import { healthAcrossReplicas } from './admin/router-replicas';
import { RouterClient } from './router.client';

const TOKEN = 'a-service-token-of-32-characters-or-more';
const security = GrpcSecurity.fromConfig({ auth: { token: TOKEN }, tls: { cert: '', key: '', ca: '', serverNameOverride: '' } });
const TIMEOUTS = { callMs: 2_000, firstStreamedMs: 2_000, wholeAnswerMs: 2_000 };

/** A router replica on the real gRPC contract, with breakers of its own. */
async function replica(breakers: Record<string, string>): Promise<{ server: GrpcServerHandle; address: string; calls: () => number }> {
  let calls = 0;
  const implementation: Pick<routerv1.RouterServiceServer, 'providersHealth' | 'grayReleases'> = {
    providersHealth: (_call: ServerUnaryCall<routerv1.ProvidersHealthRequest, routerv1.ProvidersHealthResponse>, callback: sendUnaryData<routerv1.ProvidersHealthResponse>) => {
      calls += 1;
      const deployments = Object.entries(breakers).map(([deployment, breakerState]) => ({ provider: 'simulated', model: 'mini', deployment, breakerState, healthy: breakerState !== 'open', requestsLastMinute: 1 }));
      callback(null, routerv1.ProvidersHealthResponse.fromPartial({ deployments }));
    },
    grayReleases: (_call: ServerUnaryCall<routerv1.GrayReleasesRequest, routerv1.GrayReleasesResponse>, callback: sendUnaryData<routerv1.GrayReleasesResponse>) => callback(null, { releases: [] }),
  };
  const server = await GrpcServerHandle.start('127.0.0.1', 0, [{ definition: routerv1.RouterServiceService, implementation }], security);
  return { server, address: `127.0.0.1:${server.port}`, calls: () => calls };
}

describe('RouterClient.eachReplica: status calls reach every router replica (real gRPC servers)', () => {
  const servers: GrpcServerHandle[] = [];
  const clients: RouterClient[] = [];
  afterEach(async () => {
    for (const client of clients.splice(0)) client.close();
    for (const server of servers.splice(0)) await server.close(0);
  });

  it('calls each replica on a channel of its own, names those that do not answer, and follows the replicas as they change', async () => {
    const a = await replica({ 'sim-mini': 'open' });
    const b = await replica({ 'sim-mini': 'closed' });
    servers.push(a.server, b.server);
    const silent = await replica({});
    const gone = silent.address;
    await silent.server.close(0); // nothing listens there any more
    let targets: RouterTarget[] = [{ address: a.address }, { address: b.address }, { address: gone }, { address: 'router:50051', unresolved: 'router does not resolve (ENOTFOUND)' }];
    // The main channel's address is only used for the request path; status calls go where `replicas` says.
    const client = new RouterClient(a.address, TIMEOUTS, security, {}, undefined, async () => targets);
    clients.push(client);

    const answers = await client.eachReplica((r) => r.providersHealth());
    expect(answers.map((x) => [x.address, x.result?.deployments[0]?.breakerState ?? null, x.error?.kind ?? null])).toEqual(
      [
        [a.address, 'open', null],
        [b.address, 'closed', null],
        [gone, null, 'unavailable'],
        ['router:50051', null, 'unavailable'],
      ].sort((x, y) => String(x[0]).localeCompare(String(y[0]))),
    );
    expect([a.calls(), b.calls()]).toEqual([1, 1]);
    const merged = healthAcrossReplicas(answers);
    expect(merged.deployments[0]).toMatchObject({ deployment: 'sim-mini', breakerState: 'open', healthy: false, requestsLastMinute: 2, replicas: { closed: 1, halfOpen: 0, open: 1 } });
    expect(merged.replicas.filter((r) => !r.answering).map((r) => r.address).sort()).toEqual([gone, 'router:50051'].sort());

    // A replica scaled away is no longer asked.
    targets = [{ address: b.address }];
    const after = await client.eachReplica((r) => r.providersHealth());
    expect(after.map((x) => x.address)).toEqual([b.address]);
    expect([a.calls(), b.calls()]).toEqual([1, 2]);
  });

  it('by default asks every address the router name resolves to (here `localhost`, its IPv4 address)', async () => {
    const a = await replica({ 'sim-mini': 'closed' });
    servers.push(a.server);
    const client = new RouterClient(`localhost:${a.server.port}`, TIMEOUTS, security);
    clients.push(client);
    const answers = await client.eachReplica((r) => r.providersHealth());
    expect(answers.map((x) => [x.address, x.error?.kind ?? null])).toEqual([[`127.0.0.1:${a.server.port}`, null]]);
    expect(a.calls()).toBe(1);
  });
});
