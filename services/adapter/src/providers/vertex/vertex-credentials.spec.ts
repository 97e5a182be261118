import { generateKeyPairSync } from 'node:crypto';
import { ConfigError, providerSchema, type ProviderConfigOf } from '@openrouter/config';
import type { TokenHttp, TokenHttpRequest } from '../access-token';
import { vertexTokenSource } from './vertex-credentials';

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
    const source = vertexTokenSource('vertex', vertex({ credentialsFile: '/keys/sa.json' }), { http, readFile: (path) => (path === '/keys/sa.json' ? file : '') });
    await expect(source.token(never)).resolves.toBe('ya29.ok');
    expect(http.requests[0]?.url.href).toBe('https://tokens.example.test/token');
  });

  it('defaults the token endpoint to Google’s when the key file has none', async () => {
    const http = new RecordingHttp();
    const file = JSON.stringify({ client_email: 'sa@p.iam.gserviceaccount.com', private_key: PRIVATE_PEM });
    await vertexTokenSource('vertex', vertex({ credentialsFile: 'sa.json' }), { http, readFile: () => file }).token(never);
    expect(http.requests[0]?.url.href).toBe('https://oauth2.googleapis.com/token');
  });

  it('refuses at start-up a key file that is missing, not JSON or not a service-account key, never quoting it', () => {
    const config = vertex({ credentialsFile: '/keys/sa.json' });
    const http = new RecordingHttp();
    const missing = (): string => {
      throw Object.assign(new Error('ENOENT: no such file'), { code: 'ENOENT' });
    };
    expect(problems(() => vertexTokenSource('vx', config, { http, readFile: missing }))).toEqual(['providers.vx.credentialsFile: cannot read /keys/sa.json: ENOENT']);
    const broken = `{"private_key": "${PRIVATE_PEM.slice(0, 60)}`;
    const notJson = problems(() => vertexTokenSource('vx', config, { http, readFile: () => broken }));
    expect(notJson).toEqual(['providers.vx.credentialsFile: /keys/sa.json is not JSON: expected a service-account key file as Google issues it']);
    const wrong = problems(() => vertexTokenSource('vx', config, { http, readFile: () => JSON.stringify({ type: 'authorized_user', client_id: 'x', private_key: 42 }) }));
    expect(wrong).toEqual([
      'providers.vx.credentialsFile: /keys/sa.json: client_email: Invalid input: expected string, received undefined',
      'providers.vx.credentialsFile: /keys/sa.json: private_key: Invalid input: expected string, received number',
    ]);
    const badKey = problems(() => vertexTokenSource('vx', config, { http, readFile: () => JSON.stringify({ client_email: 'a@b', private_key: 'secret-not-a-pem' }) }));
    expect(badKey).toEqual(['providers.vx.credentialsFile: private_key: not an RSA private key in PEM form (-----BEGIN PRIVATE KEY-----)']);
    expect([...notJson, ...badKey].join(' ')).not.toMatch(/MII|secret-not-a-pem/);
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
