import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AzureIdentityEnv, providerSchema, type ProviderConfigOf, readAzureIdentityEnv } from '@openrouter/config';
import type { adapterv1, chatv1 } from '@openrouter/contracts';
import { parseChatRequest, parseEmbeddingRequest, toOpenAIError } from '@openrouter/openai-wire';
import { APP_SERVICE_TOKEN_PATH, IMDS_TOKEN_PATH, type RunningSimulator, startForwardProxy, startSimulator } from '@openrouter/provider-simulator';
import { failure } from '../gateway-failure.testing';
import { ImageSource } from '../image-source';
import { NO_PROXY_ENV } from '@openrouter/config';
import type { ProviderAdapter } from '../provider-adapter';
import { createAzureAdapter } from './azure.adapter';

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const APP = { tenantId: TENANT, clientId: 'gateway-app', clientSecret: 'Xy8Q~right-secret' };
const FEDERATED = { tenantId: TENANT, clientId: 'aks-workload', federatedToken: 'eyJhbGciOiJSUzI1NiJ9.sim-service-account.sig' };
const DEPLOYMENT = 'my-gpt-4o-deployment';
const NO_ENV: AzureIdentityEnv = readAzureIdentityEnv({});

/** Azure OpenAI with Entra ID tokens against the simulated Azure OpenAI and Entra ID: real HTTP, real token endpoints, real 401s. */
describe('Azure adapter with Entra ID against the simulated Azure OpenAI', () => {
  let sim: RunningSimulator;
  const context = { images: new ImageSource() };
  const open: ProviderAdapter[] = [];

  const configFor = (entra: Record<string, unknown>): ProviderConfigOf<'azure'> =>
    providerSchema.parse({ type: 'azure', baseUrl: sim.url, timeoutMs: 5000, entra: { authorityHost: sim.url, ...entra } }) as ProviderConfigOf<'azure'>;
  const adapterFor = (entra: Record<string, unknown>, env: AzureIdentityEnv = NO_ENV): ProviderAdapter => {
    const adapter = createAzureAdapter('azure-entra', configFor(entra), context, { env });
    open.push(adapter);
    return adapter;
  };
  const withSecret = (clientSecret = APP.clientSecret) => ({ tenantId: TENANT, clientId: APP.clientId, clientSecret });

  beforeAll(async () => {
    // No simulator key: only the Entra ID registrations make Azure OpenAI insist on a credential.
    sim = await startSimulator({ entraApps: [APP, FEDERATED], entraManagedIdentity: { systemAssigned: true, userAssigned: ['ua-client'], identityHeader: 'app-service-header' } });
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((a) => a.close()));
    sim.reset();
  });
  afterAll(async () => {
    await context.images.close();
    await sim.close();
  });

  const call = <T>(request: T) => ({ requestId: 'req-1', upstreamModel: DEPLOYMENT, request, timeoutMs: 0, signal: new AbortController().signal });
  const chatRequest = (body: Record<string, unknown> = {}): chatv1.ChatRequest => parseChatRequest({ model: 'public-model', messages: [{ role: 'user', content: 'Hello there' }], ...body });
  async function collect(adapter: ProviderAdapter, body: Record<string, unknown> = {}): Promise<adapterv1.ChatResponse[]> {
    const out: adapterv1.ChatResponse[] = [];
    for await (const response of adapter.chat(call(chatRequest(body)))) out.push(response);
    return out;
  }
  const modelCalls = () => sim.requests().filter((r) => r.path.startsWith('/openai/deployments/'));
  const tokenCalls = () => sim.requests().filter((r) => r.path.endsWith('/oauth2/v2.0/token') || r.path === IMDS_TOKEN_PATH || r.path === APP_SERVICE_TOKEN_PATH);

  it('answers chats, streamed and not, and embeddings with one client-secret token sent as Bearer, never an api-key', async () => {
    const adapter = adapterFor(withSecret());
    const [answer] = await collect(adapter);
    expect(answer?.completion?.choices[0]?.message?.content).toMatch(/\w+/);
    const streamed = await collect(adapter, { stream: true, stream_options: { include_usage: true } });
    expect(streamed.length).toBeGreaterThan(1);
    const embedded = await adapter.embed(call(parseEmbeddingRequest({ model: 'embed', input: ['a', 'b'] }).request));
    expect(embedded.data).toHaveLength(2);

    expect(tokenCalls()).toHaveLength(1);
    expect(tokenCalls()[0]?.path).toBe(`/${TENANT}/oauth2/v2.0/token`);
    expect(tokenCalls()[0]?.body).toEqual({ grant_type: 'client_credentials', client_id: 'gateway-app', scope: 'https://cognitiveservices.azure.com/.default', client_secret: 'present', client_assertion_type: null, client_assertion: 'absent' });
    expect(modelCalls().map((r) => [r.outcome, r.headers['authorization'], r.headers['api-key']])).toEqual([
      ['completed', 'present', undefined],
      ['completed', 'present', undefined],
      ['completed', 'present', undefined],
    ]);
  });

  it('shares one token fetch among concurrent first calls', async () => {
    const adapter = adapterFor(withSecret());
    await Promise.all([collect(adapter), collect(adapter), collect(adapter)]);
    expect(tokenCalls()).toHaveLength(1);
    expect(modelCalls().every((r) => r.outcome === 'completed')).toBe(true);
  });

  it('fetches a fresh token when Azure answers 401 to a revoked one, without the caller noticing', async () => {
    const adapter = adapterFor(withSecret());
    await collect(adapter);
    sim.expireAccessTokens();
    const [answer] = await collect(adapter);
    expect(answer?.completion?.choices[0]?.finishReason).toBe('stop');
    expect(modelCalls().map((r) => r.outcome)).toEqual(['completed', 'error', 'completed']);
    expect(tokenCalls()).toHaveLength(2);
  });

  it('transcribes and speaks with the Entra token too, sending the form again with a fresh token after a revoked one', async () => {
    const adapter = adapterFor(withSecret());
    if (!adapter.transcribe || !adapter.speak) throw new Error('the Azure adapter offers no Audio API');
    const file = Buffer.alloc(32_000, 0xff);
    const transcription: chatv1.AudioTranscriptionRequest = { model: 'public-whisper', file, filename: 'memo.mp3', contentType: 'audio/mpeg', translate: false, responseFormat: 'text', extraFields: [], durationMs: 0 };
    await expect(adapter.transcribe({ ...call(transcription), upstreamModel: 'whisper' })).resolves.toMatchObject({ body: 'Simulated transcript of memo.mp3.', contentType: 'text/plain; charset=utf-8', audioMs: 2_000 });
    sim.expireAccessTokens();
    await expect(adapter.transcribe({ ...call(transcription), upstreamModel: 'whisper' })).resolves.toMatchObject({ body: 'Simulated transcript of memo.mp3.' });
    const pieces: chatv1.SpeechResponse[] = [];
    for await (const piece of adapter.speak({ ...call({ model: 'public-tts', input: 'Hello', voice: 'nova', responseFormat: 'wav', extraJson: '' }), upstreamModel: 'tts' })) pieces.push(piece);
    expect(pieces[0]?.contentType).toBe('audio/wav');
    expect(Buffer.concat(pieces.map((p) => p.audio)).subarray(0, 4).toString('ascii')).toBe('RIFF');
    expect(pieces.at(-1)?.characters).toBe(5);

    expect(modelCalls().map((r) => [r.path, r.outcome, r.headers['authorization'], r.headers['api-key']])).toEqual([
      ['/openai/deployments/whisper/audio/transcriptions', 'completed', 'present', undefined],
      ['/openai/deployments/whisper/audio/transcriptions', 'error', 'present', undefined],
      ['/openai/deployments/whisper/audio/transcriptions', 'completed', 'present', undefined],
      ['/openai/deployments/tts/audio/speech', 'completed', 'present', undefined],
    ]);
    expect(modelCalls()[2]?.body).toMatchObject({ model: 'whisper', response_format: 'json', file: { name: 'memo.mp3', type: 'audio/mpeg', size: file.length } });
    expect(tokenCalls()).toHaveLength(2);
  });

  it('passes a steady 401 (a role not granted) on after one fresh token, fetching no more tokens for a minute', async () => {
    const adapter = adapterFor(withSecret());
    await collect(adapter);
    sim.configure({ faults: [{ kind: 'http_error', status: 401, code: 'PermissionDenied', message: 'The principal lacks the data action.' }] });
    for (let i = 0; i < 4; i++) await expect(failure(collect(adapter))).resolves.toMatchObject({ upstreamStatus: 401 });
    // The first refusal drops the token and tries once more with a fresh one; that one refused too,
    // the next calls pass the refusal on with no second try and no token fetch.
    expect(tokenCalls()).toHaveLength(2);
    expect(modelCalls().map((r) => r.outcome)).toEqual(['completed', 'error', 'error', 'error', 'error', 'error']);
  });

  it("reads Azure's own 429 as a rate limit with its wait, and an error event inside a stream by its code: a content filter stays the client's 400", async () => {
    const adapter = adapterFor(withSecret());
    sim.configure({ faults: [{ kind: 'http_error', status: 429, retryAfterSeconds: 6, remaining: 1 }] });
    const limited = await failure(collect(adapter));
    expect(limited).toMatchObject({ kind: 'rate_limited', retryable: true, retryAfterMs: 6000, upstreamStatus: 429 });
    expect(limited.message).toContain('have exceeded token rate limit of your current OpenAI S0 pricing tier');
    sim.configure({ faults: [{ kind: 'http_error', status: 400, code: 'content_filter', message: 'The response was filtered.', afterTokens: 1, remaining: 1 }] });
    const filtered = await failure(collect(adapter, { stream: true }));
    expect(filtered).toMatchObject({ kind: 'content_filtered', code: 'content_filter', retryable: false });
    expect(toOpenAIError(filtered).status).toBe(400);
  });

  it('fails with a retryable 502 naming AADSTS7000215 for a wrong client secret (another deployment may serve), never quoting it, and calls no model', async () => {
    const adapter = adapterFor(withSecret('Xy8Q~wrong-secret'));
    const error = await failure(collect(adapter));
    expect(error).toMatchObject({ kind: 'auth_failed', code: 'upstream_auth_failed', retryable: true, upstreamStatus: 401, provider: 'azure-entra' });
    expect(error.message).toBe(
      'The provider "azure-entra" could not get an access token: Entra ID refused the gateway\'s credentials (HTTP 401 invalid_client): AADSTS7000215 invalid client secret (give the secret\'s value, not its ID).',
    );
    expect(toOpenAIError(error).status).toBe(502);
    expect(modelCalls()).toEqual([]);
  });

  it('fails with a retryable 503 when Entra ID cannot be reached', async () => {
    const closed = await startSimulator();
    const url = closed.url;
    await closed.close();
    const adapter = adapterFor({ ...withSecret(), authorityHost: url });
    const error = await failure(collect(adapter));
    expect(error).toMatchObject({ kind: 'unavailable', retryable: true, upstreamStatus: 0 });
    expect(toOpenAIError(error).status).toBe(503);
  });

  it('exchanges the AKS federated token, re-read from its file on every fetch as the kubelet rotates it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'azure-wi-'));
    try {
      const tokenFile = join(dir, 'azure-identity-token');
      writeFileSync(tokenFile, 'eyJ.stale.token');
      const env = { ...NO_ENV, tenantId: TENANT, clientId: FEDERATED.clientId, federatedTokenFile: tokenFile };
      const adapter = adapterFor({ workloadIdentity: true }, env);
      // The file the kubelet wrote first is refused: no federated credential matches it.
      const refused = await failure(collect(adapter));
      expect(refused.message).toContain('AADSTS70021');
      writeFileSync(tokenFile, FEDERATED.federatedToken);
      const [answer] = await collect(adapter);
      expect(answer?.completion?.choices[0]?.message?.content).toMatch(/\w+/);
      expect(tokenCalls().map((r) => (r.body as { client_assertion_type?: string }).client_assertion_type)).toEqual([
        'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      ]);
      expect(modelCalls().map((r) => r.headers['authorization'])).toEqual(['present']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("asks Entra ID through the environment's forward proxy, as the provider's calls, and IMDS directly", async () => {
    const proxy = await startForwardProxy();
    const egress = { proxyEnv: { ...NO_PROXY_ENV, httpProxy: proxy.url } };
    const through = createAzureAdapter('azure-proxied', configFor(withSecret()), { ...context, egress }, { env: NO_ENV });
    const direct = createAzureAdapter('azure-mi', configFor({ managedIdentity: true, authorityHost: undefined, imdsUrl: `${sim.url}${IMDS_TOKEN_PATH}` }), { ...context, egress }, { env: NO_ENV });
    try {
      await collect(through);
      expect(proxy.carried().map((c) => new URL(c.target).pathname)).toEqual([`/${TENANT}/oauth2/v2.0/token`, `/openai/deployments/${DEPLOYMENT}/chat/completions`]);
      await collect(direct);
      // IMDS was reached without the proxy; only the model call went through it.
      expect(proxy.carried().map((c) => new URL(c.target).pathname).slice(2)).toEqual([`/openai/deployments/${DEPLOYMENT}/chat/completions`]);
      expect(tokenCalls().map((r) => r.path)).toEqual([`/${TENANT}/oauth2/v2.0/token`, IMDS_TOKEN_PATH]);
    } finally {
      await Promise.all([through.close(), direct.close()]);
      await proxy.close();
    }
  });

  it("takes a managed identity's token from IMDS, system- or user-assigned, and refuses an identity the host lacks", async () => {
    const imdsUrl = `${sim.url}${IMDS_TOKEN_PATH}`;
    await collect(adapterFor({ managedIdentity: true, authorityHost: undefined, imdsUrl }));
    await collect(adapterFor({ managedIdentity: true, authorityHost: undefined, clientId: 'ua-client', imdsUrl }));
    const missing = await failure(collect(adapterFor({ managedIdentity: true, authorityHost: undefined, clientId: 'not-assigned', imdsUrl })));
    expect(missing).toMatchObject({ kind: 'auth_failed', retryable: true, upstreamStatus: 400 });
    expect(missing.message).toContain("the user-assigned managed identity of the provider's entra.clientId");
    // The identity's client ID stays in the log.
    expect(missing.message).not.toContain('not-assigned');
    expect(String(missing.cause)).toContain('not-assigned');
    expect(tokenCalls().map((r) => [r.path, r.headers['metadata']])).toEqual([
      [IMDS_TOKEN_PATH, 'true'],
      [IMDS_TOKEN_PATH, 'true'],
      [IMDS_TOKEN_PATH, 'true'],
    ]);
    expect(modelCalls().map((r) => r.outcome)).toEqual(['completed', 'completed']);
  });

  it("takes a managed identity's token from App Service's IDENTITY_ENDPOINT when it is set", async () => {
    const env = { ...NO_ENV, identityEndpoint: `${sim.url}${APP_SERVICE_TOKEN_PATH}`, identityHeader: 'app-service-header' };
    const [answer] = await collect(adapterFor({ managedIdentity: true, authorityHost: undefined }, env));
    expect(answer?.completion?.choices[0]?.message?.content).toMatch(/\w+/);
    expect(tokenCalls().map((r) => [r.path, r.headers['x-identity-header']])).toEqual([[APP_SERVICE_TOKEN_PATH, 'present']]);
  });

  it('is refused by Azure without a credential once Entra ID apps are known (the simulator checks Bearer tokens)', async () => {
    const bare = createAzureAdapter('azure-bare', providerSchema.parse({ type: 'azure', baseUrl: sim.url, timeoutMs: 5000 }) as ProviderConfigOf<'azure'>, context);
    open.push(bare);
    expect(await failure(collect(bare))).toMatchObject({ kind: 'auth_failed', upstreamStatus: 401 });
  });
});
