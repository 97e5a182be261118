import { generateKeyPairSync } from 'node:crypto';
import { providerSchema, type ProviderConfig } from '@openrouter/config';
import type { adapterv1 } from '@openrouter/contracts';
import { CredentialFileMetrics, Registry } from '@openrouter/observability';
import { parseChatRequest, parseEmbeddingRequest } from '@openrouter/openai-wire';
import { type RunningSimulator, SecretVolume, startSimulator, TOKEN_PATH } from '@openrouter/provider-simulator';
import { failure } from './gateway-failure.testing';
import { ImageSource } from './image-source';
import { createProviderAdapter, type ProviderAdapter } from './provider-adapter';
import { PROVIDER_REGISTRY } from './provider.registry';
import { eventually } from './eventually.testing';

/** Only a refusal can make the adapter read a file again within a test: the checks are an hour apart. */
const HOUR = 3_600_000;
const KEY_1 = 'sk-rotation-first-0001';
const KEY_2 = 'sk-rotation-second-0002';
const KEY_3 = 'sk-rotation-third-0003';

interface Family {
  /** The provider's configuration with its secret in `volume`'s file `secret`. */
  config(url: string, volume: SecretVolume, checkIntervalMs: number): Record<string, unknown>;
  model: string;
  /** The simulator's route of a chat call. */
  chatPath: RegExp;
  /** The status the simulator refuses a wrong secret with. */
  refusal: number;
  embeddingModel?: string;
}

const FAMILIES: Record<string, Family> = {
  openai: {
    config: (url, volume, every) => ({ type: 'openai', baseUrl: `${url}/v1`, apiKeyFile: volume.path('secret'), credentialFileCheckIntervalMs: every }),
    model: 'gpt-4o-mini',
    chatPath: /^\/v1\/chat\/completions$/,
    refusal: 401,
    embeddingModel: 'text-embedding-3-small',
  },
  azure: {
    config: (url, volume, every) => ({ type: 'azure', baseUrl: url, apiKeyFile: volume.path('secret'), credentialFileCheckIntervalMs: every }),
    model: 'my-gpt-4o-deployment',
    chatPath: /^\/openai\/deployments\/[^/]+\/chat\/completions$/,
    refusal: 401,
  },
  anthropic: {
    config: (url, volume, every) => ({ type: 'anthropic', baseUrl: url, apiKeyFile: volume.path('secret'), credentialFileCheckIntervalMs: every }),
    model: 'claude-sonnet-4-5',
    chatPath: /^\/v1\/messages$/,
    refusal: 401,
  },
  gemini: {
    // Gemini refuses a wrong key with 400 API_KEY_INVALID: the error mapping, not the status, says it is the key.
    config: (url, volume, every) => ({ type: 'gemini', baseUrl: `${url}/v1beta`, apiKeyFile: volume.path('secret'), credentialFileCheckIntervalMs: every }),
    model: 'gemini-2.5-flash',
    chatPath: /:generateContent$/,
    refusal: 400,
    embeddingModel: 'gemini-embedding-001',
  },
  bedrock: {
    config: (url, volume, every) => ({ type: 'bedrock', region: 'us-east-1', baseUrl: url, credentials: { accessKeyIdFile: volume.path('key-id'), secretAccessKeyFile: volume.path('secret') }, credentialFileCheckIntervalMs: every }),
    model: 'anthropic.claude-3-5-sonnet-20241022-v2:0',
    chatPath: /\/converse$/,
    refusal: 403,
  },
  vertex: {
    config: (url, volume, every) => ({ type: 'vertex', project: 'sim-project', location: 'us-central1', baseUrl: url, accessTokenFile: volume.path('secret'), credentialFileCheckIntervalMs: every }),
    model: 'gemini-2.5-flash',
    chatPath: /:generateContent$/,
    refusal: 401,
  },
};

/** Every family whose credential is a static secret, with it in a Kubernetes-style Secret volume, against the simulated provider. */
describe('provider credentials in files, rotated without a restart', () => {
  let sim: RunningSimulator;
  const images = new ImageSource();
  const open: ProviderAdapter[] = [];
  const volumes: SecretVolume[] = [];

  beforeAll(async () => {
    sim = await startSimulator();
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((a) => a.close()));
    for (const volume of volumes.splice(0)) volume.remove();
    sim.reset();
  });
  afterAll(async () => {
    await images.close();
    await sim.close();
  });

  function start(family: Family, checkIntervalMs: number, metrics?: CredentialFileMetrics): { adapter: ProviderAdapter; volume: SecretVolume } {
    sim.setApiKey(KEY_1);
    const volume = new SecretVolume({ secret: `${KEY_1}\n`, 'key-id': 'AKIDSIMULATED' });
    volumes.push(volume);
    const config = providerSchema.parse({ timeoutMs: 5_000, ...family.config(sim.url, volume, checkIntervalMs) }) as ProviderConfig;
    const adapter = createProviderAdapter(PROVIDER_REGISTRY, 'rotated', config, { images, credentialFiles: { metrics } });
    open.push(adapter);
    return { adapter, volume };
  }

  /** The provider's key and the mounted file both change, as a rotation does. */
  function rotate(volume: SecretVolume, key: string): void {
    sim.setApiKey(key);
    volume.write({ secret: `${key}\n`, 'key-id': 'AKIDSIMULATED' });
  }

  const request = (model: string, body: Record<string, unknown> = {}) => ({
    requestId: 'req-1',
    upstreamModel: model,
    request: parseChatRequest({ model: 'public-model', messages: [{ role: 'user', content: 'Hello there' }], ...body }),
    timeoutMs: 0,
    signal: new AbortController().signal,
  });
  async function chat(adapter: ProviderAdapter, model: string, body: Record<string, unknown> = {}): Promise<adapterv1.ChatResponse[]> {
    const out: adapterv1.ChatResponse[] = [];
    for await (const response of adapter.chat(request(model, body))) out.push(response);
    return out;
  }
  /** The simulator's log of the whole (not streamed) chat calls. */
  const chatCalls = (family: Family) => sim.requests().filter((r) => family.chatPath.test(r.path) && !r.stream);

  describe.each(Object.entries(FAMILIES))('%s', (_name, family) => {
    it('takes a rotated secret on the refusal of the old one: the call is sent once more and answered', async () => {
      const { adapter, volume } = start(family, HOUR);
      expect((await chat(adapter, family.model))[0]?.completion?.choices[0]?.message?.content).toMatch(/\w+/);

      rotate(volume, KEY_2);
      expect((await chat(adapter, family.model))[0]?.completion?.choices[0]?.message?.content).toMatch(/\w+/);
      // A stream starts with the key in hand, now the new one.
      const streamed = await chat(adapter, family.model, { stream: true });
      expect(streamed.length).toBeGreaterThan(1);
      expect(chatCalls(family).map((r) => r.outcome)).toEqual(['completed', 'error', 'completed']);
      expect(sim.requests().filter((r) => r.stream).map((r) => r.outcome)).toEqual(['completed']);
    });

    it('passes the refusal on, with one call and no secret in it, when the file was not rotated with the key', async () => {
      const { adapter } = start(family, HOUR);
      sim.setApiKey(KEY_3);
      const error = await failure(chat(adapter, family.model));
      expect(error).toMatchObject({ upstreamStatus: family.refusal, provider: 'rotated' });
      expect(['auth_failed', 'permission_denied']).toContain(error.kind);
      expect(JSON.stringify({ message: error.message, cause: String(error.cause) })).not.toMatch(/sk-rotation/);
      expect(chatCalls(family).map((r) => r.outcome)).toEqual(['error']);
    });
  });

  it('takes a rotated key at the next check, before any call is refused', async () => {
    const registry = new Registry();
    const { adapter, volume } = start(FAMILIES['openai'] as Family, 100, new CredentialFileMetrics(registry));
    rotate(volume, KEY_2);
    const changed = async (): Promise<number> =>
      ((await registry.getSingleMetric('openrouter_provider_credential_file_reloads_total')?.get())?.values ?? []).find((v) => v.labels['outcome'] === 'changed')?.value ?? 0;
    await eventually(async () => (await changed()) === 1, 'the check to take the new key');
    await chat(adapter, 'gpt-4o-mini');
    const embedded = await adapter.embed({ ...request('text-embedding-3-small'), request: parseEmbeddingRequest({ model: 'embed', input: ['a', 'b'] }).request });
    expect(embedded.data).toHaveLength(2);
    expect(sim.requests().map((r) => r.outcome)).toEqual(['completed', 'completed']);
  });

  it('Gemini embeddings take a rotated key on a refusal too', async () => {
    const gemini = FAMILIES['gemini'] as Family;
    const { adapter, volume } = start(gemini, HOUR);
    rotate(volume, KEY_2);
    const embedded = await adapter.embed({ ...request(gemini.embeddingModel ?? ''), request: parseEmbeddingRequest({ model: 'embed', input: ['a'] }).request });
    expect(embedded.data).toHaveLength(1);
    expect(sim.requests().map((r) => r.outcome)).toEqual(['error', 'completed']);
  });
});

/** Azure OpenAI with Entra ID: the app registration's client secret in a file, rotated while a token is cached. */
describe('an Entra ID client secret in a file, rotated without a restart', () => {
  const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
  const APP = { tenantId: TENANT, clientId: 'gateway-app', clientSecret: 'Xy8Q~first-secret' };
  let sim: RunningSimulator;
  const images = new ImageSource();

  beforeAll(async () => {
    sim = await startSimulator({ entraApps: [APP] });
  });
  afterAll(async () => {
    await images.close();
    await sim.close();
  });

  it('fetches the next token with the new secret, read again when Entra ID refused the old one', async () => {
    const volume = new SecretVolume({ 'client-secret': APP.clientSecret });
    const config = providerSchema.parse({
      type: 'azure',
      baseUrl: sim.url,
      timeoutMs: 5_000,
      credentialFileCheckIntervalMs: HOUR,
      entra: { tenantId: TENANT, clientId: APP.clientId, clientSecretFile: volume.path('client-secret'), authorityHost: sim.url },
    }) as ProviderConfig;
    const adapter = createProviderAdapter(PROVIDER_REGISTRY, 'azure-entra', config, { images });
    try {
      const call = () => ({ requestId: 'r', upstreamModel: 'my-gpt-4o-deployment', request: parseChatRequest({ model: 'm', messages: [{ role: 'user', content: 'Hi' }] }), timeoutMs: 0, signal: new AbortController().signal });
      const drain = async () => {
        for await (const _ of adapter.chat(call())) void _;
      };
      await drain();
      // The secret is rotated (the old one no longer valid) and the cached token expires.
      sim.registerEntraApp({ ...APP, clientSecret: 'Xy8Q~second-secret' });
      volume.write({ 'client-secret': 'Xy8Q~second-secret\n' });
      sim.expireAccessTokens();
      await drain();
      const tokenCalls = sim.requests().filter((r) => r.path === `/${TENANT}/oauth2/v2.0/token`);
      expect(tokenCalls.map((r) => r.outcome)).toEqual(['completed', 'error', 'completed']);
      const modelCalls = sim.requests().filter((r) => r.path.startsWith('/openai/deployments/'));
      expect(modelCalls.map((r) => r.outcome)).toEqual(['completed', 'error', 'completed']);
    } finally {
      await adapter.close();
      volume.remove();
    }
  });
});

/**
 * Vertex AI with a service-account JSON key file mounted from a Kubernetes Secret: a new key of the
 * same account is mounted (the kubelet's `..data` swap) and the old one deleted in Google Cloud
 * (the simulated token endpoint trusts the new key only), while the adapter runs.
 */
describe('a Vertex service-account key file, rotated without a restart', () => {
  const EMAIL = 'gateway@sim-project.iam.gserviceaccount.com';
  // Made at test time; no private key is committed.
  const keyPair = (): { publicKey: string; privateKey: string } => {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    return { publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(), privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
  };
  const KEY_A = keyPair();
  const KEY_B = keyPair();
  let sim: RunningSimulator;
  const images = new ImageSource();
  const open: ProviderAdapter[] = [];
  const volumes: SecretVolume[] = [];

  beforeAll(async () => {
    sim = await startSimulator();
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((a) => a.close()));
    for (const volume of volumes.splice(0)) volume.remove();
    sim.reset();
  });
  afterAll(async () => {
    await images.close();
    await sim.close();
  });

  const keyFile = (key: { privateKey: string }): string =>
    `${JSON.stringify({ type: 'service_account', project_id: 'sim-project', private_key_id: 'k', private_key: key.privateKey, client_email: EMAIL, token_uri: `${sim.url}${TOKEN_PATH}` }, null, 2)}\n`;

  function start(checkIntervalMs: number, metrics?: CredentialFileMetrics): { adapter: ProviderAdapter; volume: SecretVolume } {
    sim.trustServiceAccount({ clientEmail: EMAIL, publicKey: KEY_A.publicKey });
    const volume = new SecretVolume({ 'key.json': keyFile(KEY_A) });
    volumes.push(volume);
    const config = providerSchema.parse({
      type: 'vertex',
      project: 'sim-project',
      location: 'us-central1',
      baseUrl: sim.url,
      timeoutMs: 5_000,
      credentialsFile: volume.path('key.json'),
      credentialFileCheckIntervalMs: checkIntervalMs,
    }) as ProviderConfig;
    const adapter = createProviderAdapter(PROVIDER_REGISTRY, 'vertex-rotated', config, { images, credentialFiles: { metrics } });
    open.push(adapter);
    return { adapter, volume };
  }

  /** Key B is mounted in place of key A, and A deleted: the token endpoint trusts B only (one key per account in the simulator). */
  function rotate(volume: SecretVolume): void {
    sim.trustServiceAccount({ clientEmail: EMAIL, publicKey: KEY_B.publicKey });
    volume.write({ 'key.json': keyFile(KEY_B) });
  }

  const call = (model: string, body: Record<string, unknown> = {}) => ({
    requestId: 'req-1',
    upstreamModel: model,
    request: parseChatRequest({ model: 'public-model', messages: [{ role: 'user', content: 'Hello there' }], ...body }),
    timeoutMs: 0,
    signal: new AbortController().signal,
  });
  async function chat(adapter: ProviderAdapter, model = 'gemini-2.5-flash', body: Record<string, unknown> = {}): Promise<adapterv1.ChatResponse[]> {
    const out: adapterv1.ChatResponse[] = [];
    for await (const response of adapter.chat(call(model, body))) out.push(response);
    return out;
  }
  const tokenCalls = () => sim.requests().filter((r) => r.path === TOKEN_PATH).map((r) => r.outcome);
  const modelCalls = () => sim.requests().filter((r) => r.path.startsWith('/v1/projects/')).map((r) => r.outcome);
  async function metric(registry: Registry, name: string, labels: Record<string, string>): Promise<number | undefined> {
    const values = (await registry.getSingleMetric(name)?.get())?.values ?? [];
    return values.find((v) => v.labels['provider'] === 'vertex-rotated' && v.labels['file'] === 'credentialsFile' && Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value;
  }

  it('mints with the new key from the next check on, the token of the old key dropped though still valid', async () => {
    const registry = new Registry();
    const { adapter, volume } = start(100, new CredentialFileMetrics(registry));
    expect((await chat(adapter))[0]?.completion?.choices[0]?.message?.content).toMatch(/\w+/);
    rotate(volume);
    await eventually(async () => (await metric(registry, 'openrouter_provider_credential_file_reloads_total', { outcome: 'changed' })) === 1, 'the check to take the new key');
    await chat(adapter);
    const streamed = await chat(adapter, 'claude-sonnet-4-5@20250929', { stream: true });
    expect(streamed.length).toBeGreaterThan(1);
    // A second token, asked for with key B (the simulator trusts no other now): nothing was refused.
    expect(tokenCalls()).toEqual(['completed', 'completed']);
    expect(modelCalls()).toEqual(['completed', 'completed', 'completed']);
    expect(await metric(registry, 'openrouter_provider_credential_file_ok', {})).toBe(1);
  });

  it('reads the file at once when the token endpoint refuses the deleted key (checks an hour apart), and asks again with the new one', async () => {
    const { adapter, volume } = start(HOUR);
    rotate(volume);
    expect((await chat(adapter))[0]?.completion?.choices[0]?.message?.content).toMatch(/\w+/);
    expect(tokenCalls()).toEqual(['error', 'completed']);
    expect(modelCalls()).toEqual(['completed']);
  });

  it('reads the file at once when Vertex AI refuses the token (checks an hour apart), and sends the call again with a token of the new key', async () => {
    const { adapter, volume } = start(HOUR);
    await chat(adapter);
    rotate(volume);
    // The token minted with key A lapses: Vertex AI answers 401.
    sim.expireAccessTokens();
    expect((await chat(adapter))[0]?.completion?.choices[0]?.message?.content).toMatch(/\w+/);
    await chat(adapter, 'claude-sonnet-4-5@20250929');
    expect(modelCalls()).toEqual(['completed', 'error', 'completed', 'completed']);
    // The fresh token was asked for with key B straight away: the read came before it.
    expect(tokenCalls()).toEqual(['completed', 'completed']);
  });

  it('keeps the last good key while the file is half written or not a key, and shows it', async () => {
    const registry = new Registry();
    const { adapter, volume } = start(100, new CredentialFileMetrics(registry));
    await chat(adapter);
    volume.write({ 'key.json': keyFile(KEY_B).slice(0, 200) });
    await eventually(async () => (await metric(registry, 'openrouter_provider_credential_file_ok', {})) === 0, 'the malformed file shown');
    // A new token is minted with key A, the last good one, which the token endpoint still trusts.
    sim.expireAccessTokens();
    await chat(adapter);
    volume.write({ 'key.json': JSON.stringify({ client_email: EMAIL, private_key: 'not a key' }) });
    sim.expireAccessTokens();
    await chat(adapter);
    expect(tokenCalls()).toEqual(['completed', 'completed', 'completed']);
    expect(modelCalls()).toEqual(['completed', 'error', 'completed', 'error', 'completed']);
    rotate(volume);
    await eventually(async () => (await metric(registry, 'openrouter_provider_credential_file_ok', {})) === 1, 'the new key taken');
    await chat(adapter);
    expect(tokenCalls()).toEqual(['completed', 'completed', 'completed', 'completed']);
  });

  it('passes the refusal on, with one token request and no key in it, when the file was not rotated', async () => {
    const { adapter } = start(HOUR);
    sim.trustServiceAccount({ clientEmail: EMAIL, publicKey: KEY_B.publicKey });
    const error = await failure(chat(adapter));
    expect(error).toMatchObject({ kind: 'auth_failed', code: 'upstream_auth_failed', upstreamStatus: 400, provider: 'vertex-rotated' });
    expect(JSON.stringify({ message: error.message, cause: String(error.cause) })).not.toMatch(/PRIVATE KEY|MII|eyJ/);
    expect(tokenCalls()).toEqual(['error']);
    expect(modelCalls()).toEqual([]);
  });
});
