import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { ConfigError, providerSchema, type ProviderConfigOf } from '@openrouter/config';
import { SecretVolume } from '@openrouter/provider-simulator';
import type { TokenHttp, TokenHttpRequest } from '../access-token';
import { inlineSecret } from '../credential-file';
import { openServiceAccountKeyFile, parseServiceAccountKeyFile, vertexTokenSource } from './vertex-credentials';

const PRIVATE_PEM = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const never = new AbortController().signal;

const vertex = (auth: Record<string, unknown>): ProviderConfigOf<'vertex'> => providerSchema.parse({ type: 'vertex', project: 'p', ...auth }) as ProviderConfigOf<'vertex'>;

/** Answers every token request with one token, recording the requests. */
class RecordingHttp implements TokenHttp {
  readonly requests: TokenHttpRequest[] = [];
  async request(request: TokenHttpRequest): Promise<{ status: number; body: string }> {
    this.requests.push(request);
    return { status: 200, body: JSON.stringify({ access_token: 'ya29.ok', expires_in: 3600 }) };
  }
}

function problems(run: () => unknown): string[] {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe('the access tokens of a vertex provider', () => {
  it('reads a key file as Google issues it and posts to its token_uri', async () => {
    const file = JSON.stringify({ type: 'service_account', project_id: 'p', client_email: 'sa@p.iam.gserviceaccount.com', private_key: PRIVATE_PEM, token_uri: 'https://tokens.example.test/token' });
    const http = new RecordingHttp();
    const source = vertexTokenSource('vertex', vertex({ credentialsFile: '/keys/sa.json' }), { http, keyFile: inlineSecret(file) });
    await expect(source.token(never)).resolves.toBe('ya29.ok');
    expect(http.requests[0]?.url.href).toBe('https://tokens.example.test/token');
  });

  it('defaults the token endpoint to Google’s when the key file has none', async () => {
    const http = new RecordingHttp();
    const file = JSON.stringify({ client_email: 'sa@p.iam.gserviceaccount.com', private_key: PRIVATE_PEM });
    await vertexTokenSource('vertex', vertex({ credentialsFile: 'sa.json' }), { http, keyFile: inlineSecret(file) }).token(never);
    expect(http.requests[0]?.url.href).toBe('https://oauth2.googleapis.com/token');
  });

  it('refuses at start-up a key file that is missing, not JSON or not a service-account key, never quoting it', () => {
    const volume = new SecretVolume({});
    try {
      const path = volume.path('sa.json');
      const opened = (content?: string): string[] => {
        if (content !== undefined) volume.write({ 'sa.json': content });
        return problems(() => openServiceAccountKeyFile('vx', vertex({ credentialsFile: path }))?.close());
      };
      expect(opened()).toEqual([`providers.vx.credentialsFile: cannot read ${path}: ENOENT`]);
      const notJson = opened(`{"private_key": "${PRIVATE_PEM.slice(0, 60)}`);
      expect(notJson).toEqual([`providers.vx.credentialsFile: ${path} is not JSON: expected a service-account key file as Google issues it`]);
      expect(opened(JSON.stringify({ type: 'authorized_user', client_id: 'x', private_key: 42 }))).toEqual([
        `providers.vx.credentialsFile: ${path}: client_email: Invalid input: expected string, received undefined`,
        `providers.vx.credentialsFile: ${path}: private_key: Invalid input: expected string, received number`,
      ]);
      const badKey = opened(JSON.stringify({ client_email: 'a@b', private_key: 'secret-not-a-pem' }));
      expect(badKey).toEqual(['providers.vx.credentialsFile: private_key: not an RSA private key in PEM form (-----BEGIN PRIVATE KEY-----)']);
      expect([...notJson, ...badKey].join(' ')).not.toMatch(/MII|secret-not-a-pem/);
      expect(opened(JSON.stringify({ client_email: 'a@b', private_key: PRIVATE_PEM }))).toEqual([]);
    } finally {
      volume.remove();
    }
  });

  it('opens no file for a provider without credentialsFile', () => {
    expect(openServiceAccountKeyFile('vx', vertex({ metadataServer: true }))).toBeUndefined();
    expect(problems(() => openServiceAccountKeyFile('vx', vertex({ credentialsFile: join(__dirname, 'no-such-dir', 'sa.json') })))).toHaveLength(1);
  });

  it('refuses a key handed in that is not one, naming the file and the field', () => {
    const config = vertex({ credentialsFile: '/keys/sa.json' });
    expect(problems(() => vertexTokenSource('vx', config, { http: new RecordingHttp(), keyFile: inlineSecret('{"client_email": "a@b"}') }))).toEqual([
      'providers.vx.credentialsFile: /keys/sa.json: private_key: Invalid input: expected string, received undefined',
    ]);
  });

  it('refuses an inline private key that is not one, naming the field only', () => {
    const config = vertex({ credentials: { clientEmail: 'sa@p', privateKey: 'hunter2' } });
    expect(problems(() => vertexTokenSource('vx', config, { http: new RecordingHttp() }))).toEqual(['providers.vx.credentials.privateKey: not an RSA private key in PEM form (-----BEGIN PRIVATE KEY-----)']);
  });

  it('asks the metadata server when told to, at the URL configured', async () => {
    const http = new RecordingHttp();
    await vertexTokenSource('vertex', vertex({ metadataServer: true, metadataServerUrl: 'http://127.0.0.1:9/computeMetadata/v1/instance/service-accounts/default/token' }), { http }).token(never);
    expect(http.requests[0]).toMatchObject({ method: 'GET', headers: { 'metadata-flavor': 'Google' } });
  });

  it('uses a static token as it is, without any request', async () => {
    const http = new RecordingHttp();
    await expect(vertexTokenSource('vertex', vertex({ accessToken: 'ya29.given' }), { http }).token(never)).resolves.toBe('ya29.given');
    expect(http.requests).toEqual([]);
  });
});

describe('the content of a service-account key file', () => {
  it('gives the account, the private key and the token endpoint', () => {
    const parsed = parseServiceAccountKeyFile(JSON.stringify({ client_email: 'sa@p', private_key: PRIVATE_PEM, token_uri: 'https://t.example.test/token', private_key_id: 'k1' }), '/k.json');
    expect(parsed.ok && parsed.signer.key).toEqual({ clientEmail: 'sa@p', privateKey: PRIVATE_PEM, tokenUri: 'https://t.example.test/token' });
    expect(parsed.ok && parsed.signer.privateKey.asymmetricKeyType).toBe('rsa');
  });

  it.each([
    ['half written', `{"client_email": "sa@p", "private_key": "${PRIVATE_PEM.slice(0, 80)}`, ['/k.json is not JSON: expected a service-account key file as Google issues it']],
    ['not an object', '"just a string"', ['/k.json: (root): Invalid input: expected object, received string']],
    ['a token endpoint that is not a URL', JSON.stringify({ client_email: 'sa@p', private_key: PRIVATE_PEM, token_uri: 'not a url' }), ['/k.json: token_uri: Invalid URL']],
    ['an EC key', JSON.stringify({ client_email: 'sa@p', private_key: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() }), ['private_key: not an RSA private key in PEM form (-----BEGIN PRIVATE KEY-----)']],
  ])('is refused: %s, never quoted', (_what, content, expected) => {
    const parsed = parseServiceAccountKeyFile(content, '/k.json');
    expect(parsed).toEqual({ ok: false, problems: expected });
    expect(JSON.stringify(parsed)).not.toMatch(/MII/);
  });
});
