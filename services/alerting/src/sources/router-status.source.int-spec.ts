import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { sendUnaryData, ServerUnaryCall } from '@grpc/grpc-js';
import { routerv1 } from '@openrouter/contracts';
import { GrpcSecurity, GrpcServerHandle } from '@openrouter/grpc';
import { createLogger, Registry } from '@openrouter/observability';
import { RouterReplicaMetrics } from './router-replica.metrics';
import { RouterStatusSource } from './router-status.source';

const TOKEN = 'a-service-token-of-32-characters-or-more';
const NO_TLS = { cert: '', key: '', ca: '', serverNameOverride: '' };
const logger = createLogger('router-status-spec', 'silent');

/** A router replica's status service on the real contract: its breakers, as this test sets them. */
async function routerReplica(breakers: Record<string, string>, security: GrpcSecurity): Promise<GrpcServerHandle> {
  const implementation: Pick<routerv1.RouterServiceServer, 'providersHealth' | 'grayReleases'> = {
    providersHealth: (_call: ServerUnaryCall<routerv1.ProvidersHealthRequest, routerv1.ProvidersHealthResponse>, callback: sendUnaryData<routerv1.ProvidersHealthResponse>) =>
      callback(null, routerv1.ProvidersHealthResponse.fromPartial({ deployments: Object.entries(breakers).map(([deployment, breakerState]) => ({ provider: 'p', deployment, breakerState })) })),
    grayReleases: (_call: ServerUnaryCall<routerv1.GrayReleasesRequest, routerv1.GrayReleasesResponse>, callback: sendUnaryData<routerv1.GrayReleasesResponse>) => callback(null, { releases: [] }),
  };
  return GrpcServerHandle.start('127.0.0.1', 0, [{ definition: routerv1.RouterServiceService, implementation }], security);
}

describe('the router status source, polling every replica over gRPC', () => {
  const security = GrpcSecurity.fromConfig({ auth: { token: TOKEN }, tls: NO_TLS });
  const servers: GrpcServerHandle[] = [];
  const sources: RouterStatusSource[] = [];
  const source = (addresses: string[], discovery: 'none' | 'dns', clientSecurity = security): RouterStatusSource => {
    const s = new RouterStatusSource({ addresses, discovery, intervalMs: 1_000 }, logger, clientSecurity);
    sources.push(s);
    return s;
  };
  afterEach(async () => {
    for (const s of sources.splice(0)) s.close();
    for (const server of servers.splice(0)) await server.close(0);
  });
  const started = async (breakers: Record<string, string>, serverSecurity = security): Promise<GrpcServerHandle> => {
    const server = await routerReplica(breakers, serverSecurity);
    servers.push(server);
    return server;
  };
  const states = (snapshot: Awaited<ReturnType<RouterStatusSource['poll']>>) => snapshot.replicas.map((r) => [r.address, r.status?.circuits.map((c) => `${c.deployment}=${c.state}`) ?? 'not answering']);

  it('polls each listed address on a channel of its own, and keeps one that does not answer as such, since when', async () => {
    const a = await started({ d1: 'open' });
    const b = await started({ d1: 'closed' });
    // Port 9 (discard): nothing listens there.
    const status = source([`127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`, '127.0.0.1:9'], 'none');
    const registry = new Registry();
    new RouterReplicaMetrics(registry, () => status.snapshot());
    expect((await registry.getSingleMetric('openrouter_alerting_router_replicas')?.get())?.values).toEqual([]);

    const before = Date.now();
    const first = await status.poll();
    expect(states(first)).toEqual([
      [`127.0.0.1:${a.port}`, ['d1=open']],
      [`127.0.0.1:${b.port}`, ['d1=closed']],
      ['127.0.0.1:9', 'not answering'],
    ]);
    const since = first.replicas[2]?.failingSinceMs ?? 0;
    expect(since).toBeGreaterThanOrEqual(before);
    const gauge = async () => Object.fromEntries(((await registry.getSingleMetric('openrouter_alerting_router_replicas')?.get())?.values ?? []).map((v) => [v.labels['state'], v.value]));
    expect(await gauge()).toEqual({ answering: 2, not_answering: 1 });

    // A replica that goes down is not answering from then on; the one down before keeps the time it went.
    await b.close(0);
    const second = await status.poll();
    expect(states(second)).toEqual([
      [`127.0.0.1:${a.port}`, ['d1=open']],
      [`127.0.0.1:${b.port}`, 'not answering'],
      ['127.0.0.1:9', 'not answering'],
    ]);
    expect(second.replicas[2]?.failingSinceMs).toBe(since);
    expect(await gauge()).toEqual({ answering: 1, not_answering: 2 });
  });

  it('with dns discovery, polls each address the name resolves to, and a name that does not resolve as a replica not answering', async () => {
    const a = await started({ d1: 'half_open' });
    const snapshot = await source([`localhost:${a.port}`, `router.invalid:${a.port}`], 'dns').poll();
    expect(states(snapshot)).toEqual([
      [`127.0.0.1:${a.port}`, ['d1=half_open']],
      [`router.invalid:${a.port}`, 'not answering'],
    ]);
  });

  it('with dns discovery and TLS, verifies a resolved address as the name it was resolved from', async () => {
    const pki = makePki();
    try {
      const tls = (files: Partial<Record<'cert' | 'key' | 'ca', string>>) => ({ ...NO_TLS, ...Object.fromEntries(Object.entries(files).map(([k, name]) => [k, join(pki, name)])) });
      const server = await started({ d1: 'closed' }, GrpcSecurity.fromConfig({ auth: { token: TOKEN }, tls: tls({ cert: 'router.crt', key: 'router.key' }) }));
      const client = GrpcSecurity.fromConfig({ auth: { token: TOKEN }, tls: tls({ ca: 'ca.crt' }) });
      // The certificate names localhost only: polled at 127.0.0.1, it is still checked as localhost.
      expect(states(await source([`localhost:${server.port}`], 'dns', client).poll())).toEqual([[`127.0.0.1:${server.port}`, ['d1=closed']]]);
      // Named by its address, it would not be: the check works.
      expect(states(await source([`127.0.0.1:${server.port}`], 'none', client).poll())).toEqual([[`127.0.0.1:${server.port}`, 'not answering']]);
    } finally {
      rmSync(pki, { recursive: true, force: true });
    }
  });
});

/** A throw-away CA and a router certificate it signed for the name `localhost` only (no IP address). */
function makePki(): string {
  const dir = mkdtempSync(join(tmpdir(), 'openrouter-alerting-tls-'));
  const openssl = (...args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=ca', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'router.key', '-out', 'router.csr', '-subj', '/CN=router');
  writeFileSync(join(dir, 'router.ext'), 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n');
  openssl('x509', '-req', '-in', 'router.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'router.crt', '-days', '1', '-extfile', 'router.ext');
  return dir;
}
