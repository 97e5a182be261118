import { createServer as createHttp2Server, type Http2Server } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { Metadata, status, type Client, type ClientUnaryCall, type ServiceError, type ClientReadableStream, type ServerUnaryCall, type ServerWritableStream } from '@grpc/grpc-js';
import { callUnary, readStream } from './grpc-call';
import { GatewayError } from '@openrouter/errors';
import { GrpcSecurity, type GrpcSecuritySettings } from './grpc-security';
import { GrpcServerHandle } from './grpc-server';
import { TEST_CALLS, TestCalls, type TestCallsClient } from './test-calls.testing';

const definition = TEST_CALLS;
const Calls = TestCalls;
type TestClient = TestCallsClient;

const NO_TLS = { cert: '', key: '', ca: '', serverNameOverride: '' };
const settings = (extra: Partial<GrpcSecuritySettings>): GrpcSecuritySettings => ({ auth: { token: '' }, tls: NO_TLS, ...extra });

/** A server that records the peer (client address and port, so one per connection) of every call it runs. */
interface TestServer {
  handle: GrpcServerHandle;
  peers: string[];
  /** Streams wait for this before their last message. */
  release: () => void;
}

const servers: TestServer[] = [];
const clients: Client[] = [];

async function serve(security: GrpcSecurity): Promise<TestServer> {
  const peers: string[] = [];
  let release!: () => void;
  const released = new Promise<void>((done) => (release = done));
  const handle = await GrpcServerHandle.start(
    '127.0.0.1',
    0,
    [
      {
        definition,
        implementation: {
          unary: (call: ServerUnaryCall<Buffer, Buffer>, callback: (error: null, response: Buffer) => void) => {
            peers.push(call.getPeer());
            callback(null, call.request);
          },
          stream: (call: ServerWritableStream<Buffer, Buffer>) => {
            peers.push(call.getPeer());
            call.write(Buffer.from('first'));
            void released.then(() => {
              call.write(Buffer.from('last'));
              call.end();
            });
          },
        },
      },
    ],
    security,
  );
  const server = { handle, peers, release };
  servers.push(server);
  return server;
}

function clientOf(security: GrpcSecurity, address: string): TestClient {
  const client = security.client(Calls, address) as unknown as TestClient;
  clients.push(client);
  return client;
}

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  for (const server of servers.splice(0)) {
    server.release();
    await server.handle.close(0);
  }
});

const unary = (client: TestClient): Promise<Buffer> => callUnary(client.unary.bind(client), Buffer.from('hi'), new Metadata(), undefined, { timeoutMs: 10_000 });

/** Both servers behind one client target: grpc-js's `ipv4:` scheme gives a channel several addresses, as a DNS name with several records does. */
async function twoServers(policy: 'round_robin' | 'pick_first'): Promise<{ a: TestServer; b: TestServer; client: TestClient }> {
  const serverSecurity = GrpcSecurity.fromConfig(settings({}));
  const a = await serve(serverSecurity);
  const b = await serve(serverSecurity);
  const client = clientOf(GrpcSecurity.fromConfig(settings({ loadBalancing: policy })), `ipv4:127.0.0.1:${a.handle.port},127.0.0.1:${b.handle.port}`);
  return { a, b, client };
}

describe('load balancing over the addresses of a peer (grpc.loadBalancing)', () => {
  it('round_robin: calls go to every address in turn once each is connected', async () => {
    const { a, b, client } = await twoServers('round_robin');
    // round_robin picks among the connections that are ready: the first calls may all go to the one that connected first.
    for (let i = 0; i < 200 && (a.peers.length === 0 || b.peers.length === 0); i += 1) await unary(client);
    expect(a.peers.length).toBeGreaterThan(0);
    expect(b.peers.length).toBeGreaterThan(0);

    const before = { a: a.peers.length, b: b.peers.length };
    for (let i = 0; i < 20; i += 1) await unary(client);
    // With both connected, the policy alternates: each gets half, give or take a call.
    expect(a.peers.length - before.a).toBeGreaterThanOrEqual(9);
    expect(b.peers.length - before.b).toBeGreaterThanOrEqual(9);
  });

  it('pick_first: every call goes to one address', async () => {
    const { a, b, client } = await twoServers('pick_first');
    for (let i = 0; i < 40; i += 1) await unary(client);
    expect([a.peers.length, b.peers.length].sort((x, y) => x - y)).toEqual([0, 40]);
  });

  it('is round_robin in the configuration by default, and a service config published in DNS is not taken', async () => {
    const { configSchema } = await import('@openrouter/config');
    const grpc = configSchema.shape.grpc.parse({});
    expect(grpc.loadBalancing).toBe('round_robin');
    expect(grpc.maxConnectionAgeMs).toBe(300_000);
    expect(configSchema.shape.grpc.safeParse({ maxConnectionAgeMs: 50 }).error?.issues[0]?.message).toBe('must be at least 1000 (ms), or 0 for never');
    const options = (GrpcSecurity.fromConfig(settings({ loadBalancing: 'round_robin' })) as unknown as { clientOptions(o: object): Record<string, unknown> }).clientOptions({});
    expect(JSON.parse(String(options['grpc.service_config']))).toEqual({ loadBalancingConfig: [{ round_robin: {} }] });
    expect(options['grpc.service_config_disable_resolution']).toBe(1);
  });
});

describe('connection age (grpc.maxConnectionAgeMs)', () => {
  it('a server asks its clients to reconnect once a connection is that old; a stream in flight finishes on the old one', async () => {
    const server = await serve(GrpcSecurity.fromConfig(settings({ maxConnectionAgeMs: 300 })));
    const client = clientOf(GrpcSecurity.fromConfig(settings({ loadBalancing: 'round_robin' })), `127.0.0.1:${server.handle.port}`);

    const stream = (async () => {
      const out: string[] = [];
      for await (const m of readStream(() => client.stream(Buffer.from('hi'), new Metadata()), undefined, undefined, { timeoutMs: 30_000 })) out.push(m.toString());
      return out;
    })();
    // Unary calls until one arrives on another connection (another client port) than the stream's.
    while (server.peers.length === 0) await unary(client);
    const first = server.peers[0];
    for (let i = 0; i < 10_000 && server.peers.every((p) => p === first); i += 1) await unary(client);
    expect(new Set(server.peers).size).toBeGreaterThan(1);

    server.release();
    await expect(stream).resolves.toEqual(['first', 'last']);
  });

  it('no call fails while connections are renewed under load: a call the server refused unseen is started again', async () => {
    const server = await serve(GrpcSecurity.fromConfig(settings({ maxConnectionAgeMs: 200 })));
    server.release();
    const client = clientOf(GrpcSecurity.fromConfig(settings({ loadBalancing: 'round_robin' })), `127.0.0.1:${server.handle.port}`);
    const failures: unknown[] = [];
    let done = false;
    const streamed = async (): Promise<void> => {
      const out: string[] = [];
      for await (const m of readStream(() => client.stream(Buffer.from('hi'), new Metadata()), undefined, undefined, { timeoutMs: 10_000 })) out.push(m.toString());
      if (out.join() !== 'first,last') failures.push(new Error(`stream read ${out.join()}`));
    };
    const worker = async (n: number): Promise<void> => {
      while (!done) await (n % 2 === 0 ? unary(client) : streamed()).catch((error: unknown) => failures.push(error));
    };
    const workers = Array.from({ length: 8 }, (_, n) => worker(n));
    // Until the server has seen calls on at least five connections: four renewals under load.
    while (new Set(server.peers).size < 5 && failures.length === 0) await unary(client).catch((error: unknown) => failures.push(error));
    done = true;
    await Promise.all(workers);
    expect(failures).toEqual([]);
    expect(new Set(server.peers).size).toBeGreaterThanOrEqual(5);
  });
});

describe('a call refused unseen, started again', () => {
  it('on a channel closed meanwhile (a replica gone, a shutdown) fails as unavailable instead of throwing out of grpc-js', async () => {
    const server = await serve(GrpcSecurity.fromConfig(settings({})));
    const client = clientOf(GrpcSecurity.fromConfig(settings({})), `127.0.0.1:${server.handle.port}`);
    let calls = 0;
    // The first call is refused as a server renewing its connection refuses it; the channel is closed before the second.
    const method = (request: Buffer, metadata: Metadata, options: object, callback: (error: ServiceError | null, response: Buffer) => void): ClientUnaryCall => {
      calls += 1;
      if (calls === 1) {
        const refused = Object.assign(new Error('14 UNAVAILABLE: Stream refused by server'), { code: status.UNAVAILABLE, details: 'Stream refused by server', metadata: new Metadata() });
        setImmediate(() => callback(refused, Buffer.alloc(0)));
        return { cancel: () => undefined } as unknown as ClientUnaryCall;
      }
      client.close();
      return client.unary(request, metadata, options, callback);
    };
    const error = await callUnary(method, Buffer.from('hi'), new Metadata(), undefined, { timeoutMs: 5_000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(GatewayError);
    expect(error).toMatchObject({ kind: 'unavailable' });
    expect(calls).toBe(2);
  });

  it('a stream restarted on a channel closed meanwhile fails as unavailable (the router fails over), not as an internal error', async () => {
    const server = await serve(GrpcSecurity.fromConfig(settings({})));
    const client = clientOf(GrpcSecurity.fromConfig(settings({})), `127.0.0.1:${server.handle.port}`);
    let starts = 0;
    const start = (): ClientReadableStream<Buffer> => {
      starts += 1;
      if (starts === 1) {
        // Refused as a server renewing its connection refuses a stream; the channel closes before the restart.
        client.close();
        const fake = new PassThrough({ objectMode: true });
        setImmediate(() => fake.destroy(Object.assign(new Error('14 UNAVAILABLE: Stream refused by server'), { code: status.UNAVAILABLE, details: 'Stream refused by server', metadata: new Metadata() })));
        return Object.assign(fake, { cancel: () => undefined }) as unknown as ClientReadableStream<Buffer>;
      }
      return client.stream(Buffer.from('hi'), new Metadata());
    };
    const read = async (): Promise<unknown> => {
      try {
        for await (const _ of readStream(start, undefined, undefined, { timeoutMs: 5_000 })) void _;
        return undefined;
      } catch (error) {
        return error;
      }
    };
    expect(await read()).toMatchObject({ kind: 'unavailable' });
    expect(starts).toBe(2);
  });

  it('a first call on a closed channel fails as unavailable, unary and stream alike', async () => {
    const server = await serve(GrpcSecurity.fromConfig(settings({})));
    const client = clientOf(GrpcSecurity.fromConfig(settings({})), `127.0.0.1:${server.handle.port}`);
    client.close();
    const unaryError = await unary(client).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(unaryError).toBeInstanceOf(GatewayError);
    expect(unaryError).toMatchObject({ kind: 'unavailable' });
    let streamError: unknown;
    try {
      for await (const _ of readStream(() => client.stream(Buffer.from('hi'), new Metadata()))) void _;
    } catch (error) {
      streamError = error;
    }
    expect(streamError).toMatchObject({ kind: 'unavailable' });
  });
});

describe('a stream reset on its way (a proxy or mesh between the services, a pod going)', () => {
  let relay: Http2Server | undefined;
  const sessions: Array<{ destroy(): void }> = [];
  afterEach(async () => {
    // The client's connection would hold the server's close open.
    for (const session of sessions.splice(0)) session.destroy();
    await new Promise((done) => (relay ? relay.close(done) : done(undefined)));
  });

  it('fails as unavailable and retryable (the router fails over), not as an internal error no one retries', async () => {
    // An HTTP/2 peer that resets every stream with INTERNAL_ERROR, as an L7 proxy does when its upstream goes.
    relay = createHttp2Server();
    relay.on('session', (session) => sessions.push(session));
    relay.on('stream', (stream) => {
      stream.on('error', () => undefined);
      stream.resume();
      stream.close(2);
    });
    const listening = relay;
    await new Promise<void>((done) => listening.listen(0, '127.0.0.1', done));
    const client = clientOf(GrpcSecurity.fromConfig(settings({})), `127.0.0.1:${(relay.address() as AddressInfo).port}`);
    let failure: unknown;
    try {
      for await (const _ of readStream(() => client.stream(Buffer.from('hi'), new Metadata()), undefined, undefined, { timeoutMs: 5_000 })) void _;
    } catch (error) {
      failure = error;
    }
    expect(failure).toBeInstanceOf(GatewayError);
    expect(failure).toMatchObject({ kind: 'unavailable', code: 'internal_connection_failed', retryable: true });
  });
});
