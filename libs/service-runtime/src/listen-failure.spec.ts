import { createServer, type Server } from 'node:net';
import { parseConfig } from '@openrouter/config';
import { GrpcServerHandle } from '@openrouter/grpc';
import { createLogger } from '@openrouter/observability';
import { HealthModule } from './health.module';
import { startHttpApp } from './http-app';
import { describeListenFailure, ListenError } from './listen-failure';

/** A loopback port held by another listener, as by a second gateway on the machine. */
function heldPort(): Promise<{ port: number; server: Server }> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve({ port: typeof address === 'object' && address ? address.port : 0, server });
    });
  });
}

function configWith(sections: Record<string, unknown>) {
  return parseConfig(
    {
      version: 1,
      ingress: { http: { port: 0 }, router: '127.0.0.1:1' },
      router: { grpc: { port: 0 }, http: { port: 0 }, adapters: { default: '127.0.0.1:2' } },
      adapter: { grpc: { port: 0 }, http: { port: 0 } },
      billing: { http: { port: 0 } },
      alerting: { http: { port: 0 } },
      providers: { sim: { type: 'openai', baseUrl: 'http://127.0.0.1:9/v1', apiKey: 'k' } },
      models: [{ id: 'm', deployments: [{ provider: 'sim', model: 'up' }] }],
      ...sections,
    },
    {},
  );
}

describe('describeListenFailure', () => {
  let held: { port: number; server: Server };
  beforeEach(async () => {
    held = await heldPort();
  });
  afterEach(() => new Promise((done) => held.server.close(done)));

  it("names an HTTP listener, its address and its setting; Nest's own line about it is a detail", async () => {
    const config = configWith({ router: { grpc: { port: 0 }, http: { host: '127.0.0.1', port: held.port }, adapters: { default: '127.0.0.1:2' } } });
    const lines: Array<{ level: number; msg: string }> = [];
    const logger = createLogger('router', 'debug', { write: (line: string) => void lines.push(JSON.parse(line) as { level: number; msg: string }) });
    const error = await startHttpApp(HealthModule.register('router'), config.router.http, logger).then(
      () => undefined,
      (e: unknown) => e,
    );
    const described = describeListenFailure(error, config, ['router']);
    expect(described).toBeInstanceOf(ListenError);
    expect(described?.message).toBe(`the router HTTP listener (probes and metrics) cannot listen on 127.0.0.1:${held.port} (router.http.port): address already in use`);
    expect(described?.setting).toBe('router.http.port');
    expect(lines.filter((l) => l.level >= 40)).toEqual([]);
  });

  it('names a gRPC listener from the error grpc-js reports', async () => {
    const config = configWith({ router: { grpc: { host: '127.0.0.1', port: held.port }, http: { port: 0 }, adapters: { default: '127.0.0.1:2' } } });
    // grpc-js logs the failure on the console too ("E No address added out of total 1 resolved").
    const console = jest.spyOn(globalThis.console, 'error').mockImplementation(() => undefined);
    const error = await GrpcServerHandle.start('127.0.0.1', held.port, []).then(
      async (server) => server.close(0),
      (e: unknown) => e,
    );
    console.mockRestore();
    expect(describeListenFailure(error, config, ['router'])?.message).toBe(`the router gRPC listener cannot listen on 127.0.0.1:${held.port} (router.grpc.port): address already in use`);
  });

  it('names the host setting of a listener whose host name does not resolve, from an HTTP server and from grpc-js', async () => {
    const host = 'no-such-host.invalid';
    const config = configWith({ router: { grpc: { host, port: 0 }, http: { host, port: 0 }, adapters: { default: '127.0.0.1:2' } } });
    const httpError = await startHttpApp(HealthModule.register('router'), config.router.http, createLogger('router', 'silent')).then(
      () => undefined,
      (e: unknown) => e,
    );
    const http = describeListenFailure(httpError, config, ['router']);
    expect(http?.message).toBe(`cannot listen on ${host} (router.grpc.host, router.http.host): the host name does not resolve`);
    expect(http?.setting).toBe('router.grpc.host');
    const console = jest.spyOn(globalThis.console, 'error').mockImplementation(() => undefined);
    const grpcError = await GrpcServerHandle.start(host, 0, []).then(
      async (server) => server.close(0),
      (e: unknown) => e,
    );
    console.mockRestore();
    expect(describeListenFailure(grpcError, config, ['router'])?.message).toBe(`the router gRPC listener cannot listen on ${host}:0 (router.grpc.host): the host name does not resolve`);
  });

  it("names the ingress's listeners and the embedded gateway's simulated provider", () => {
    const config = configWith({
      gateway: { simulator: { enabled: true, host: '127.0.0.1', port: 18079 } },
      ingress: { http: { host: '127.0.0.1', port: 8080 }, internalHttp: { host: '0.0.0.0', port: 8090 }, router: '127.0.0.1:1' },
    });
    const failure = (port: number, code = 'EADDRINUSE'): Error => Object.assign(new Error(`listen ${code}`), { code, syscall: 'listen', port });
    expect(describeListenFailure(failure(18079), config, ['gateway', 'ingress'])?.message).toBe('the simulated provider cannot listen on 127.0.0.1:18079 (gateway.simulator.port): address already in use');
    expect(describeListenFailure(failure(8080), config, ['ingress'])?.message).toBe('the public HTTP API cannot listen on 127.0.0.1:8080 (ingress.http.port): address already in use');
    expect(describeListenFailure(failure(8090, 'EACCES'), config, ['ingress'])?.message).toBe('the internal HTTP listener (probes and metrics) cannot listen on 0.0.0.0:8090 (ingress.internalHttp.port): permission denied (ports below 1024 need privileges)');
    // Another service's port, or no listen failure at all: nothing to add.
    expect(describeListenFailure(failure(18079), config, ['ingress'])).toBeUndefined();
    expect(describeListenFailure(new Error('connect ECONNREFUSED 127.0.0.1:8080'), config, ['ingress'])).toBeUndefined();
  });
});
