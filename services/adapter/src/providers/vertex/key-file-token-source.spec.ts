import { generateKeyPairSync, type KeyObject, verify } from 'node:crypto';
import { providerSchema, type ProviderConfigOf } from '@openrouter/config';
import { GatewayError } from '@openrouter/errors';
import { SecretVolume } from '@openrouter/provider-simulator';
import { type AccessTokenSource, bearerAuth, type TokenHttp, type TokenHttpRequest } from '../access-token';
import { CredentialFile, REFUSAL_REREAD_MS } from '../credential-file';
import { openServiceAccountKeyFile, vertexTokenSource } from './vertex-credentials';

const EMAIL = 'gateway@p.iam.gserviceaccount.com';
const never = new AbortController().signal;

// Made at test time; no private key is committed.
const keyPair = (): { publicKey: KeyObject; pem: string } => {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { publicKey, pem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
};
const KEY_A = keyPair();
const KEY_B = keyPair();
const keyFileOf = (key: { pem: string }): string => JSON.stringify({ type: 'service_account', client_email: EMAIL, private_key: key.pem, private_key_id: 'k', token_uri: 'https://oauth2.example.test/token' });

/**
 * Google's token endpoint as far as a key rotation goes: it grants a token for an assertion signed
 * by a key it trusts (named in the token), `invalid_grant` otherwise; `down` makes it unreachable.
 */
class TokenEndpoint implements TokenHttp {
  readonly trusted = new Map<string, KeyObject>();
  /** The key that signed each assertion posted, or `untrusted`. */
  readonly signedBy: string[] = [];
  down = false;
  private issued = 0;

  async request(request: TokenHttpRequest): Promise<{ status: number; body: string }> {
    if (this.down) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    const [head = '', claims = '', signature = ''] = (new URLSearchParams(request.body).get('assertion') ?? '').split('.');
    const signer = [...this.trusted].find(([, key]) => verify('RSA-SHA256', Buffer.from(`${head}.${claims}`), key, Buffer.from(signature, 'base64url')))?.[0];
    this.signedBy.push(signer ?? 'untrusted');
    if (signer === undefined) return { status: 400, body: JSON.stringify({ error: 'invalid_grant', error_description: 'Invalid JWT Signature.' }) };
    return { status: 200, body: JSON.stringify({ access_token: `ya29.${signer}-${++this.issued}`, expires_in: 3600 }) };
  }
}

describe('the tokens of a service-account key file that is rotated', () => {
  let volume: SecretVolume;
  let file: CredentialFile;
  let endpoint: TokenEndpoint;
  let tokens: AccessTokenSource;
  let clock: number;

  beforeEach(() => {
    clock = 1_000_000;
    volume = new SecretVolume({ 'key.json': keyFileOf(KEY_A) });
    endpoint = new TokenEndpoint();
    endpoint.trusted.set('A', KEY_A.publicKey);
    const config = providerSchema.parse({ type: 'vertex', project: 'p', credentialsFile: volume.path('key.json'), credentialFileCheckIntervalMs: 3_600_000 }) as ProviderConfigOf<'vertex'>;
    file = openServiceAccountKeyFile('vx', config, { now: () => clock }) as CredentialFile;
    tokens = vertexTokenSource('vx', config, { http: endpoint, keyFile: file, now: () => clock });
  });
  afterEach(() => {
    file.close();
    volume.remove();
  });

  /** Key B replaces key A in the file and at Google (A deleted), as a rotation does. */
  function rotate(): void {
    endpoint.trusted.delete('A');
    endpoint.trusted.set('B', KEY_B.publicKey);
    volume.write({ 'key.json': keyFileOf(KEY_B) });
  }

  it('mints with the new key once the check took it, dropping the token cached from the old one', async () => {
    expect(await tokens.token(never)).toBe('ya29.A-1');
    expect(await tokens.token(never)).toBe('ya29.A-1');
    rotate();
    // Until the file is checked, the token in hand serves (it stays valid at Google until it expires).
    expect(await tokens.token(never)).toBe('ya29.A-1');
    await file.check();
    expect(await tokens.token(never)).toBe('ya29.B-2');
    expect(await tokens.token(never)).toBe('ya29.B-2');
    expect(endpoint.signedBy).toEqual(['A', 'B']);
  });

  it('reads the file again when the token endpoint refuses the old key, and asks once more with the new one', async () => {
    rotate();
    expect(await tokens.token(never)).toBe('ya29.B-1');
    expect(endpoint.signedBy).toEqual(['untrusted', 'B']);
  });

  it('passes the refusal on, after one request, when the file holds the refused key still', async () => {
    endpoint.trusted.clear();
    const error = await tokens.token(never).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GatewayError);
    expect(error).toMatchObject({ kind: 'auth_failed', upstreamStatus: 400, message: 'The provider "vx" could not get an access token: the token endpoint answered HTTP 400 (invalid_grant).' });
    expect(endpoint.signedBy).toEqual(['untrusted']);
  });

  it('does not read the file for a token endpoint that cannot be reached', async () => {
    rotate();
    endpoint.down = true;
    await expect(tokens.token(never)).rejects.toMatchObject({ kind: 'auth_failed', upstreamStatus: 0 });
    endpoint.down = false;
    // Still the old key: nothing read the file (its checks are an hour apart).
    expect(file.value()).toBe(keyFileOf(KEY_A));
  });

  it('takes a new key when Vertex AI refuses the token (401), and drops the token otherwise', async () => {
    const auth = bearerAuth(tokens);
    const first = await auth.headers(never);
    // Refused with the file unchanged: a fresh token of the same key.
    expect(await auth.refused?.(first, false, 401)).toBe(true);
    expect(await auth.headers(never)).toEqual({ authorization: 'Bearer ya29.A-2' });
    clock += REFUSAL_REREAD_MS;
    rotate();
    expect(await auth.refused?.({ authorization: 'Bearer ya29.A-2' }, false, 401)).toBe(true);
    expect(await auth.headers(never)).toEqual({ authorization: 'Bearer ya29.B-3' });
    expect(endpoint.signedBy).toEqual(['A', 'A', 'B']);
  });

  it('sends a call refused with 403 once more only when the file holds another key now', async () => {
    const auth = bearerAuth(tokens);
    const used = await auth.headers(never);
    expect(await auth.refused?.(used, false, 403)).toBe(false);
    expect(await auth.headers(never)).toEqual(used);
    clock += REFUSAL_REREAD_MS;
    rotate();
    expect(await auth.refused?.(used, false, 403)).toBe(true);
    const fresh = await auth.headers(never);
    expect(fresh).toEqual({ authorization: 'Bearer ya29.B-2' });
    // The second try refused as well: passed on, the file not read again.
    volume.write({ 'key.json': keyFileOf(KEY_A) });
    clock += REFUSAL_REREAD_MS;
    expect(await auth.refused?.(fresh, true, 403)).toBe(false);
    expect(file.value()).toBe(keyFileOf(KEY_B));
  });

  it('keeps minting with the last good key while the file is half written', async () => {
    volume.write({ 'key.json': keyFileOf(KEY_B).slice(0, 120) });
    await file.check();
    await file.reread();
    expect(await tokens.token(never)).toBe('ya29.A-1');
    expect(endpoint.signedBy).toEqual(['A']);
  });
});
