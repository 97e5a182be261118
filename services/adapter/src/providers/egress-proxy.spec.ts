import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, request as httpRequest, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NO_PROXY_ENV, providerSchema, type ProviderConfig, type ProxyEnv } from '@openrouter/config';
import type { chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { parseChatRequest } from '@openrouter/openai-wire';
import { METADATA_TOKEN_PATH, startForwardProxy, startSimulator, TOKEN_PATH, type RunningForwardProxy, type RunningSimulator } from '@openrouter/provider-simulator';
import type { Egress } from './http-upstream';
import { ImageSource } from './image-source';
import { createProviderAdapter, type ProviderAdapter } from './provider-adapter';
import { PROVIDER_REGISTRY } from './provider.registry';

const CLIENT_EMAIL = 'gateway@sim-project.iam.gserviceaccount.com';
const SERVICE_ACCOUNT = (() => {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(), privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
})();
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64');

/** A certificate for 127.0.0.1 signed by a CA made here: what the adapter is told to trust. */
function makeTls(): { ca: string; key: string; cert: string } {
  const dir = mkdtempSync(join(tmpdir(), 'egress-tls-'));
  const openssl = (...args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  try {
    openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=egress-ca', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
    openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
    writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
    openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '1', '-extfile', 'server.ext');
    const read = (name: string): string => readFileSync(join(dir, name), 'utf8');
    return { ca: read('ca.crt'), key: read('server.key'), cert: read('server.crt') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function listening(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/** Every outbound call of the adapter against forward proxies on loopback that count what they carry. */
describe('egress through a forward proxy', () => {
  let sim: RunningSimulator;
  let proxy: RunningForwardProxy;
  let tlsFront: Server;
  let httpsBase: string;
  let closedPort: number;
  const tls = makeTls();
  const open: Array<{ close(): Promise<void> }> = [];

  beforeAll(async () => {
    sim = await startSimulator({ googleServiceAccounts: [{ clientEmail: CLIENT_EMAIL, publicKey: SERVICE_ACCOUNT.publicKey }] });
    proxy = await startForwardProxy();
    // The simulator behind TLS: an https provider, reached through a CONNECT tunnel.
    tlsFront = createHttpsServer({ key: tls.key, cert: tls.cert }, (req, res) => {
      const upstream = httpRequest(`${sim.url}${req.url ?? '/'}`, { method: req.method, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      req.pipe(upstream);
    });
    httpsBase = `https://127.0.0.1:${await listening(tlsFront)}`;
    const closed = createHttpServer();
    closedPort = await listening(closed);
    closed.close();
  });
  afterEach(async () => {
    proxy.calls.length = 0;
    sim.reset();
    await Promise.all(open.splice(0).map((o) => o.close()));
  });
  afterAll(async () => {
    tlsFront.close();
    await proxy.close();
    await sim.close();
  });

  const env = (proxyEnv: Partial<ProxyEnv>): Egress => ({ proxyEnv: { ...NO_PROXY_ENV, ...proxyEnv }, ca: tls.ca });

  function adapter(config: Record<string, unknown>, egress: Egress): ProviderAdapter {
    const images = new ImageSource();
    const created = createProviderAdapter(PROVIDER_REGISTRY, 'upstream', providerSchema.parse({ timeoutMs: 5_000, ...config }) as ProviderConfig, { images, egress });
    open.push(created, images);
    return created;
  }
  const openai = (egress: Egress, more: Record<string, unknown> = {}): ProviderAdapter => adapter({ type: 'openai', baseUrl: `${sim.url}/v1`, apiKey: 'k', ...more }, egress);

  async function chat(using: ProviderAdapter, model = 'gpt-4o-mini'): Promise<chatv1.ChatCompletion | undefined> {
    const request = parseChatRequest({ model: 'public', messages: [{ role: 'user', content: 'Hello there' }] });
    let completion: chatv1.ChatCompletion | undefined;
    for await (const response of using.chat({ requestId: 'r', upstreamModel: model, request, timeoutMs: 0, signal: new AbortController().signal })) completion = response.completion;
    return completion;
  }
  async function failure(using: ProviderAdapter): Promise<GatewayError> {
    const error: unknown = await chat(using).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(GatewayError);
    return error as GatewayError;
  }

  it('sends an http provider its calls through HTTP_PROXY, forwarded by absolute URL', async () => {
    const completion = await chat(openai(env({ httpProxy: proxy.url })));
    expect(completion?.choices[0]?.message?.content).toBeTruthy();
    expect(proxy.carried()).toEqual([{ kind: 'forward', target: `${sim.url}/v1/chat/completions`, status: 200 }]);
    expect(sim.requests()).toHaveLength(1);
  });

  it('tunnels an https provider its calls through HTTPS_PROXY with CONNECT, TLS checked end to end', async () => {
    const completion = await chat(openai(env({ httpsProxy: proxy.url }), { baseUrl: `${httpsBase}/v1` }));
    expect(completion?.choices[0]?.message?.content).toBeTruthy();
    expect(proxy.carried()).toEqual([{ kind: 'tunnel', target: new URL(httpsBase).host, status: 200 }]);
    // The provider's certificate is still checked through the tunnel: without the CA it is refused.
    const untrusted = adapter({ type: 'openai', baseUrl: `${httpsBase}/v1`, apiKey: 'k' }, { proxyEnv: { ...NO_PROXY_ENV, httpsProxy: proxy.url } });
    expect((await failure(untrusted)).kind).toBe('unavailable');
  });

  it('takes HTTP_PROXY for https when HTTPS_PROXY is not set, and nothing for http when only HTTPS_PROXY is', async () => {
    await chat(openai(env({ httpProxy: proxy.url }), { baseUrl: `${httpsBase}/v1` }));
    expect(proxy.carried().map((c) => c.kind)).toEqual(['tunnel']);
    proxy.calls.length = 0;
    await chat(openai(env({ httpsProxy: proxy.url })));
    expect(proxy.calls).toEqual([]);
  });

  it('reaches the hosts NO_PROXY names directly', async () => {
    for (const noProxy of ['127.0.0.1', `localhost, 127.0.0.1:${new URL(sim.url).port}`]) {
      expect(await chat(openai(env({ httpProxy: proxy.url, httpsProxy: proxy.url, noProxy })))).toBeDefined();
    }
    expect(proxy.calls).toEqual([]);
    // Another port of the host is not named: through the proxy.
    await chat(openai(env({ httpProxy: proxy.url, noProxy: '127.0.0.1:1' })));
    expect(proxy.carried()).toHaveLength(1);
  });

  it('reaches every host directly when NO_PROXY holds "*"', async () => {
    for (const noProxy of ['*', ' * ', 'vllm.internal, *']) {
      expect(await chat(openai(env({ httpProxy: proxy.url, httpsProxy: proxy.url, noProxy })))).toBeDefined();
      expect(await chat(openai(env({ httpProxy: proxy.url, httpsProxy: proxy.url, noProxy }), { baseUrl: `${httpsBase}/v1` }))).toBeDefined();
    }
    expect(proxy.calls).toEqual([]);
  });

  it('reaches an IPv6 address NO_PROXY names as written, bare or in brackets', async () => {
    const v6 = createHttpServer((req, res) => {
      const upstream = httpRequest(`${sim.url}${req.url ?? '/'}`, { method: req.method, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      req.pipe(upstream);
    });
    v6.listen(0, '::1');
    await once(v6, 'listening');
    open.push({ close: async () => void v6.close() });
    const port = (v6.address() as AddressInfo).port;
    for (const noProxy of ['::1', `[::1]:${port}`, ' ::1 ']) {
      expect(await chat(openai(env({ httpProxy: proxy.url, noProxy }), { baseUrl: `http://[::1]:${port}/v1` }))).toBeDefined();
    }
    expect(proxy.calls).toEqual([]);
  });

  it('goes direct for a provider whose proxy is "none", and through its own proxy without any in the environment', async () => {
    expect(await chat(openai(env({ httpProxy: proxy.url, httpsProxy: proxy.url }), { proxy: 'none' }))).toBeDefined();
    expect(proxy.calls).toEqual([]);
    // A provider's own proxy takes every call of it, NO_PROXY or not.
    expect(await chat(openai(env({ noProxy: '127.0.0.1' }), { proxy: proxy.url }))).toBeDefined();
    expect(proxy.carried()).toHaveLength(1);
  });

  describe('a proxy that asks for credentials', () => {
    let guarded: RunningForwardProxy;
    const password = 'pa:ss@w/rd';
    beforeAll(async () => {
      guarded = await startForwardProxy({ credentials: `gateway:${password}` });
    });
    afterAll(() => guarded.close());

    it('gets them from the proxy URL, for a forwarded request and a tunnel alike', async () => {
      expect(guarded.url).toContain(encodeURIComponent(password));
      expect(await chat(openai(env({ httpProxy: guarded.url })))).toBeDefined();
      expect(await chat(openai(env({ httpsProxy: guarded.url }), { baseUrl: `${httpsBase}/v1` }))).toBeDefined();
      expect(guarded.carried().map((c) => c.kind)).toEqual(['forward', 'tunnel']);
    });

    it('makes its 407 a retryable "unavailable" naming the refusal, never the credentials', async () => {
      const wrong = guarded.url.replace(encodeURIComponent(password), 'wrong-secret');
      for (const upstream of [openai(env({ httpProxy: wrong })), openai(env({ httpsProxy: wrong }), { baseUrl: `${httpsBase}/v1` })]) {
        const error = await failure(upstream);
        expect(error).toMatchObject({ kind: 'unavailable', retryable: true, provider: 'upstream', upstreamStatus: 407 });
        expect(error.message).toBe('The provider "upstream" could not be reached: the forward proxy refused the connection with HTTP 407 Proxy Authentication Required (check the credentials of the proxy URL).');
        expect(`${error.message} ${String(error.cause)} ${JSON.stringify(error)}`).not.toMatch(/wrong-secret|gateway:/);
      }
      expect(sim.requests()).toHaveLength(0);
      expect(guarded.calls.map((c) => [c.kind, c.status])).toEqual(expect.arrayContaining([['forward', 407], ['tunnel', 407]]));
    });
  });

  it('makes a 403 on CONNECT, and a proxy that refuses connections, retryable "unavailable" errors', async () => {
    const forbidding = await startForwardProxy({ refuseWith: 403 });
    open.push(forbidding);
    const forbidden = await failure(openai(env({ httpsProxy: forbidding.url }), { baseUrl: `${httpsBase}/v1` }));
    expect(forbidden).toMatchObject({ kind: 'unavailable', retryable: true, upstreamStatus: 403 });
    expect(forbidden.message).toContain('the forward proxy refused the connection with HTTP 403 Forbidden');

    const down = await failure(openai(env({ httpProxy: `http://user:secret@127.0.0.1:${closedPort}` })));
    expect(down).toMatchObject({ kind: 'unavailable', retryable: true });
    expect(down.message).toBe('The provider "upstream" could not be reached.');
    expect(`${String(down.cause)} ${JSON.stringify(down)}`).not.toContain('secret');
  });

  it('fetches image URLs through the proxy, refusing a host that resolves to a private address before asking the proxy', async () => {
    const images = createHttpServer((_req, res) => res.writeHead(200, { 'content-type': 'image/png' }).end(PNG));
    const port = await listening(images);
    open.push({ close: async () => void images.close() });
    const mapping = await startForwardProxy({ hosts: { 'images.example': '127.0.0.1' } });
    open.push(mapping);
    const resolve = async (host: string) => [{ address: host === 'images.example' ? '93.184.215.14' : '127.0.0.1', family: 4 }];
    const source = new ImageSource(undefined, { egress: env({ httpProxy: mapping.url }), resolve });
    open.push(source);
    const signal = new AbortController().signal;

    const image = await source.load(`http://images.example:${port}/cat.png`, { signal });
    expect(image).toEqual({ mediaType: 'image/png', base64: PNG.toString('base64') });
    expect(mapping.carried()).toEqual([{ kind: 'forward', target: `http://images.example:${port}/cat.png`, status: 200 }]);

    // The proxy would reach the private network: a name resolving there is refused here, unasked.
    await expect(source.load(`http://internal.example:${port}/cat.png`, { signal })).rejects.toMatchObject({ code: 'invalid_image_url' });
    await expect(source.load(`http://127.0.0.1:${port}/cat.png`, { signal })).rejects.toMatchObject({ code: 'invalid_image_url' });
    expect(mapping.calls).toHaveLength(1);
  });

  it('takes Vertex AI tokens from the metadata server directly while the calls go through the proxy', async () => {
    const vertex = adapter(
      { type: 'vertex', project: 'sim-project', location: 'europe-west4', baseUrl: sim.url, metadataServer: true, metadataServerUrl: `${sim.url}${METADATA_TOKEN_PATH}` },
      env({ httpProxy: proxy.url }),
    );
    expect(await chat(vertex, 'gemini-2.5-flash')).toBeDefined();
    expect(sim.requests().map((r) => r.path)).toContain(METADATA_TOKEN_PATH);
    expect(proxy.carried().map((c) => new URL(c.target).pathname)).toEqual(['/v1/projects/sim-project/locations/europe-west4/publishers/google/models/gemini-2.5-flash:generateContent']);
  });

  it("sends a service account's token request, and AWS Bedrock's signed calls, through the proxy", async () => {
    const vertex = adapter(
      { type: 'vertex', project: 'sim-project', location: 'europe-west4', baseUrl: sim.url, credentials: { clientEmail: CLIENT_EMAIL, privateKey: SERVICE_ACCOUNT.privateKey, tokenUri: `${sim.url}${TOKEN_PATH}` } },
      env({ httpProxy: proxy.url }),
    );
    expect(await chat(vertex, 'gemini-2.5-flash')).toBeDefined();
    const bedrock = adapter({ type: 'bedrock', region: 'us-east-1', baseUrl: sim.url, credentials: { accessKeyId: 'AKIDSIMULATED', secretAccessKey: 'k' } }, env({ httpProxy: proxy.url }));
    expect(await chat(bedrock, 'anthropic.claude-3-5-sonnet-20241022-v2:0')).toBeDefined();
    expect(proxy.carried().map((c) => new URL(c.target).pathname)).toEqual([TOKEN_PATH, expect.stringContaining(':generateContent'), expect.stringMatching(/\/converse$/)]);
  });
});
