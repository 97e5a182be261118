import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials, InterceptingCall, Metadata, status, type Client, type ServerUnaryCall, type ServerWritableStream, type ServiceError } from '@grpc/grpc-js';
import { ConfigError } from '@openrouter/config';
import { GatewayError } from '@openrouter/errors';
import { toOpenAIError } from '@openrouter/openai-wire';
import { callUnary, readStream } from './grpc-call';
import { GrpcSecurity, SERVICE_TOKEN_HEADER, type GrpcSecuritySettings } from './grpc-security';
import { CHANNEL_OPTIONS, GrpcServerHandle } from './grpc-server';
import { TEST_CALLS, TestCalls, type TestCallsClient } from './test-calls.testing';

const definition = TEST_CALLS;
const Calls = TestCalls;
type TestClient = TestCallsClient;

const TOKEN = 'a-service-token-of-32-characters-or-more';
const NO_TLS = { cert: '', key: '', ca: '', serverNameOverride: '' };

function security(token: string, tls: Partial<GrpcSecuritySettings['tls']> = {}): GrpcSecurity {
  return GrpcSecurity.fromConfig({ auth: { token }, tls: { ...NO_TLS, ...tls } });
}

/** A server whose handlers record every call they run, and the token header they were given. */
async function serve(serverSecurity: GrpcSecurity): Promise<{ server: GrpcServerHandle; handled: Array<{ method: string; token: unknown[] }> }> {
  const handled: Array<{ method: string; token: unknown[] }> = [];
  const server = await GrpcServerHandle.start(
    '127.0.0.1',
    0,
    [
      {
        definition,
        implementation: {
          unary: (call: ServerUnaryCall<Buffer, Buffer>, callback: (error: null, response: Buffer) => void) => {
            handled.push({ method: 'unary', token: call.metadata.get(SERVICE_TOKEN_HEADER) });
            callback(null, Buffer.concat([Buffer.from('echo:'), call.request]));
          },
          stream: (call: ServerWritableStream<Buffer, Buffer>) => {
            handled.push({ method: 'stream', token: call.metadata.get(SERVICE_TOKEN_HEADER) });
            call.write(Buffer.from('one'));
            call.write(Buffer.from('two'));
            call.end();
          },
        },
      },
    ],
    serverSecurity,
  );
  return { server, handled };
}

const clients: Client[] = [];
function clientOf(clientSecurity: GrpcSecurity, address: string): TestClient {
  const client = clientSecurity.client(Calls, address) as unknown as TestClient;
  clients.push(client);
  return client;
}
afterEach(() => {
  for (const client of clients.splice(0)) client.close();
});

const unary = (client: TestClient): Promise<Buffer> => callUnary(client.unary.bind(client), Buffer.from('hi'), new Metadata(), undefined, { timeoutMs: 10_000 });
async function streamed(client: TestClient): Promise<string[]> {
  const out: string[] = [];
  for await (const message of readStream(client.stream(Buffer.from('hi'), new Metadata()), undefined, undefined, { timeoutMs: 10_000 })) out.push(message.toString());
  return out;
}
async function failure(call: Promise<unknown>): Promise<GatewayError> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof GatewayError)) throw new Error(`expected the call to fail with a GatewayError, got ${String(error)}`);
  return error;
}
const grpcCode = (error: GatewayError): number | undefined => (error.cause as Partial<ServiceError> | undefined)?.code;

describe('the service token between services', () => {
  let server: GrpcServerHandle;
  let handled: Array<{ method: string; token: unknown[] }>;
  let address = '';

  beforeAll(async () => {
    ({ server, handled } = await serve(security(TOKEN)));
    address = `127.0.0.1:${server.port}`;
  });
  afterAll(() => server.close(0));
  beforeEach(() => handled.splice(0));

  it.each([
    ['without a token', ''],
    ['with a wrong token', 'another-token-that-is-32-characters-long'],
  ])('refuses unary and streaming calls %s with UNAUTHENTICATED before the handler runs', async (_case, token) => {
    const client = clientOf(security(token), address);
    const refusals = [await failure(unary(client)), await failure(streamed(client))];
    for (const error of refusals) {
      expect(grpcCode(error)).toBe(status.UNAUTHENTICATED);
      // The caller's peer refused the gateway's own credentials: a server error, never the client's 401.
      expect(error.kind).toBe('internal');
      expect(toOpenAIError(error)).toMatchObject({ status: 500, body: { error: { type: 'server_error' } } });
    }
    expect(handled).toEqual([]);
  });

  it('serves unary and streaming calls with the token, and hides it from the handlers', async () => {
    const client = clientOf(security(TOKEN), address);
    expect((await unary(client)).toString()).toBe('echo:hi');
    expect(await streamed(client)).toEqual(['one', 'two']);
    expect(handled).toEqual([
      { method: 'unary', token: [] },
      { method: 'stream', token: [] },
    ]);
  });

  it('keeps the interceptors a client brings (tracing), and still sends the token', async () => {
    const seen: string[] = [];
    const client = security(TOKEN).client(Calls, address, {
      interceptors: [
        (options, nextCall) => {
          seen.push(options.method_definition.path);
          return new InterceptingCall(nextCall(options));
        },
      ],
    }) as unknown as TestClient;
    clients.push(client);
    expect((await unary(client)).toString()).toBe('echo:hi');
    expect(seen).toEqual(['/test.Calls/Unary']);
  });

  it('takes the accepted tokens of a rotation besides its own, and no other', async () => {
    const next = 'the-next-service-token-of-32-characters';
    const rotating = await serve(GrpcSecurity.fromConfig({ auth: { token: next, acceptedTokens: [TOKEN] }, tls: NO_TLS }));
    try {
      const at = `127.0.0.1:${rotating.server.port}`;
      // Clients not restarted yet send the old token, those restarted the new one: both are served.
      for (const token of [TOKEN, next]) expect((await unary(clientOf(security(token), at))).toString()).toBe('echo:hi');
      expect(grpcCode(await failure(unary(clientOf(security('a-third-token-of-32-characters-or-more'), at))))).toBe(status.UNAUTHENTICATED);
      expect(rotating.handled).toHaveLength(2);
    } finally {
      await rotating.server.close(0);
    }
  });

  it('says when a listener takes calls from anyone who reaches it: no token, no client certificates, not on loopback', async () => {
    expect(security('').exposure('0.0.0.0')).toContain('grpc.auth.token is empty');
    expect(security('').exposure('10.1.2.3')).toContain('the gRPC listener on 10.1.2.3');
    expect(security('').exposure('::')).toBeDefined();
    for (const loopback of ['127.0.0.1', '127.0.1.1', 'localhost', '::1', '[::1]']) expect(security('').exposure(loopback)).toBeUndefined();
    expect(security(TOKEN).exposure('0.0.0.0')).toBeUndefined();
    // Told by the server's start, once: on 0.0.0.0 without a token; not on loopback, nor with one.
    const told: string[] = [];
    const open = await GrpcServerHandle.start('0.0.0.0', 0, [], security(''), (warning) => told.push(warning));
    const local = await GrpcServerHandle.start('127.0.0.1', 0, [], security(''), (warning) => told.push(warning));
    const guarded = await GrpcServerHandle.start('0.0.0.0', 0, [], security(TOKEN), (warning) => told.push(warning));
    await Promise.all([open, local, guarded].map((server) => server.close(0)));
    expect(told).toEqual([expect.stringContaining('the gRPC listener on 0.0.0.0 takes calls without a service token')]);
  });

  it('leaves a server without a token open, as before', async () => {
    const open = await serve(security(''));
    try {
      expect((await unary(clientOf(security(TOKEN), `127.0.0.1:${open.server.port}`))).toString()).toBe('echo:hi');
      expect((await unary(clientOf(security(''), `127.0.0.1:${open.server.port}`))).toString()).toBe('echo:hi');
    } finally {
      await open.server.close(0);
    }
  });
});

/** A throw-away PKI made with openssl: a CA, certificates it signed, and a second, foreign CA. */
interface Pki {
  dir: string;
  path(name: string): string;
}

function makePki(): Pki {
  const dir = mkdtempSync(join(tmpdir(), 'openrouter-grpc-tls-'));
  const path = (name: string): string => join(dir, name);
  const openssl = (...args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ca = (name: string): void =>
    openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '1', '-subj', `/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  const leaf = (name: string, signer: string, altNames: string): void => {
    openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    writeFileSync(path(`${name}.ext`), `subjectAltName=${altNames}\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n`);
    openssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${signer}.crt`, '-CAkey', `${signer}.key`, '-CAcreateserial', '-out', `${name}.crt`, '-days', '1', '-extfile', `${name}.ext`);
  };
  ca('ca');
  ca('foreign-ca');
  leaf('server', 'ca', 'DNS:localhost,IP:127.0.0.1');
  leaf('named-server', 'ca', 'DNS:router.internal');
  leaf('client', 'ca', 'DNS:ingress');
  leaf('foreign-client', 'foreign-ca', 'DNS:ingress');
  return { dir, path };
}

describe('TLS between services', () => {
  let pki: Pki;
  const tls = (files: Partial<Record<'cert' | 'key' | 'ca', string>>, serverNameOverride = ''): Partial<GrpcSecuritySettings['tls']> => ({
    ...Object.fromEntries(Object.entries(files).map(([k, name]) => [k, pki.path(name)])),
    serverNameOverride,
  });
  const started: GrpcServerHandle[] = [];
  const tlsServer = async (files: Partial<Record<'cert' | 'key' | 'ca', string>>, token = ''): Promise<{ address: string; handled: Array<{ method: string }> }> => {
    const { server, handled } = await serve(security(token, tls(files)));
    started.push(server);
    return { address: `127.0.0.1:${server.port}`, handled };
  };

  beforeAll(() => {
    pki = makePki();
  });
  afterEach(async () => {
    for (const server of started.splice(0)) await server.close(0);
  });
  afterAll(() => rmSync(pki.dir, { recursive: true, force: true }));

  it('serves a client that verifies the server against the CA', async () => {
    const { address, handled } = await tlsServer({ cert: 'server.crt', key: 'server.key' });
    const client = clientOf(security('', tls({ ca: 'ca.crt' })), address);
    expect((await unary(client)).toString()).toBe('echo:hi');
    expect(await streamed(client)).toEqual(['one', 'two']);
    expect(handled.map((h) => h.method)).toEqual(['unary', 'stream']);
  });

  it('is refused by a client whose CA did not sign the server certificate', async () => {
    const { address, handled } = await tlsServer({ cert: 'server.crt', key: 'server.key' });
    const error = await failure(unary(clientOf(security('', tls({ ca: 'foreign-ca.crt' })), address)));
    expect(grpcCode(error)).toBe(status.UNAVAILABLE);
    expect(handled).toEqual([]);
  });

  it('checks the server certificate against the host of the address, or the configured server name', async () => {
    const { address, handled } = await tlsServer({ cert: 'named-server.crt', key: 'named-server.key' });
    const error = await failure(unary(clientOf(security('', tls({ ca: 'ca.crt' })), address)));
    expect(grpcCode(error)).toBe(status.UNAVAILABLE);
    expect(handled).toEqual([]);
    expect((await unary(clientOf(security('', tls({ ca: 'ca.crt' }, 'router.internal')), address))).toString()).toBe('echo:hi');
  });

  it('with a CA, requires a client certificate it signed (mutual TLS)', async () => {
    const { address, handled } = await tlsServer({ cert: 'server.crt', key: 'server.key', ca: 'ca.crt' }, TOKEN);
    const mutual = clientOf(security(TOKEN, tls({ cert: 'client.crt', key: 'client.key', ca: 'ca.crt' })), address);
    expect((await unary(mutual)).toString()).toBe('echo:hi');
    expect(await streamed(mutual)).toEqual(['one', 'two']);
    expect(handled).toHaveLength(2);

    const anonymous = await failure(unary(clientOf(security(TOKEN, tls({ ca: 'ca.crt' })), address)));
    const foreign = await failure(unary(clientOf(security(TOKEN, tls({ cert: 'foreign-client.crt', key: 'foreign-client.key', ca: 'ca.crt' })), address)));
    for (const error of [anonymous, foreign]) expect(grpcCode(error)).toBe(status.UNAVAILABLE);
    expect(handled).toHaveLength(2);
  });

  it('with a CA (client certificates required), takes no call from anyone: no exposure without a token', () => {
    expect(security('', tls({ cert: 'server.crt', key: 'server.key', ca: 'ca.crt' })).exposure('0.0.0.0')).toBeUndefined();
    // Server TLS alone verifies no client.
    expect(security('', tls({ cert: 'server.crt', key: 'server.key' })).exposure('0.0.0.0')).toBeDefined();
  });

  it('cannot be spoken to in plaintext', async () => {
    const { address, handled } = await tlsServer({ cert: 'server.crt', key: 'server.key' });
    const plaintext = new Calls(address, credentials.createInsecure(), CHANNEL_OPTIONS) as unknown as TestClient;
    clients.push(plaintext);
    const error = await failure(unary(plaintext));
    expect(grpcCode(error)).toBe(status.UNAVAILABLE);
    expect(handled).toEqual([]);
  });

  it('names the file when one is missing or unreadable, or when the key is not the certificate’s', () => {
    const missing = pki.path('absent.crt');
    const read = (): ConfigError => {
      try {
        security('', tls({ cert: 'absent.crt', key: 'server.key', ca: 'ca.crt' }));
      } catch (error) {
        if (error instanceof ConfigError) return error;
        throw error;
      }
      throw new Error('no ConfigError');
    };
    expect(read().problems).toEqual([expect.stringContaining(`grpc.tls.cert: cannot read "${missing}": ENOENT`)]);
    expect(() => security('', { cert: pki.dir, key: pki.path('server.key') })).toThrow(new RegExp(`grpc\\.tls\\.cert: cannot read "${pki.dir}": EISDIR`));
    expect(() => security('', tls({ cert: 'server.crt', key: 'client.key' }))).toThrow(/grpc\.tls: the files cannot be used together \(cert ".*server\.crt", key ".*client\.key"\)/);
  });

  it('refuses to start a server that has a CA but no certificate of its own', async () => {
    await expect(GrpcServerHandle.start('127.0.0.1', 0, [], security('', tls({ ca: 'ca.crt' })))).rejects.toThrow(/grpc\.tls\.cert, grpc\.tls\.key: a gRPC server needs its certificate and key/);
  });
});
