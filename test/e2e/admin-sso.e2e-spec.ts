import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import { exportJWK, generateKeyPair, SignJWT, type KeyLike } from 'jose';
import { startTestGateway, type TestGateway } from '../support/test-gateway';
import { TEST_ADMIN_KEY } from '../support/test-config';

interface Json {
  [key: string]: unknown;
}

/**
 * The admin API through single sign-on (`access.admin.oidc`) on the embedded gateway: a local
 * identity provider publishes its discovery document and keys over HTTP, tokens signed with its
 * key are admitted with the role their groups grant, the audit log names the person, and tokens
 * it must not take are refused in OpenAI's error format. The admin key keeps working beside it.
 */
describe('admin API with single sign-on', () => {
  let gw: TestGateway;
  let idp: Server;
  let issuer: string;
  let privateKey: KeyLike;

  const token = (groups: string[], over: { expiresIn?: number | string; audience?: string } = {}): Promise<string> =>
    new SignJWT({ email: 'alice@example.com', groups })
      .setProtectedHeader({ alg: 'ES256', kid: 'idp-1' })
      .setIssuer(issuer)
      .setAudience(over.audience ?? 'open-router-admin')
      .setSubject('f3b1c0de')
      .setIssuedAt()
      .setExpirationTime(over.expiresIn ?? '5m')
      .sign(privateKey);

  async function admin(method: string, path: string, bearer: string, body?: unknown): Promise<{ status: number; json: Json }> {
    const response = await fetch(`${gw.url}/admin/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${bearer}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: response.status, json: (await response.json()) as Json };
  }

  beforeAll(async () => {
    const pair = await generateKeyPair('ES256');
    privateKey = pair.privateKey;
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'idp-1', alg: 'ES256', use: 'sig' };
    idp = createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.url === '/.well-known/openid-configuration') res.end(JSON.stringify({ issuer, jwks_uri: `${issuer}/keys` }));
      else if (req.url === '/keys') res.end(JSON.stringify({ keys: [jwk] }));
      else {
        res.statusCode = 404;
        res.end('{}');
      }
    });
    await new Promise<void>((done) => idp.listen(0, '127.0.0.1', done));
    issuer = `http://127.0.0.1:${(idp.address() as AddressInfo).port}`;
    gw = await startTestGateway({
      configure: (doc) => {
        const access = (doc['access'] ?? {}) as Record<string, unknown>;
        doc['access'] = {
          ...access,
          admin: {
            devKey: TEST_ADMIN_KEY,
            oidc: {
              issuer,
              audience: 'open-router-admin',
              actorClaim: 'email',
              grants: [
                { value: 'platform-admins', role: 'admin' },
                { value: 'finance', role: 'finance' },
              ],
            },
          },
        };
      },
    });
  }, 120_000);
  afterAll(async () => {
    await gw?.close();
    await new Promise<void>((done) => idp?.close(() => done()));
  });

  it('admits a token of the identity provider with the role its groups grant, and audits its holder by name', async () => {
    const bearer = await token(['staff', 'platform-admins']);
    expect((await admin('GET', '/whoami', bearer)).json).toEqual({ id: 'oidc:alice@example.com', role: 'admin', org: null, project: null, client_ip: '127.0.0.1' });

    const issued = await admin('POST', '/keys', bearer, { name: 'from-sso', org: 'default' });
    expect(issued.status).toBe(201);
    // The key issued through single sign-on works like any other, with the official SDK.
    const client = new OpenAI({ apiKey: String(issued.json['key']), baseURL: `${gw.url}/v1`, maxRetries: 0 });
    const completion = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
    expect(completion.choices[0]?.message.content).toBeTruthy();

    const audit = await admin('GET', '/audit?limit=10', TEST_ADMIN_KEY);
    const entries = audit.json['data'] as Array<{ actor: string; action: string; target: string }>;
    expect(entries.find((e) => e.target === issued.json['id'])).toMatchObject({ actor: 'oidc:alice@example.com' });
  });

  it('keeps a lesser role to its routes', async () => {
    const bearer = await token(['finance']);
    expect((await admin('GET', '/whoami', bearer)).json).toMatchObject({ role: 'finance' });
    const refused = await admin('POST', '/keys', bearer, { name: 'x', org: 'default' });
    expect(refused.status).toBe(403);
    expect(refused.json).toEqual({ error: expect.objectContaining({ type: 'permission_error', code: 'insufficient_role' }) });
  });

  it("refuses what it must not take in OpenAI's error format: expired, for another audience, granting nothing, malformed", async () => {
    const expired = await admin('GET', '/whoami', await token(['platform-admins'], { expiresIn: Math.floor(Date.now() / 1000) - 600 }));
    expect(expired.status).toBe(401);
    expect(expired.json).toEqual({ error: expect.objectContaining({ code: 'invalid_admin_token', message: 'The admin token has expired.' }) });

    const elsewhere = await admin('GET', '/whoami', await token(['platform-admins'], { audience: 'another-app' }));
    expect(elsewhere.status).toBe(401);
    expect(elsewhere.json).toEqual({ error: expect.objectContaining({ code: 'invalid_admin_token' }) });

    const nothing = await admin('GET', '/whoami', await token(['staff']));
    expect(nothing.status).toBe(403);
    expect(nothing.json).toEqual({ error: expect.objectContaining({ code: 'no_admin_grant' }) });

    const malformed = await admin('GET', '/whoami', 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl');
    expect(malformed.status).toBe(401);
    expect(malformed.json).toEqual({ error: expect.objectContaining({ code: 'invalid_admin_token' }) });
  });

  it('keeps admitting admin keys beside the identity provider', async () => {
    expect((await admin('GET', '/whoami', TEST_ADMIN_KEY)).json).toMatchObject({ id: 'dev-admin', role: 'admin' });
    expect((await admin('GET', '/whoami', 'sk-or-admin-not-a-key')).json).toEqual({ error: expect.objectContaining({ code: 'invalid_admin_key' }) });
  });
});
