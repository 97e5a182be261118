import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Metadata, type ServerUnaryCall } from '@grpc/grpc-js';
import { callUnary } from './grpc-call';
import { GrpcSecurity, type GrpcSecuritySettings } from './grpc-security';
import { GrpcServerHandle } from './grpc-server';
import { ADDRESS_LOOKUP_OPTION, type ResolvedAddress } from './polling-dns-resolver';
import { TEST_CALLS, TestCalls, type TestCallsClient } from './test-calls.testing';

/*
 * Replicas added behind a name get calls once the client looks the name up again. Every server
 * listens on 127.0.0.1, so the name's "records" are the servers' ports: the lookup is the test's.
 */

const NAME = 'backends.test';
/** The target's port: never dialled, as every answer gives the server's own. */
const TARGET = `${NAME}:50051`;
const INTERVAL_MS = 200;
const NO_TLS = { cert: '', key: '', ca: '', serverNameOverride: '' };

interface TestServer {
  handle: GrpcServerHandle;
  /** Calls it ran. */
  calls: number;
  record: ResolvedAddress;
}

/** A name whose records the test sets, and that fails while `failing`; each lookup is counted. */
class TestName {
  records: ResolvedAddress[] = [];
  failing = false;
  lookups = 0;
  failures = 0;
  readonly lookup = (host: string): Promise<ResolvedAddress[]> => {
    this.lookups += 1;
    if (host !== NAME) return Promise.reject(new Error(`getaddrinfo ENOTFOUND ${host}`));
    if (!this.failing) return Promise.resolve([...this.records]);
    this.failures += 1;
    return Promise.reject(new Error(`getaddrinfo EAI_AGAIN ${host}`));
  };
}

const servers: TestServer[] = [];
const clients: TestCallsClient[] = [];

async function serve(security: GrpcSecurity): Promise<TestServer> {
  const counted = { calls: 0 };
  const handle = await GrpcServerHandle.start(
    '127.0.0.1',
    0,
    [
      {
        definition: TEST_CALLS,
        implementation: {
          unary: (call: ServerUnaryCall<Buffer, Buffer>, callback: (error: null, response: Buffer) => void) => {
            counted.calls += 1;
            callback(null, call.request);
          },
          stream: () => undefined,
        },
      },
    ],
    security,
  );
  const server: TestServer = Object.assign(counted, { handle, record: { address: '127.0.0.1', port: handle.port } });
  servers.push(server);
  return server;
}

function clientOf(name: TestName, settings: Partial<GrpcSecuritySettings> = {}): TestCallsClient {
  const security = GrpcSecurity.fromConfig({ auth: { token: '' }, tls: NO_TLS, loadBalancing: 'round_robin', resolveIntervalMs: INTERVAL_MS, ...settings });
  const client = security.client(TestCalls, TARGET, { [ADDRESS_LOOKUP_OPTION]: name.lookup }) as unknown as TestCallsClient;
  clients.push(client);
  return client;
}

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  for (const server of servers.splice(0)) await server.handle.close(0);
});

const unary = (client: TestCallsClient): Promise<Buffer> => callUnary(client.unary.bind(client), Buffer.from('hi'), new Metadata(), undefined, { timeoutMs: 10_000 });

/** Calls, one after another, until `done` holds; the lookups run every INTERVAL_MS meanwhile. Bounded so a regression fails with a message, not the suite's timeout. */
async function callUntil(client: TestCallsClient, done: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 20_000 && !done(); i += 1) {
    await unary(client);
    // Let timers and lookups run between calls, however fast the calls are.
    await new Promise((next) => setImmediate(next));
  }
  if (!done()) throw new Error(`never happened: ${what}`);
}

async function calls(client: TestCallsClient, n: number): Promise<void> {
  for (let i = 0; i < n; i += 1) await unary(client);
}

describe('round_robin clients look a DNS name up again every grpc.resolveIntervalMs', () => {
  it('replicas added behind the name get calls, removed ones none, and a failed lookup keeps the last good list', async () => {
    const security = GrpcSecurity.fromConfig({ auth: { token: '' }, tls: NO_TLS });
    const a = await serve(security);
    const b = await serve(security);
    const name = new TestName();
    name.records = [a.record];
    const client = clientOf(name);

    await calls(client, 20);
    expect([a.calls, b.calls]).toEqual([20, 0]);

    // A scale-up: B's address is added to the name, and no connection breaks.
    name.records = [a.record, b.record];
    await callUntil(client, () => b.calls > 0, 'B called after it was added to the name');
    const before = { a: a.calls, b: b.calls };
    await calls(client, 20);
    // Both connected: round_robin alternates between them.
    expect(a.calls - before.a).toBeGreaterThanOrEqual(9);
    expect(b.calls - before.b).toBeGreaterThanOrEqual(9);

    // A scale-down: A leaves the name, and every call goes to B.
    name.records = [b.record];
    await callUntil(
      client,
      (() => {
        let seen = a.calls;
        let quiet = 0;
        // Ten calls in a row that A did not get: with A still in the list, it would have had every other one.
        return () => {
          quiet = a.calls === seen ? quiet + 1 : 0;
          seen = a.calls;
          return quiet >= 10;
        };
      })(),
      'A no longer called after it left the name',
    );
    const aCalls = a.calls;
    const bCalls = b.calls;
    await calls(client, 20);
    expect([a.calls - aCalls, b.calls - bCalls]).toEqual([0, 20]);

    // The name stops resolving: calls keep flowing to the last good list.
    name.failing = true;
    const afterFailures = b.calls;
    await callUntil(client, () => name.failures >= 3, 'three failed lookups');
    await calls(client, 20);
    expect(a.calls).toBe(aCalls);
    expect(b.calls - afterFailures).toBeGreaterThanOrEqual(20);
  });

  it('stops looking the name up once the client is closed', async () => {
    const server = await serve(GrpcSecurity.fromConfig({ auth: { token: '' }, tls: NO_TLS }));
    const closed = new TestName();
    closed.records = [server.record];
    const client = clientOf(closed);
    await callUntil(client, () => closed.lookups >= 2, 'a lookup by the timer');
    client.close();
    const lookups = closed.lookups;

    // Another client's lookups are the clock: three of its intervals pass with none of the closed client's.
    const clock = new TestName();
    clock.records = [server.record];
    const other = clientOf(clock);
    await callUntil(other, () => clock.lookups >= 4, 'three intervals of another client');
    expect(closed.lookups).toBe(lookups);
  });

  it('verifies TLS against the name, whatever address it resolves to', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'openrouter-grpc-dns-'));
    try {
      const path = (file: string): string => join(dir, file);
      const openssl = (...args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
      openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=ca', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
      openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', `/CN=${NAME}`);
      // The certificate names the host only, not 127.0.0.1: the client must check it as NAME.
      writeFileSync(path('server.ext'), `subjectAltName=DNS:${NAME}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n`);
      openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '1', '-extfile', 'server.ext');

      const server = await serve(GrpcSecurity.fromConfig({ auth: { token: '' }, tls: { ...NO_TLS, cert: path('server.crt'), key: path('server.key') } }));
      const name = new TestName();
      name.records = [server.record];
      const client = clientOf(name, { tls: { ...NO_TLS, ca: path('ca.crt') } });
      await expect(unary(client)).resolves.toEqual(Buffer.from('hi'));
      expect(server.calls).toBe(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
