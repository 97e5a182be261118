import { generateKeyPairSync } from 'node:crypto';
import { Writable } from 'node:stream';
import OpenAI from 'openai';
import { SecretVolume } from '@openrouter/provider-simulator';
import { waitFor } from '../support/infra/wait-for';
import { SIM_KEY } from '../support/test-config';
import { startTestGateway, type TestGateway } from '../support/test-gateway';

const ROTATED = 'sim-rotated-key-0002';
const ROTATED_AGAIN = 'sim-rotated-key-0003';
const REVOKED_LATER = 'sim-rotated-key-0004';
const hi = [{ role: 'user' as const, content: 'hi' }];

/**
 * A provider key mounted as a Kubernetes Secret and rotated while the gateway runs: the provider
 * starts taking a new key, the kubelet swaps the volume's `..data` symlink, and the gateway's next
 * calls succeed without a restart, by the refusal-triggered re-read (`on-refusal`, whose checks
 * are an hour apart, so nothing else can explain it) or by the periodic check (`on-check`).
 */
describe('rotating a provider key mounted as a file (openai SDK)', () => {
  let gw: TestGateway;
  let client: OpenAI;
  let onRefusal: SecretVolume;
  let onCheck: SecretVolume;
  const logged: string[] = [];

  beforeAll(async () => {
    onRefusal = new SecretVolume({ 'api-key': `${SIM_KEY}\n` });
    onCheck = new SecretVolume({ 'api-key': `${SIM_KEY}\n` });
    gw = await startTestGateway({
      logs: new Writable({
        write(chunk: Buffer, _encoding, done) {
          logged.push(chunk.toString());
          done();
        },
      }),
      configure: (doc) => {
        const simulated = (doc['providers'] as { simulated: { baseUrl: string } }).simulated;
        const providers = doc['providers'] as Record<string, unknown>;
        providers['on-refusal'] = { type: 'openai', baseUrl: simulated.baseUrl, apiKeyFile: onRefusal.path('api-key'), credentialFileCheckIntervalMs: 3_600_000, timeoutMs: 10_000 };
        providers['on-check'] = { type: 'openai', baseUrl: simulated.baseUrl, apiKeyFile: onCheck.path('api-key'), credentialFileCheckIntervalMs: '200', timeoutMs: 10_000 };
        (doc['models'] as Array<Record<string, unknown>>).push(
          { id: 'gpt-on-refusal', deployments: [{ provider: 'on-refusal', model: 'gpt-4o-mini' }] },
          { id: 'gpt-on-check', deployments: [{ provider: 'on-check', model: 'gpt-4o-mini' }] },
        );
      },
    });
    client = gw.client();
  }, 120_000);
  afterAll(async () => {
    await gw?.close();
    onRefusal?.remove();
    onCheck?.remove();
  });

  /** The outcomes of the provider calls made since `from` (an index in the simulator's log). */
  const callsSince = (from: number) => gw.sim.requests().slice(from).filter((r) => r.path === '/v1/chat/completions').map((r) => r.outcome);

  async function adapterMetric(name: string, provider: string, labels: Record<string, string> = {}): Promise<number | undefined> {
    const adapter = gw.gateway.services.find((s) => s.name === 'adapter');
    const text = await (await fetch(`http://127.0.0.1:${adapter?.httpPort ?? 0}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(`provider="${provider}"`) && Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)));
    return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
  }

  it('serves with the key read from the file, streamed and not', async () => {
    const answer = await client.chat.completions.create({ model: 'gpt-on-refusal', messages: hi });
    expect(answer.choices[0]?.message.content?.length).toBeGreaterThan(0);
    const stream = await client.chat.completions.create({ model: 'gpt-on-check', messages: hi, stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    expect(text.length).toBeGreaterThan(0);
    expect(await adapterMetric('openrouter_provider_credential_file_ok', 'on-refusal')).toBe(1);
  });

  it('takes the rotated key when the provider refuses the old one: the call is sent again and the client sees an answer', async () => {
    const from = gw.sim.requests().length;
    gw.sim.setApiKey(ROTATED);
    onRefusal.write({ 'api-key': `${ROTATED}\n` });
    const { data, response } = await client.chat.completions.create({ model: 'gpt-on-refusal', messages: hi }).withResponse();
    expect(response.headers.get('x-openrouter-provider')).toBe('on-refusal');
    expect(data.choices[0]?.message.content?.length).toBeGreaterThan(0);
    // Refused with the old key, then answered with the new one; the next call starts with the new one.
    expect(callsSince(from)).toEqual(['error', 'completed']);
    await client.chat.completions.create({ model: 'gpt-on-refusal', messages: hi });
    expect(callsSince(from)).toEqual(['error', 'completed', 'completed']);
  });

  it('takes the rotated key at the next check, before any call is refused', async () => {
    gw.sim.setApiKey(ROTATED_AGAIN);
    onCheck.write({ 'api-key': ROTATED_AGAIN });
    await waitFor(async () => (await adapterMetric('openrouter_provider_credential_file_reloads_total', 'on-check', { outcome: 'changed' })) === 1, { what: 'the check to take the new key' });
    const from = gw.sim.requests().length;
    await client.chat.completions.create({ model: 'gpt-on-check', messages: hi });
    expect(callsSince(from)).toEqual(['completed']);
  });

  it('keeps serving with the last good key while the file is gone, and shows it', async () => {
    onCheck.write({ other: 'x' });
    await waitFor(async () => (await adapterMetric('openrouter_provider_credential_file_ok', 'on-check')) === 0, { what: 'the unreadable file shown' });
    await client.chat.completions.create({ model: 'gpt-on-check', messages: hi });
    expect(logged.join('')).toContain('provider credential file cannot be read (or is empty): calls keep the secret read last');
    onCheck.write({ 'api-key': ROTATED_AGAIN });
    await waitFor(async () => (await adapterMetric('openrouter_provider_credential_file_ok', 'on-check')) === 1, { what: 'the file readable again' });
  });

  it("answers 502 upstream_auth_failed when the provider stops taking the key and the file was not rotated, quoting no key; no key is ever logged", async () => {
    gw.sim.setApiKey(REVOKED_LATER);
    const from = gw.sim.requests().length;
    const error = await client.chat.completions.create({ model: 'gpt-on-refusal', messages: hi }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect(error).toMatchObject({ status: 502, code: 'upstream_auth_failed' });
    expect((error as Error).message).not.toMatch(/sim-rotated|sim-secret/);
    // The file holds the refused key still: one call, not sent again.
    expect(callsSince(from)).toEqual(['error']);
    const logs = logged.join('');
    expect(logs).toContain('provider credential file changed: the calls made from now on use its new secret');
    for (const key of [SIM_KEY, ROTATED, ROTATED_AGAIN, REVOKED_LATER]) expect(logs).not.toContain(key);
  });
});

/**
 * Vertex AI's service-account key file mounted as a Kubernetes Secret, rotated while the gateway
 * runs: a new key of the account is mounted (the `..data` symlink swapped) and the old one deleted
 * in Google Cloud (the simulated token endpoint then trusts the new key only). One provider's file
 * is checked every 200 ms; the other's an hour apart, so only the refusal of a token can make it
 * read the file again.
 */
describe('rotating a Vertex AI service-account key file (openai SDK)', () => {
  // Made at test time; no private key is committed.
  const keyPair = (): { publicKey: string; privateKey: string } => {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    return { publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(), privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
  };
  const ACCOUNTS = {
    'vertex-on-check': { email: 'on-check@sim-project.iam.gserviceaccount.com', old: keyPair(), rotated: keyPair() },
    'vertex-on-refusal': { email: 'on-refusal@sim-project.iam.gserviceaccount.com', old: keyPair(), rotated: keyPair() },
  };
  type Provider = keyof typeof ACCOUNTS;
  let gw: TestGateway;
  let client: OpenAI;
  let tokenUri = '';
  const volumes = {} as Record<Provider, SecretVolume>;
  const logged: string[] = [];

  const keyFile = (email: string, key: { privateKey: string }): string =>
    `${JSON.stringify({ type: 'service_account', project_id: 'sim-project', private_key_id: 'k', private_key: key.privateKey, client_email: email, token_uri: tokenUri }, null, 2)}\n`;

  beforeAll(async () => {
    gw = await startTestGateway({
      logs: new Writable({
        write(chunk: Buffer, _encoding, done) {
          logged.push(chunk.toString());
          done();
        },
      }),
      configure: (doc) => {
        const url = String((doc['providers'] as { simulated: { baseUrl: string } }).simulated.baseUrl).replace(/\/v1$/, '');
        tokenUri = `${url}/token`;
        const providers = doc['providers'] as Record<string, unknown>;
        for (const [id, account] of Object.entries(ACCOUNTS)) {
          const volume = new SecretVolume({ 'key.json': keyFile(account.email, account.old) });
          volumes[id as Provider] = volume;
          providers[id] = {
            type: 'vertex',
            project: 'sim-project',
            location: 'us-central1',
            baseUrl: url,
            credentialsFile: volume.path('key.json'),
            credentialFileCheckIntervalMs: id === 'vertex-on-check' ? 200 : 3_600_000,
            timeoutMs: 10_000,
          };
          (doc['models'] as Array<Record<string, unknown>>).push({ id: `gemini-${id}`, deployments: [{ provider: id, model: 'gemini-2.5-flash' }] });
        }
      },
    });
    for (const account of Object.values(ACCOUNTS)) gw.sim.trustServiceAccount({ clientEmail: account.email, publicKey: account.old.publicKey });
    client = gw.client();
  }, 120_000);
  afterAll(async () => {
    await gw?.close();
    for (const volume of Object.values(volumes)) volume.remove();
  });

  /** The new key mounted in place of the old one, which is deleted: the token endpoint trusts the new one only. */
  function rotate(provider: Provider): void {
    const account = ACCOUNTS[provider];
    gw.sim.trustServiceAccount({ clientEmail: account.email, publicKey: account.rotated.publicKey });
    volumes[provider].write({ 'key.json': keyFile(account.email, account.rotated) });
  }

  const hi = [{ role: 'user' as const, content: 'hi' }];
  /** The outcomes of the token requests and Vertex AI calls made since `from` (an index in the simulator's log). */
  const since = (from: number) => {
    const log = gw.sim.requests().slice(from);
    return { tokens: log.filter((r) => r.path === '/token').map((r) => r.outcome), calls: log.filter((r) => r.path.startsWith('/v1/projects/')).map((r) => r.outcome) };
  };
  async function adapterMetric(name: string, provider: string, labels: Record<string, string> = {}): Promise<number | undefined> {
    const adapter = gw.gateway.services.find((s) => s.name === 'adapter');
    const text = await (await fetch(`http://127.0.0.1:${adapter?.httpPort ?? 0}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(`provider="${provider}"`) && Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)));
    return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
  }

  it('serves with tokens of the key read from the file', async () => {
    for (const provider of Object.keys(ACCOUNTS)) {
      const { data, response } = await client.chat.completions.create({ model: `gemini-${provider}`, messages: hi }).withResponse();
      expect(response.headers.get('x-openrouter-provider')).toBe(provider);
      expect(data.choices[0]?.message.content?.length).toBeGreaterThan(0);
      expect(await adapterMetric('openrouter_provider_credential_file_ok', provider, { file: 'credentialsFile' })).toBe(1);
    }
  });

  it('mints with the rotated key from the next check on, before any call is refused', async () => {
    rotate('vertex-on-check');
    await waitFor(async () => (await adapterMetric('openrouter_provider_credential_file_reloads_total', 'vertex-on-check', { file: 'credentialsFile', outcome: 'changed' })) === 1, { what: 'the check to take the new key' });
    const from = gw.sim.requests().length;
    const answer = await client.chat.completions.create({ model: 'gemini-vertex-on-check', messages: hi });
    expect(answer.choices[0]?.message.content?.length).toBeGreaterThan(0);
    // The token of the old key was dropped with it: a new one, granted for the new key.
    expect(since(from)).toEqual({ tokens: ['completed'], calls: ['completed'] });
  });

  it('takes the rotated key when Vertex AI refuses the token, with checks an hour apart: the client sees an answer', async () => {
    rotate('vertex-on-refusal');
    // The token minted with the old key lapses: Vertex AI answers 401.
    gw.sim.expireAccessTokens();
    const from = gw.sim.requests().length;
    const { data, response } = await client.chat.completions.create({ model: 'gemini-vertex-on-refusal', messages: hi }).withResponse();
    expect(response.headers.get('x-openrouter-provider')).toBe('vertex-on-refusal');
    expect(data.choices[0]?.message.content?.length).toBeGreaterThan(0);
    // Refused, the file read at once, a token granted for the new key, the call sent again.
    expect(since(from)).toEqual({ tokens: ['completed'], calls: ['error', 'completed'] });
    const stream = await client.chat.completions.create({ model: 'gemini-vertex-on-refusal', messages: hi, stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    expect(text.length).toBeGreaterThan(0);
    expect(since(from).calls).toEqual(['error', 'completed', 'completed']);
  });

  it('keeps serving with the last good key while the file is half written, and shows it; no key is ever logged', async () => {
    const account = ACCOUNTS['vertex-on-check'];
    volumes['vertex-on-check'].write({ 'key.json': keyFile(account.email, account.rotated).slice(0, 300) });
    await waitFor(async () => (await adapterMetric('openrouter_provider_credential_file_ok', 'vertex-on-check', { file: 'credentialsFile' })) === 0, { what: 'the malformed file shown' });
    gw.sim.expireAccessTokens();
    const answer = await client.chat.completions.create({ model: 'gemini-vertex-on-check', messages: hi });
    expect(answer.choices[0]?.message.content?.length).toBeGreaterThan(0);
    const logs = logged.join('');
    expect(logs).toContain('provider credential file does not hold a usable credential: calls keep the secret read last');
    expect(logs).toContain('provider credential file changed: the calls made from now on use its new secret');
    expect(logs).not.toMatch(/PRIVATE KEY|MII[A-Za-z0-9+/]{20}/);
  });
});
