import { execFileSync } from 'node:child_process';
import type { LookupAddress } from 'node:dns';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { sendUnaryData, ServerUnaryCall } from '@grpc/grpc-js';
import { routerv1 } from '@openrouter/contracts';
import { GrpcSecurity, GrpcServerHandle } from '@openrouter/grpc';
import { createLogger, Registry } from '@openrouter/observability';
import { RouterReplicaMetrics } from './router-replica.metrics';
import { RouterStatusSource, type RouterStatusOptions } from './router-status.source';

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
  // A poll's calls time out at min(5 s, the interval): a replica's first call opens its channel, which on a
  // busy machine can take more than a second, and would then read as a replica not answering.
  const source = (addresses: string[], discovery: 'none' | 'dns', clientSecurity = security, options: RouterStatusOptions & { intervalMs?: number; log?: typeof logger } = {}): RouterStatusSource => {
    const s = new RouterStatusSource({ addresses, discovery, intervalMs: options.intervalMs ?? 5_000 }, options.log ?? logger, clientSecurity, options);
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

describe('the router status source, when DNS fails or it closes mid-poll', () => {
  const security = GrpcSecurity.fromConfig({ auth: { token: TOKEN }, tls: NO_TLS });
  const servers: GrpcServerHandle[] = [];
  const sources: RouterStatusSource[] = [];
  afterEach(async () => {
    for (const s of sources.splice(0)) s.close();
    for (const server of servers.splice(0)) await server.close(0);
    jest.restoreAllMocks();
  });
  const v4 = (...ips: string[]): LookupAddress[] => ips.map((address) => ({ address, family: 4 }));
  const states = (snapshot: Awaited<ReturnType<RouterStatusSource['poll']>>) => snapshot.replicas.map((r) => [r.address, r.status ? 'answering' : 'not answering', r.failingSinceMs]);

  it('keeps polling the replicas a name last resolved to while its lookups fail: channels and "not answering since" kept', async () => {
    const server = await routerReplica({ d1: 'closed' }, security);
    servers.push(server);
    // One replica answers at 127.0.0.1; the other, 127.0.0.2 on the same port, is down.
    const answers: Array<() => Promise<LookupAddress[]>> = [
      () => Promise.resolve(v4('127.0.0.1', '127.0.0.2')),
      () => Promise.reject(Object.assign(new Error('getaddrinfo EAI_AGAIN router'), { code: 'EAI_AGAIN' })),
      () => Promise.reject(Object.assign(new Error('getaddrinfo EAI_AGAIN router'), { code: 'EAI_AGAIN' })),
      () => Promise.resolve(v4('127.0.0.1', '127.0.0.2')),
    ];
    const lookup = (): Promise<LookupAddress[]> => (answers.shift() ?? (() => Promise.reject(new Error('no more answers'))))();
    const lines: string[] = [];
    const sink = new Writable({ write: (chunk: Buffer, _enc, done) => (lines.push(chunk.toString()), done()) });
    const channels = jest.spyOn(security, 'client');
    const status = new RouterStatusSource({ addresses: [`router:${server.port}`], discovery: 'dns', intervalMs: 5_000 }, createLogger('router-status-spec', 'info', sink), security, { lookup });
    sources.push(status);

    const first = states(await status.poll());
    const since = first[1]?.[2];
    expect(first).toEqual([
      [`127.0.0.1:${server.port}`, 'answering', undefined],
      [`127.0.0.2:${server.port}`, 'not answering', expect.any(Number)],
    ]);
    // Two lookups fail in a row, then one succeeds: the same replicas, the down one silent since its first poll.
    for (let poll = 0; poll < 3; poll++) expect(states(await status.poll())).toEqual(first);
    expect(since).toBeDefined();
    // Each replica kept the one channel it had.
    expect(channels).toHaveBeenCalledTimes(2);
    const messages = lines.map((l) => (JSON.parse(l) as { msg: string }).msg);
    expect(messages.filter((m) => m.startsWith('router name'))).toEqual(['router name does not resolve; the replicas it last had stay polled', 'router name resolves again']);
  });

  it('makes no channel when it closes during the lookup', async () => {
    const server = await routerReplica({ d1: 'closed' }, security);
    servers.push(server);
    const asked = deferred<void>();
    const answer = deferred<LookupAddress[]>();
    const lookup = (): Promise<LookupAddress[]> => (asked.resolve(), answer.promise);
    const status = new RouterStatusSource({ addresses: [`router:${server.port}`], discovery: 'dns', intervalMs: 5_000 }, logger, security, { lookup });
    sources.push(status);
    const channels = jest.spyOn(security, 'client');
    const polled = status.poll();
    await asked.promise;
    status.close();
    answer.resolve(v4('127.0.0.1'));
    expect((await polled).replicas).toEqual([]);
    expect(channels).not.toHaveBeenCalled();
    expect(status.snapshot()).toBeUndefined();
  });

  it('cancels the calls under way when it closes during them, and keeps the snapshot it had', async () => {
    const called = deferred<void>();
    const cancelled = deferred<void>();
    // A replica that takes each call and never answers: only the caller can end it.
    const implementation: Pick<routerv1.RouterServiceServer, 'providersHealth' | 'grayReleases'> = {
      providersHealth: (call: ServerUnaryCall<routerv1.ProvidersHealthRequest, routerv1.ProvidersHealthResponse>) => {
        call.on('cancelled', () => cancelled.resolve());
        called.resolve();
      },
      grayReleases: () => undefined,
    };
    const server = await GrpcServerHandle.start('127.0.0.1', 0, [{ definition: routerv1.RouterServiceService, implementation }], security);
    servers.push(server);
    const channels = jest.spyOn(security, 'client');
    // The calls' own deadline (an AbortSignal.timeout) never comes: only close() can end them.
    const deadlines = jest.spyOn(AbortSignal, 'timeout').mockImplementation(() => new AbortController().signal);
    const status = new RouterStatusSource({ addresses: [`router:${server.port}`], discovery: 'dns', intervalMs: 60_000 }, logger, security, { lookup: () => Promise.resolve(v4('127.0.0.1')) });
    sources.push(status);
    const polled = status.poll();
    await called.promise;
    expect(deadlines).toHaveBeenCalled();
    status.close();
    await cancelled.promise;
    expect(states(await polled)).toEqual([[`127.0.0.1:${server.port}`, 'not answering', undefined]]);
    expect(channels).toHaveBeenCalledTimes(1);
    expect(status.snapshot()).toBeUndefined();
  });
});

function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve: (value: T) => void = () => undefined;
  const promise = new Promise<T>((settle) => (resolve = settle));
  return { promise, resolve };
}

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
