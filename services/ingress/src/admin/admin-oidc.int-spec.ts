import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type JWK, type KeyLike } from 'jose';
import { adminOidcSchema, type AdminOidcConfig } from '@openrouter/config';
import { GatewayError } from '@openrouter/errors';
import { createLogger } from '@openrouter/observability';
import { OidcAdminAuth } from './admin-oidc';

const silent = createLogger('admin-oidc-spec', 'silent');

/** A local identity provider: a discovery document and a key set the test changes, and how often each was fetched. */
class IdentityProvider {
  keys: JWK[] = [];
  fetches = { discovery: 0, jwks: 0 };
  announcedIssuer: string | undefined;
  jwksStatus = 200;
  private server: Server | undefined;
  port = 0;

  get issuer(): string {
    return `http://127.0.0.1:${this.port}/realms/acme`;
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      if (req.url === '/realms/acme/.well-known/openid-configuration') {
        this.fetches.discovery += 1;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ issuer: this.announcedIssuer ?? this.issuer, jwks_uri: `${this.issuer}/protocol/openid-connect/certs` }));
      } else if (req.url === '/realms/acme/protocol/openid-connect/certs') {
        this.fetches.jwks += 1;
        res.statusCode = this.jwksStatus;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ keys: this.keys }));
      } else {
        res.statusCode = 404;
        res.end();
      }
    });
    await new Promise<void>((done) => this.server?.listen(0, '127.0.0.1', done));
    this.port = (this.server?.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    await new Promise<void>((done) => this.server?.close(() => done()));
  }
}

interface SigningKey {
  kid: string;
  privateKey: KeyLike;
  jwk: JWK;
  alg: 'RS256' | 'ES256';
}

async function signingKey(kid: string, alg: 'RS256' | 'ES256' = 'RS256'): Promise<SigningKey> {
  const { publicKey, privateKey } = await generateKeyPair(alg);
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' }, alg };
}

describe('admin single sign-on: tokens of a real local identity provider (discovery, key set over HTTP)', () => {
  const idp = new IdentityProvider();
  let current: SigningKey;
  let config: AdminOidcConfig;

  const token = (claims: Record<string, unknown>, key: SigningKey = current, over: { issuer?: string; audience?: string; expiresIn?: string | number } = {}): Promise<string> =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: key.alg, kid: key.kid })
      .setIssuer(over.issuer ?? idp.issuer)
      .setAudience(over.audience ?? 'open-router-admin')
      .setSubject('user-1')
      .setIssuedAt()
      .setExpirationTime(over.expiresIn ?? '5m')
      .sign(key.privateKey);

  const refusal = async (auth: OidcAdminAuth, jwt: string): Promise<GatewayError> => {
    const error = await auth.authenticate(jwt).then(
      () => undefined,
      (e: unknown) => e,
    );
    if (!(error instanceof GatewayError)) throw new Error(`expected a refusal, got ${String(error)}`);
    return error;
  };

  beforeAll(async () => {
    await idp.start();
    current = await signingKey('k1');
    idp.keys = [current.jwk];
    config = adminOidcSchema.parse({
      issuer: idp.issuer,
      audience: 'open-router-admin',
      actorClaim: 'email',
      grants: [
        { value: 'or-admins', role: 'admin' },
        { value: 'finance', role: 'finance' },
        { value: 'search-team', role: 'project', org: 'acme', project: 'search' },
      ],
    });
  });
  afterAll(async () => idp.stop());

  it('finds the keys through discovery once, and maps the first grant the role claim holds', async () => {
    const auth = new OidcAdminAuth(config, silent);
    expect(await auth.authenticate(await token({ email: 'alice@example.com', groups: ['staff', 'finance', 'or-admins'] }))).toEqual({ id: 'oidc:alice@example.com', role: 'admin', org: undefined, project: undefined });
    expect(await auth.authenticate(await token({ email: 'bob@example.com', groups: ['search-team'] }))).toEqual({ id: 'oidc:bob@example.com', role: 'project', org: 'acme', project: 'search' });
    // No actor claim: the subject names the caller.
    expect(await auth.authenticate(await token({ groups: 'finance' }))).toMatchObject({ id: 'oidc:user-1', role: 'finance' });
    expect(idp.fetches.discovery).toBe(1);
  });

  it('reads a nested role claim, and a space-separated one word by word', async () => {
    const nested = new OidcAdminAuth({ ...config, roleClaim: 'realm_access.roles' }, silent);
    expect(await nested.authenticate(await token({ realm_access: { roles: ['finance'] } }))).toMatchObject({ role: 'finance' });
    const scopes = new OidcAdminAuth({ ...config, roleClaim: 'scope' }, silent);
    expect(await scopes.authenticate(await token({ scope: 'openid profile or-admins' }))).toMatchObject({ role: 'admin' });
  });

  it('takes a string role claim whole (but `scope` word by word), a namespaced claim by its name, and an unverified email as no name', async () => {
    const auth = new OidcAdminAuth(config, silent);
    // A group named with spaces is one group: "Not or-admins" grants nothing.
    expect(await refusal(auth, await token({ groups: 'Not or-admins' }))).toMatchObject({ code: 'no_admin_grant' });
    expect(await auth.authenticate(await token({ groups: 'finance' }))).toMatchObject({ role: 'finance' });
    const namespaced = new OidcAdminAuth({ ...config, roleClaim: 'https://gw.example.com/roles' }, silent);
    expect(await namespaced.authenticate(await token({ 'https://gw.example.com/roles': ['or-admins'] }))).toMatchObject({ role: 'admin' });
    expect(await auth.authenticate(await token({ email: 'ceo@example.com', email_verified: false, groups: ['finance'] }))).toMatchObject({ id: 'oidc:user-1' });
    expect(await auth.authenticate(await token({ email: 'ceo@example.com', email_verified: 'false', groups: ['finance'] }))).toMatchObject({ id: 'oidc:user-1' });
    expect(await auth.authenticate(await token({ email: 'carol@example.com', email_verified: true, groups: ['finance'] }))).toMatchObject({ id: 'oidc:carol@example.com' });
  });

  it('refuses a token without an expiry: it would never expire', async () => {
    const auth = new OidcAdminAuth(config, silent);
    const forever = await new SignJWT({ groups: ['or-admins'] })
      .setProtectedHeader({ alg: current.alg, kid: current.kid })
      .setIssuer(idp.issuer)
      .setAudience('open-router-admin')
      .setSubject('mallory')
      .setIssuedAt(Math.floor(Date.now() / 1000) - 10 * 365 * 86_400)
      .sign(current.privateKey);
    expect(await refusal(auth, forever)).toMatchObject({ kind: 'auth_failed', code: 'invalid_admin_token' });
  });

  it('refuses tokens it must not take, each with its reason and never a 5xx', async () => {
    const auth = new OidcAdminAuth(config, silent);
    const claims = { groups: ['or-admins'] };
    expect(await refusal(auth, await token(claims, current, { expiresIn: Math.floor(Date.now() / 1000) - 3_600 }))).toMatchObject({ kind: 'auth_failed', code: 'invalid_admin_token', message: 'The admin token has expired.' });
    expect(await refusal(auth, await token(claims, current, { audience: 'another-app' }))).toMatchObject({ code: 'invalid_admin_token', message: 'The admin token\'s "aud" claim is not accepted here.' });
    expect(await refusal(auth, await token(claims, current, { issuer: 'https://evil.example.com' }))).toMatchObject({ code: 'invalid_admin_token', message: 'The admin token\'s "iss" claim is not accepted here.' });
    // Signed by a key the provider never published, under a kid it does not have, or under its kid.
    const forged = await signingKey('k1');
    expect(await refusal(auth, await token(claims, forged))).toMatchObject({ code: 'invalid_admin_token', message: 'The admin token is not valid.' });
    expect(await refusal(auth, await token(claims, await signingKey('unknown')))).toMatchObject({ code: 'invalid_admin_token' });
    // A symmetric algorithm is never accepted (no secret is configured to check it with).
    const hs = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', kid: 'k1' }).setIssuer(idp.issuer).setAudience('open-router-admin').setSubject('x').setExpirationTime('5m').sign(new TextEncoder().encode('a-shared-secret-of-enough-length-0000'));
    expect(await refusal(auth, hs)).toMatchObject({ code: 'invalid_admin_token', message: 'The admin token is signed with an algorithm not allowed here.' });
    expect(await refusal(auth, 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.')).toBeInstanceOf(GatewayError);
    // Valid, but granting nothing.
    expect(await refusal(auth, await token({ groups: ['staff'] }))).toMatchObject({ kind: 'permission_denied', code: 'no_admin_grant' });
  });

  it('takes a key the provider rotated in: a token naming an unknown kid fetches the key set again', async () => {
    const auth = new OidcAdminAuth(config, silent, { cooldownMs: 0 });
    expect(await auth.authenticate(await token({ groups: ['or-admins'] }))).toMatchObject({ role: 'admin' });
    const before = idp.fetches.jwks;
    const next = await signingKey('k2', 'ES256');
    idp.keys = [current.jwk, next.jwk];
    expect(await auth.authenticate(await token({ groups: ['or-admins'] }, next))).toMatchObject({ role: 'admin' });
    expect(idp.fetches.jwks).toBe(before + 1);
    current = next;
    idp.keys = [next.jwk];
  });

  it('answers 503 while the provider cannot be read, and recovers without a restart', async () => {
    const down = new OidcAdminAuth({ ...config, issuer: 'http://127.0.0.1:9/realms/none' }, silent);
    expect(await refusal(down, await token({ groups: ['or-admins'] }))).toMatchObject({ kind: 'unavailable', code: 'identity_provider_unavailable' });

    // A failed discovery is remembered for a moment: requests meanwhile do not each wait on the provider again.
    idp.announcedIssuer = 'https://elsewhere.example.com';
    const remembering = new OidcAdminAuth(config, silent);
    const before = idp.fetches.discovery;
    expect(await refusal(remembering, await token({ groups: ['or-admins'] }))).toMatchObject({ code: 'identity_provider_unavailable' });
    expect(await refusal(remembering, await token({ groups: ['or-admins'] }))).toMatchObject({ code: 'identity_provider_unavailable' });
    expect(idp.fetches.discovery).toBe(before + 1);
    idp.announcedIssuer = undefined;

    idp.jwksStatus = 500;
    const auth = new OidcAdminAuth(config, silent, { cooldownMs: 0 });
    expect(await refusal(auth, await token({ groups: ['or-admins'] }))).toMatchObject({ kind: 'unavailable', code: 'identity_provider_unavailable' });
    idp.jwksStatus = 200;
    expect(await auth.authenticate(await token({ groups: ['or-admins'] }))).toMatchObject({ role: 'admin' });
  });

  it('refuses a provider whose discovery document names another issuer', async () => {
    idp.announcedIssuer = 'https://elsewhere.example.com';
    try {
      const auth = new OidcAdminAuth(config, silent);
      expect(await refusal(auth, await token({ groups: ['or-admins'] }))).toMatchObject({ code: 'identity_provider_unavailable' });
    } finally {
      idp.announcedIssuer = undefined;
    }
  });

  it('configuration: https only (http to loopback for a local provider), grants like admin keys', () => {
    const problems = (value: unknown): string[] => {
      const result = adminOidcSchema.safeParse(value);
      return result.success ? [] : result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    };
    const grants = [{ value: 'g', role: 'admin' }];
    expect(problems({ issuer: 'http://idp.example.com', audience: 'a', grants })).toEqual(['issuer: must be an https:// URL (http:// only to 127.0.0.1 or localhost)']);
    expect(problems({ issuer: 'https://idp.example.com', audience: 'a', jwksUrl: 'http://idp.example.com/keys', grants })).toEqual(['jwksUrl: must be an https:// URL (http:// only to 127.0.0.1 or localhost)']);
    expect(problems({ issuer: 'https://idp.example.com', audience: 'a', grants: [] })).toEqual(['grants: Too small: expected array to have >=1 items']);
    expect(problems({ issuer: 'https://idp.example.com', audience: 'a', grants: [{ value: 'g', role: 'project', org: 'acme' }] })).toEqual(['grants.0: a project grant names its org and project']);
    expect(problems({ issuer: 'https://idp.example.com', audience: 'a', algorithms: ['HS256'], grants })).toHaveLength(1);
    expect(problems({ issuer: 'https://idp.example.com', audience: ['a', 'b'], grants })).toEqual([]);
  });
});
