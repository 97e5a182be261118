import { providerSchema, type ProviderConfig } from '@openrouter/config';
import type { adapterv1 } from '@openrouter/contracts';
import { CredentialFileMetrics, Registry } from '@openrouter/observability';
import { parseChatRequest, parseEmbeddingRequest } from '@openrouter/openai-wire';
import { type RunningSimulator, SecretVolume, startSimulator } from '@openrouter/provider-simulator';
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
