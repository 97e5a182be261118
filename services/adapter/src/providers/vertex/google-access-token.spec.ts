import { generateKeyPairSync, verify } from 'node:crypto';
import { failure } from '../gateway-failure.testing';
import { bearerAuth, CachedTokenSource, type GrantedToken, staticTokenSource } from '../access-token';
import { FakeTokenHttp } from '../token-http.testing';
import { CLOUD_PLATFORM_SCOPE, JWT_BEARER_GRANT, metadataServerGrant, readPrivateKey, serviceAccountGrant } from './google-access-token';

const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const PRIVATE_PEM = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const KEY = { clientEmail: 'gateway@my-project.iam.gserviceaccount.com', privateKey: PRIVATE_PEM, tokenUri: 'https://oauth2.example.test/token' };
const never = new AbortController().signal;

function decodeJwt(assertion: string): { header: unknown; claims: Record<string, unknown>; signedPart: string; signature: Buffer } {
  const [header = '', claims = '', signature = ''] = assertion.split('.');
  return {
    header: JSON.parse(Buffer.from(header, 'base64url').toString()),
    claims: JSON.parse(Buffer.from(claims, 'base64url').toString()) as Record<string, unknown>,
    signedPart: `${header}.${claims}`,
    signature: Buffer.from(signature, 'base64url'),
  };
}


describe('the service-account grant', () => {
  it('posts an RS256 assertion signed with the key, with iss, scope, aud, iat and exp an hour later', async () => {
    const http = new FakeTokenHttp().reply(200, { access_token: 'ya29.first', expires_in: 3599, token_type: 'Bearer' });
    const now = 1_760_000_000_000;
    const grant = serviceAccountGrant(KEY, readPrivateKey(PRIVATE_PEM, 'key'), http, { provider: 'vertex', now: () => now });
    await expect(grant()).resolves.toEqual({ accessToken: 'ya29.first', expiresInSeconds: 3599 });

    const [sent] = http.requests;
    expect(sent?.method).toBe('POST');
    expect(sent?.url.href).toBe(KEY.tokenUri);
    expect(sent?.headers['content-type']).toBe('application/x-www-form-urlencoded');
    const form = new URLSearchParams(sent?.body);
    expect(form.get('grant_type')).toBe(JWT_BEARER_GRANT);
    const jwt = decodeJwt(form.get('assertion') ?? '');
    expect(jwt.header).toEqual({ alg: 'RS256', typ: 'JWT' });
    expect(jwt.claims).toEqual({ iss: KEY.clientEmail, scope: CLOUD_PLATFORM_SCOPE, aud: KEY.tokenUri, iat: now / 1000, exp: now / 1000 + 3600 });
    expect(verify('RSA-SHA256', Buffer.from(jwt.signedPart), publicKey, jwt.signature)).toBe(true);
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
    expect(verify('RSA-SHA256', Buffer.from(jwt.signedPart), other, jwt.signature)).toBe(false);
  });

  it('turns a refusal into auth_failed naming the provider and the OAuth error, never the assertion or the key', async () => {
    const http = new FakeTokenHttp().reply(400, { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' });
    const grant = serviceAccountGrant(KEY, readPrivateKey(PRIVATE_PEM, 'key'), http, { provider: 'vertex-eu' });
    const error = await failure(grant());
    // The token endpoint's status marks it as the provider's failure: a client gets 502, never a 401 about its own key.
    expect(error).toMatchObject({ kind: 'auth_failed', code: 'upstream_auth_failed', retryable: true, provider: 'vertex-eu', upstreamStatus: 400 });
    expect(error.message).toBe('The provider "vertex-eu" could not get an access token: the token endpoint answered HTTP 400 (invalid_grant).');
    const assertion = new URLSearchParams(http.requests[0]?.body).get('assertion') ?? '';
    const everything = `${error.message} ${String((error.cause as Error).message)}`;
    expect(everything).not.toContain(assertion.slice(0, 40));
    expect(everything).not.toContain('PRIVATE KEY');
  });

  it('drops an assertion the endpoint quotes back from the logged cause', async () => {
    const http = new FakeTokenHttp();
    const grant = serviceAccountGrant(KEY, readPrivateKey(PRIVATE_PEM, 'key'), http, { provider: 'vertex' });
    http.reply(400, { error: 'invalid_grant', error_description: 'Bad assertion eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.c2lnbmF0dXJl here' });
    const error = await failure(grant());
    expect((error.cause as Error).message).toBe('HTTP 400 invalid_grant: Bad assertion [redacted] here');
  });

  it('turns an unreachable endpoint, a server error and an answer without a token into auth_failed', async () => {
    const http = new FakeTokenHttp().unreachable().reply(503, 'Service Unavailable').reply(200, { token_type: 'Bearer' });
    const grant = serviceAccountGrant(KEY, readPrivateKey(PRIVATE_PEM, 'key'), http, { provider: 'vertex' });
    await expect(failure(grant())).resolves.toMatchObject({ kind: 'auth_failed', upstreamStatus: 0, message: 'The provider "vertex" could not get an access token: the token endpoint could not be reached.' });
    await expect(failure(grant())).resolves.toMatchObject({ kind: 'auth_failed', upstreamStatus: 503, message: 'The provider "vertex" could not get an access token: the token endpoint answered HTTP 503.' });
    await expect(failure(grant())).resolves.toMatchObject({ kind: 'auth_failed', message: expect.stringContaining('without an access token') });
  });

  it('takes a key whose line breaks are written \\n, as copied from the key file into a variable', () => {
    expect(readPrivateKey(PRIVATE_PEM.replace(/\n/g, '\\n'), 'key').asymmetricKeyType).toBe('rsa');
  });

  it('refuses a private key that is not one, without quoting it', () => {
    const notAKey = '-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n';
    expect(() => readPrivateKey(notAKey, 'providers.vertex.credentials.privateKey')).toThrow('providers.vertex.credentials.privateKey: not an RSA private key in PEM form (-----BEGIN PRIVATE KEY-----)');
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    expect(() => readPrivateKey(ec, 'k')).toThrow(/not an RSA private key/);
  });
});

describe('the metadata-server grant', () => {
  it('GETs the default service account token with Metadata-Flavor: Google', async () => {
    const http = new FakeTokenHttp().reply(200, { access_token: 'ya29.metadata', expires_in: 1800, token_type: 'Bearer' });
    const url = 'http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token';
    await expect(metadataServerGrant(url, http, { provider: 'vertex' })()).resolves.toEqual({ accessToken: 'ya29.metadata', expiresInSeconds: 1800 });
    expect(http.requests[0]).toMatchObject({ method: 'GET', headers: { 'metadata-flavor': 'Google' } });
    expect(http.requests[0]?.url.href).toBe(url);
  });

  it('names the metadata server when it fails', async () => {
    const http = new FakeTokenHttp().reply(404, 'not found');
    await expect(failure(metadataServerGrant('http://169.254.169.254/token', http, { provider: 'gke' })())).resolves.toMatchObject({
      kind: 'auth_failed',
      message: 'The provider "gke" could not get an access token: the metadata server answered HTTP 404.',
    });
  });
});

describe('the token cache', () => {
  /** A grant handing out tok-1, tok-2, … with the given lifetime, counting its calls. */
  function countingGrant(expiresInSeconds = 3600): { grant: () => Promise<GrantedToken>; calls: () => number } {
    let calls = 0;
    return { grant: async () => ({ accessToken: `tok-${++calls}`, expiresInSeconds }), calls: () => calls };
  }

  it('keeps a token until 5 minutes before it expires, then fetches a new one (the token in hand serving meanwhile)', async () => {
    let now = 0;
    const { grant, calls } = countingGrant(3600);
    const source = new CachedTokenSource(grant, { provider: 'vertex', now: () => now });
    await expect(source.token(never)).resolves.toBe('tok-1');
    now = 3300_000 - 1;
    await expect(source.token(never)).resolves.toBe('tok-1');
    expect(calls()).toBe(1);
    now = 3300_000;
    await expect(source.token(never)).resolves.toBe('tok-1');
    expect(calls()).toBe(2);
    await new Promise<void>((done) => setImmediate(done)); // the refresh settles
    await expect(source.token(never)).resolves.toBe('tok-2');
    expect(calls()).toBe(2);
  });

  it('keeps a short-lived token for half its life', async () => {
    let now = 0;
    const { grant } = countingGrant(120);
    const source = new CachedTokenSource(grant, { provider: 'vertex', now: () => now });
    await source.token(never);
    now = 59_999;
    await expect(source.token(never)).resolves.toBe('tok-1');
    now = 60_000;
    await expect(source.token(never)).resolves.toBe('tok-1');
    await new Promise<void>((done) => setImmediate(done));
    await expect(source.token(never)).resolves.toBe('tok-2');
  });

  it('keeps using a token still valid when its early refresh fails, trying again 10 s later, and fails only once it has expired', async () => {
    let now = 0;
    let calls = 0;
    let failing = false;
    const grant = async (): Promise<GrantedToken> => {
      calls += 1;
      if (failing) throw new Error('token endpoint down');
      return { accessToken: `tok-${calls}`, expiresInSeconds: 3600 };
    };
    const source = new CachedTokenSource(grant, { provider: 'vertex', now: () => now });
    await expect(source.token(never)).resolves.toBe('tok-1');
    failing = true;
    now = 3300_000; // the refresh is due, five minutes before the expiry
    await expect(source.token(never)).resolves.toBe('tok-1');
    expect(calls).toBe(2);
    now = 3300_000 + 9_999; // no new try within 10 s
    await expect(source.token(never)).resolves.toBe('tok-1');
    expect(calls).toBe(2);
    now = 3600_000; // expired: the failure is the answer
    await expect(source.token(never)).rejects.toThrow('token endpoint down');
    failing = false;
    await expect(source.token(never)).resolves.toBe('tok-4');
  });

  it('while an early refresh hangs, callers get the token in hand at once; within 30 s of its expiry they wait for the new one', async () => {
    let now = 0;
    let calls = 0;
    let release: ((granted: GrantedToken) => void) | undefined;
    const grant = (): Promise<GrantedToken> => {
      calls += 1;
      if (calls === 1) return Promise.resolve({ accessToken: 'tok-1', expiresInSeconds: 3600 });
      return new Promise((done) => (release = done));
    };
    const source = new CachedTokenSource(grant, { provider: 'vertex', now: () => now });
    await expect(source.token(never)).resolves.toBe('tok-1');
    now = 3300_000;
    await expect(source.token(never)).resolves.toBe('tok-1');
    await expect(source.token(never)).resolves.toBe('tok-1');
    expect(calls).toBe(2); // one refresh, shared
    now = 3600_000 - 30_000;
    const waiting = source.token(never);
    release?.({ accessToken: 'tok-2', expiresInSeconds: 3600 });
    await expect(waiting).resolves.toBe('tok-2');
    expect(calls).toBe(2);
  });

  it('makes concurrent callers share one fetch', async () => {
    const http = new FakeTokenHttp();
    const release = http.held(200, { access_token: 'ya29.shared', expires_in: 3600 });
    const source = new CachedTokenSource(metadataServerGrant('http://metadata.test/token', http, { provider: 'vertex' }), { provider: 'vertex' });
    const waiting = Promise.all([source.token(never), source.token(never), source.token(never)]);
    release();
    await expect(waiting).resolves.toEqual(['ya29.shared', 'ya29.shared', 'ya29.shared']);
    expect(http.requests).toHaveLength(1);
  });

  it('does not cache a failure: the next call fetches again', async () => {
    const http = new FakeTokenHttp().reply(500, {}).reply(200, { access_token: 'ya29.second', expires_in: 3600 });
    const source = new CachedTokenSource(metadataServerGrant('http://metadata.test/token', http, { provider: 'vertex' }), { provider: 'vertex' });
    await expect(failure(source.token(never))).resolves.toMatchObject({ kind: 'auth_failed' });
    await expect(source.token(never)).resolves.toBe('ya29.second');
  });

  it('lets a cancelled caller go while the shared fetch serves the others', async () => {
    const http = new FakeTokenHttp();
    const release = http.held(200, { access_token: 'ya29.late', expires_in: 3600 });
    const source = new CachedTokenSource(metadataServerGrant('http://metadata.test/token', http, { provider: 'vertex' }), { provider: 'vertex' });
    const controller = new AbortController();
    const cancelled = source.token(controller.signal);
    const patient = source.token(never);
    controller.abort();
    await expect(failure(cancelled)).resolves.toMatchObject({ kind: 'cancelled' });
    release();
    await expect(patient).resolves.toBe('ya29.late');
  });

  it('recovers from a grant that throws at once, and fetches nothing for a call already cancelled', async () => {
    let calls = 0;
    const source = new CachedTokenSource(
      () => {
        calls += 1;
        if (calls === 1) throw new Error('thrown before any await');
        return Promise.resolve({ accessToken: 'ya29.after', expiresInSeconds: 3600 });
      },
      { provider: 'vertex' },
    );
    await expect(source.token(never)).rejects.toThrow('thrown before any await');
    const controller = new AbortController();
    controller.abort();
    await expect(failure(source.token(controller.signal))).resolves.toMatchObject({ kind: 'cancelled' });
    expect(calls).toBe(1);
    await expect(source.token(never)).resolves.toBe('ya29.after');
  });

  it('drops a refused token, so the next call fetches a fresh one', async () => {
    const { grant, calls } = countingGrant();
    const source = new CachedTokenSource(grant, { provider: 'vertex' });
    const auth = bearerAuth(source);
    const first = await auth.headers(never);
    expect(first).toEqual({ authorization: 'Bearer tok-1' });
    expect(auth.refused?.(first)).toBe(true);
    await expect(auth.headers(never)).resolves.toEqual({ authorization: 'Bearer tok-2' });
    // A refusal of a token already replaced leaves the new one in place.
    expect(auth.refused?.(first)).toBe(true);
    await expect(auth.headers(never)).resolves.toEqual({ authorization: 'Bearer tok-2' });
    expect(calls()).toBe(2);
  });

  it('never refreshes a static token', async () => {
    const auth = bearerAuth(staticTokenSource('ya29.static'));
    const headers = await auth.headers(never);
    expect(headers).toEqual({ authorization: 'Bearer ya29.static' });
    expect(auth.refused?.(headers)).toBe(false);
  });
});
