import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from 'undici';
import { ConfigError, type GoogleAdcEnv, providerSchema, type ProviderConfigOf } from '@openrouter/config';
import { GatewayError } from '@openrouter/errors';
import { METADATA_TOKEN_PATH, type RunningSimulator, startSimulator, TOKEN_PATH } from '@openrouter/provider-simulator';
import { undiciTokenHttp } from '../access-token';
import { vertexTokenSource } from './vertex-credentials';

const ACCOUNT = generateKeyPairSync('rsa', { modulusLength: 2048 });
const PRIVATE_PEM = ACCOUNT.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const SOURCE_EMAIL = 'deployer@my-project.iam.gserviceaccount.com';
const TARGET_EMAIL = 'gateway@my-project.iam.gserviceaccount.com';
const USER = { clientId: '764086051850-user.apps.googleusercontent.com', clientSecret: 'd-FL95Q19q7MQmFpd7hHD0Ty', refreshToken: '1//0g-user-refresh-token' };
const OTHER_USER = { clientId: '764086051850-other.apps.googleusercontent.com', clientSecret: 'other-secret', refreshToken: '1//0g-other-refresh-token' };
const never = new AbortController().signal;

describe('Application Default Credentials of a vertex provider', () => {
  let sim: RunningSimulator;
  let agent: Agent;
  let dir: string;

  beforeAll(async () => {
    sim = await startSimulator({ googleServiceAccounts: [{ clientEmail: SOURCE_EMAIL, publicKey: ACCOUNT.publicKey.export({ type: 'spki', format: 'pem' }).toString() }], googleAuthorizedUsers: [USER, OTHER_USER], googleImpersonableAccounts: [TARGET_EMAIL] });
    agent = new Agent();
  });
  afterAll(async () => {
    await agent.close();
    await sim.close();
  });
  beforeEach(() => {
    sim.reset();
    dir = mkdtempSync(join(tmpdir(), 'vertex-adc-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const config = (extra: Record<string, unknown> = {}): ProviderConfigOf<'vertex'> =>
    providerSchema.parse({ type: 'vertex', project: 'my-project', adc: true, metadataServerUrl: `${sim.url}${METADATA_TOKEN_PATH}`, ...extra }) as ProviderConfigOf<'vertex'>;
  const env = (values: Partial<GoogleAdcEnv>): GoogleAdcEnv => ({ applicationCredentials: '', cloudsdkConfig: '', home: '', ...values });
  const source = (adcEnv: GoogleAdcEnv, extra?: Record<string, unknown>) => vertexTokenSource('vx', config(extra), { http: undiciTokenHttp(agent), adcEnv });

  const write = (path: string, content: unknown): string => {
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
    return path;
  };
  const serviceAccountFile = (): Record<string, unknown> => ({ type: 'service_account', project_id: 'my-project', client_email: SOURCE_EMAIL, private_key: PRIVATE_PEM, token_uri: `${sim.url}${TOKEN_PATH}` });
  const userFile = (user: typeof USER): Record<string, unknown> => ({ type: 'authorized_user', client_id: user.clientId, client_secret: user.clientSecret, refresh_token: user.refreshToken, token_uri: `${sim.url}${TOKEN_PATH}` });
  const wellKnown = (home: string): string => join(home, '.config', 'gcloud', 'application_default_credentials.json');

  function problems(run: () => unknown): string[] {
    try {
      run();
    } catch (error) {
      if (error instanceof ConfigError) return error.problems;
      throw error;
    }
    throw new Error('expected a ConfigError');
  }

  async function failure(promise: Promise<unknown>): Promise<GatewayError> {
    const error: unknown = await promise.then(
      () => undefined,
      (e: unknown) => e,
    );
    if (!(error instanceof GatewayError)) throw new Error(`expected a GatewayError, got ${String(error)}`);
    return error;
  }

  it('signs in as the service account of the file GOOGLE_APPLICATION_CREDENTIALS names, and caches the token', async () => {
    const tokens = source(env({ applicationCredentials: write(join(dir, 'sa.json'), serviceAccountFile()) }));
    const token = await tokens.token(never);
    expect(token).toMatch(/^ya29\.sim-/);
    await expect(tokens.token(never)).resolves.toBe(token);
    const grants = sim.requests().filter((r) => r.path === TOKEN_PATH);
    expect(grants).toHaveLength(1);
    expect(grants[0]?.body).toEqual({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: 'present' });
  });

  it('takes a user’s credentials from the gcloud well-known file under HOME with the refresh-token grant', async () => {
    write(wellKnown(dir), userFile(USER));
    const token = await source(env({ home: dir })).token(never);
    expect(token).toMatch(/^ya29\.sim-/);
    const [grant] = sim.requests().filter((r) => r.path === TOKEN_PATH);
    expect(grant?.body).toEqual({ grant_type: 'refresh_token', client_id: USER.clientId, client_secret: 'present', refresh_token: 'present' });
  });

  it('prefers GOOGLE_APPLICATION_CREDENTIALS to the well-known file, and CLOUDSDK_CONFIG to HOME', async () => {
    write(wellKnown(dir), userFile(OTHER_USER));
    const named = write(join(dir, 'named.json'), userFile(USER));
    await source(env({ applicationCredentials: named, home: dir })).token(never);
    const gcloudDir = join(dir, 'gcloud-config');
    write(join(gcloudDir, 'application_default_credentials.json'), userFile(USER));
    await source(env({ cloudsdkConfig: gcloudDir, home: dir })).token(never);
    await source(env({ home: dir })).token(never);
    const clients = sim.requests().filter((r) => r.path === TOKEN_PATH).map((r) => (r.body as { client_id?: string }).client_id);
    expect(clients).toEqual([USER.clientId, USER.clientId, OTHER_USER.clientId]);
  });

  it('impersonates the target service account with the token of a user or of a service account', async () => {
    const impersonation = `${sim.url}/v1/projects/-/serviceAccounts/${TARGET_EMAIL}:generateAccessToken`;
    for (const sourceCredentials of [userFile(USER), serviceAccountFile()]) {
      const file = write(join(dir, 'impersonated.json'), { type: 'impersonated_service_account', service_account_impersonation_url: impersonation, delegates: [], source_credentials: sourceCredentials });
      const token = await source(env({ applicationCredentials: file })).token(never);
      expect(token).toMatch(/^ya29\.sim-/);
    }
    const generated = sim.requests().filter((r) => r.path.endsWith(':generateAccessToken'));
    expect(generated.map((r) => r.path)).toEqual([`/v1/projects/-/serviceAccounts/${TARGET_EMAIL}:generateAccessToken`, `/v1/projects/-/serviceAccounts/${TARGET_EMAIL}:generateAccessToken`]);
    expect(generated[0]?.body).toEqual({ scope: ['https://www.googleapis.com/auth/cloud-platform'], delegates: [], lifetime: '3600s' });
    // Each was bought with a token the source got first.
    expect(sim.requests().filter((r) => r.path === TOKEN_PATH).map((r) => (r.body as { grant_type: string }).grant_type)).toEqual(['refresh_token', 'urn:ietf:params:oauth:grant-type:jwt-bearer']);
  });

  it('reports a target the source may not impersonate, naming the status', async () => {
    const impersonation = `${sim.url}/v1/projects/-/serviceAccounts/stranger@my-project.iam.gserviceaccount.com:generateAccessToken`;
    const file = write(join(dir, 'impersonated.json'), { type: 'impersonated_service_account', service_account_impersonation_url: impersonation, source_credentials: userFile(USER) });
    const error = await failure(source(env({ applicationCredentials: file })).token(never));
    expect(error).toMatchObject({ kind: 'auth_failed', code: 'upstream_auth_failed', upstreamStatus: 403, retryable: true });
    expect(error.message).toBe('The provider "vx" could not get an access token: the IAM Credentials API (generateAccessToken) answered HTTP 403 (PERMISSION_DENIED).');
  });

  it('fails a refused refresh token for good, saying to sign in again and never quoting it', async () => {
    const file = write(join(dir, 'revoked.json'), { ...userFile(USER), refresh_token: '1//0g-revoked' });
    const error = await failure(source(env({ applicationCredentials: file })).token(never));
    expect(error).toMatchObject({ kind: 'auth_failed', code: 'upstream_auth_failed', upstreamStatus: 400, retryable: false });
    expect(error.message).toBe(
      `The provider "vx" could not get an access token: the token endpoint answered HTTP 400 (invalid_grant): the refresh token of ${file} (GOOGLE_APPLICATION_CREDENTIALS) was refused (expired or revoked); sign in again (gcloud auth application-default login).`,
    );
    const wrongClient = write(join(dir, 'client.json'), { ...userFile(USER), client_secret: 'not-the-secret' });
    const refused = await failure(source(env({ applicationCredentials: wrongClient })).token(never));
    expect(refused).toMatchObject({ upstreamStatus: 401, retryable: false });
    expect(refused.message).toContain(`(invalid_client): the OAuth client of ${wrongClient} (GOOGLE_APPLICATION_CREDENTIALS) was refused`);
    expect(`${error.message} ${refused.message}`).not.toMatch(/1\/\/0g|not-the-secret/);
  });

  it('falls back to the metadata server when no file is found', async () => {
    const token = await source(env({ home: dir })).token(never);
    expect(token).toMatch(/^ya29\.sim-/);
    expect(sim.requests().map((r) => r.path)).toEqual([METADATA_TOKEN_PATH]);
  });

  it('says where it looked when no file is found and the metadata server cannot be reached', async () => {
    const closed = await startSimulator();
    const url = `${closed.url}${METADATA_TOKEN_PATH}`;
    await closed.close();
    const error = await failure(source(env({ home: dir }), { metadataServerUrl: url }).token(never));
    expect(error).toMatchObject({ kind: 'auth_failed', code: 'upstream_auth_failed', upstreamStatus: 0 });
    expect(error.message).toBe(
      `The provider "vx" could not get an access token: Application Default Credentials found no credentials file (GOOGLE_APPLICATION_CREDENTIALS is unset; no ${wellKnown(dir)}) and the metadata server could not be reached.`,
    );
  });

  it('refuses at start-up a file it cannot use, naming the file and the field, never a secret', () => {
    const at = (name: string, content: unknown): GoogleAdcEnv => env({ applicationCredentials: write(join(dir, name), content) });
    const missing = join(dir, 'nowhere.json');
    expect(problems(() => source(env({ applicationCredentials: missing })))).toEqual([`providers.vx.adc: GOOGLE_APPLICATION_CREDENTIALS names ${missing}, which cannot be read: ENOENT`]);
    const file = (name: string): string => `${join(dir, name)} (GOOGLE_APPLICATION_CREDENTIALS)`;
    const found = [
      ...problems(() => source(at('federated.json', { type: 'external_account', audience: '//iam.googleapis.com/x', subject_token_type: 'urn:ietf:params:oauth:token-type:jwt' }))),
      ...problems(() => source(at('user.json', { type: 'authorized_user', client_id: USER.clientId, client_secret: USER.clientSecret }))),
      ...problems(() => source(at('broken.json', `{"type": "authorized_user", "refresh_token": "${USER.refreshToken}`))),
      ...problems(() => source(at('untyped.json', { client_id: USER.clientId, refresh_token: USER.refreshToken }))),
      ...problems(() => source(at('gdch.json', { type: 'gdch_service_account' }))),
      ...problems(() => source(at('bad-key.json', { ...serviceAccountFile(), private_key: 'secret-not-a-pem' }))),
      ...problems(() => source(at('bad-source.json', { type: 'impersonated_service_account', service_account_impersonation_url: 'https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/t@p:generateAccessToken', source_credentials: { type: 'authorized_user', client_id: 'c', refresh_token: USER.refreshToken } }))),
    ];
    expect(found).toEqual([
      `providers.vx.adc: ${file('federated.json')}: credentials of type "external_account" (workload identity federation) are not supported; use service_account, authorized_user or impersonated_service_account, or the metadata server`,
      `providers.vx.adc: ${file('user.json')}: refresh_token: Invalid input: expected string, received undefined`,
      `providers.vx.adc: ${file('broken.json')} is not JSON: expected a credentials file as Google issues it`,
      `providers.vx.adc: ${file('untyped.json')}: type: missing; expected service_account, authorized_user or impersonated_service_account`,
      `providers.vx.adc: ${file('gdch.json')}: type: "gdch_service_account" is not supported; expected service_account, authorized_user or impersonated_service_account`,
      `providers.vx.adc: ${file('bad-key.json')}: private_key: not an RSA private key in PEM form (-----BEGIN PRIVATE KEY-----)`,
      `providers.vx.adc: ${file('bad-source.json')}: source_credentials.client_secret: Invalid input: expected string, received undefined`,
    ]);
    expect(found.join(' ')).not.toMatch(/1\/\/0g|secret-not-a-pem|MII/);
    expect(sim.requests()).toEqual([]);
  });

  it('refuses at start-up a well-known file that is there but cannot be read', () => {
    mkdirSync(wellKnown(dir), { recursive: true });
    expect(problems(() => source(env({ home: dir })))).toEqual([`providers.vx.adc: the gcloud well-known file ${wellKnown(dir)} cannot be read: EISDIR`]);
  });
});
