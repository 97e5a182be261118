import { createPublicKey, type KeyObject, verify } from 'node:crypto';
import type { OutgoingHttpHeaders } from 'node:http';
import type { HttpExchange } from '../http/http-exchange';
import type { SimulatorRuntime, WireHandler, WireProtocol } from './wire-protocol';

/** A service account the simulated token endpoint knows: its email and the public half of its key. */
export interface SimulatedServiceAccount {
  clientEmail: string;
  /** PEM (`-----BEGIN PUBLIC KEY-----`). */
  publicKey: string;
}

/** A user's OAuth client and refresh token, as `gcloud auth application-default login` writes them. */
export interface SimulatedAuthorizedUser {
  clientId: string;
  clientSecret: string;
  refreshToken: string;
}

export const TOKEN_PATH = '/token';
/** IAM Credentials' `generateAccessToken`: `/v1/projects/-/serviceAccounts/{email}:generateAccessToken`. */
const GENERATE_ACCESS_TOKEN = /^\/v1\/projects\/-\/serviceAccounts\/([^/:]+):generateAccessToken$/;
export const METADATA_TOKEN_PATH = '/computeMetadata/v1/instance/service-accounts/default/token';
const CLOUD_PLATFORM_SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const REFRESH_TOKEN_GRANT = 'refresh_token';
/** Google refuses assertions that live longer than an hour, and tolerates some clock skew. */
const MAX_ASSERTION_LIFETIME_S = 3600;
const CLOCK_SKEW_S = 300;

export type TokenCheck = 'valid' | 'expired' | 'unknown';

/**
 * What the simulated Google authorization server knows: the trusted service accounts and the
 * access tokens it issued, each valid until its `expires_in` runs out or `expireAll()`.
 */
export class GoogleTokenAuthority {
  private readonly accounts = new Map<string, KeyObject>();
  private readonly users = new Map<string, SimulatedAuthorizedUser>();
  private readonly impersonable = new Set<string>();
  private readonly issued = new Map<string, number>();

  constructor(
    private readonly startupAccounts: readonly SimulatedServiceAccount[] = [],
    private readonly startupUsers: readonly SimulatedAuthorizedUser[] = [],
    private readonly startupImpersonable: readonly string[] = [],
  ) {
    this.reset();
  }

  trust(account: SimulatedServiceAccount): void {
    this.accounts.set(account.clientEmail, createPublicKey(account.publicKey));
  }

  /** The token endpoint takes this user's refresh token (with its OAuth client), until `reset()`. */
  trustUser(user: SimulatedAuthorizedUser): void {
    this.users.set(user.refreshToken, user);
  }

  userOf(refreshToken: string): SimulatedAuthorizedUser | undefined {
    return this.users.get(refreshToken);
  }

  /** Any valid token may get an access token for this service account through `generateAccessToken`. */
  allowImpersonation(clientEmail: string): void {
    this.impersonable.add(clientEmail);
  }

  mayImpersonate(clientEmail: string): boolean {
    return this.impersonable.has(clientEmail);
  }

  publicKeyOf(clientEmail: string): KeyObject | undefined {
    return this.accounts.get(clientEmail);
  }

  issue(runtime: SimulatorRuntime, expiresInSeconds: number): string {
    const token = `ya29.sim-${runtime.ids.alphanumeric(40)}`;
    this.issued.set(token, Date.now() + expiresInSeconds * 1000);
    return token;
  }

  check(token: string): TokenCheck {
    const expiresAt = this.issued.get(token);
    if (expiresAt === undefined) return 'unknown';
    return Date.now() < expiresAt ? 'valid' : 'expired';
  }

  /** Every token issued so far lapses, as if its hour were over. */
  expireAll(): void {
    for (const token of this.issued.keys()) this.issued.set(token, 0);
  }

  /**
   * Back to the accounts the simulator started with. Tokens already issued stay as they are, as a
   * real authorization server's would: a client's cached token outlives a test's reset.
   */
  reset(): void {
    this.accounts.clear();
    this.users.clear();
    this.impersonable.clear();
    for (const account of this.startupAccounts) this.trust(account);
    for (const user of this.startupUsers) this.trustUser(user);
    for (const email of this.startupImpersonable) this.allowImpersonation(email);
  }
}

const JSON_HEADERS: OutgoingHttpHeaders = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-cache, no-store, max-age=0, must-revalidate' };

function refuse(exchange: HttpExchange, status: number, error: string, description: string): void {
  exchange.sendJson(status, { error, error_description: description }, JSON_HEADERS);
}

function grant(exchange: HttpExchange, runtime: SimulatorRuntime, authority: GoogleTokenAuthority): void {
  const expiresIn = runtime.behaviour().accessTokenExpiresInSeconds;
  exchange.sendJson(200, { access_token: authority.issue(runtime, expiresIn), expires_in: expiresIn, token_type: 'Bearer' }, JSON_HEADERS);
}

function decodeSegment(segment: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** What is wrong with an assertion, in the words Google's token endpoint uses; undefined when it is good. */
function assertionProblem(assertion: string, audience: string, authority: GoogleTokenAuthority): { error: string; description: string } | undefined {
  const parts = assertion.split('.');
  const [head, body, signature] = parts;
  const header = head === undefined ? undefined : decodeSegment(head);
  const claims = body === undefined ? undefined : decodeSegment(body);
  if (parts.length !== 3 || header === undefined || claims === undefined || signature === undefined) return { error: 'invalid_grant', description: 'Invalid JWT: malformed assertion.' };
  if (header['alg'] !== 'RS256') return { error: 'invalid_grant', description: 'Invalid JWT: the signing algorithm must be RS256.' };
  const key = typeof claims['iss'] === 'string' ? authority.publicKeyOf(claims['iss']) : undefined;
  if (key === undefined) return { error: 'invalid_grant', description: 'Invalid grant: account not found' };
  if (!verify('RSA-SHA256', Buffer.from(`${head}.${body}`), key, Buffer.from(signature, 'base64url'))) return { error: 'invalid_grant', description: 'Invalid JWT Signature.' };
  if (claims['aud'] !== audience) return { error: 'invalid_grant', description: 'Invalid JWT: Failed audience check. The right audience is ' + audience };
  const now = Math.floor(Date.now() / 1000);
  const iat = claims['iat'];
  const exp = claims['exp'];
  if (typeof iat !== 'number' || typeof exp !== 'number' || iat > now + CLOCK_SKEW_S || exp <= now || exp - iat > MAX_ASSERTION_LIFETIME_S) {
    return { error: 'invalid_grant', description: 'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.' };
  }
  const scopes = typeof claims['scope'] === 'string' ? claims['scope'].split(' ') : [];
  if (!scopes.includes(CLOUD_PLATFORM_SCOPE)) return { error: 'invalid_scope', description: 'Invalid OAuth scope or ID token audience provided.' };
  return undefined;
}

/** The refresh-token grant of a user's credentials: Google's answers for an unknown client and a revoked token. */
function refreshTokenGrant(exchange: HttpExchange, runtime: SimulatorRuntime, form: URLSearchParams): void {
  const user = runtime.googleTokens.userOf(form.get('refresh_token') ?? '');
  if (user === undefined) return refuse(exchange, 400, 'invalid_grant', 'Token has been expired or revoked.');
  if (form.get('client_id') !== user.clientId || form.get('client_secret') !== user.clientSecret) return refuse(exchange, 401, 'invalid_client', 'The OAuth client was not found.');
  grant(exchange, runtime, runtime.googleTokens);
}

/** `POST /token`: Google's OAuth token endpoint, JWT-bearer and refresh-token grants. */
const handleToken: WireHandler = async (exchange, runtime) => {
    const authority = runtime.googleTokens;
    const read = await exchange.readBody();
    if (!read.ok) return;
    const form = new URLSearchParams(read.body.toString('utf8'));
    const assertion = form.get('assertion') ?? '';
    const grantType = form.get('grant_type');
    if (grantType === REFRESH_TOKEN_GRANT) {
      // The refresh token and client secret are credentials: the log only says whether they came.
      const present = (name: string): string => ((form.get(name) ?? '') === '' ? 'absent' : 'present');
      exchange.observe({ body: { grant_type: grantType, client_id: form.get('client_id'), client_secret: present('client_secret'), refresh_token: present('refresh_token') } });
      return refreshTokenGrant(exchange, runtime, form);
    }
    // The assertion is a credential: the log only says whether one came.
    exchange.observe({ body: { grant_type: grantType, assertion: assertion === '' ? 'absent' : 'present' } });
    if (grantType !== JWT_BEARER_GRANT) return refuse(exchange, 400, 'unsupported_grant_type', `Invalid grant_type: ${grantType ?? ''}`);
    const problem = assertionProblem(assertion, `http://${exchange.req.headers.host ?? ''}${TOKEN_PATH}`, authority);
    if (problem !== undefined) return refuse(exchange, 400, problem.error, problem.description);
    grant(exchange, runtime, authority);
};

/** `GET` the metadata server's token of the default service account (GCE, GKE Workload Identity). */
const handleMetadataToken: WireHandler = async (exchange, runtime) => {
    exchange.req.resume();
    if (exchange.req.headers['metadata-flavor'] !== 'Google') {
      exchange.sendJson(403, { error: 'Missing Metadata-Flavor:Google header.' }, JSON_HEADERS);
      return;
    }
    grant(exchange, runtime, runtime.googleTokens);
};

function sendIamError(exchange: HttpExchange, code: number, status: string, message: string): void {
  exchange.sendJson(code, { error: { code, message, status } }, JSON_HEADERS);
}

/**
 * `POST /v1/projects/-/serviceAccounts/{email}:generateAccessToken` (IAM Credentials): a valid
 * token issued here buys a token of an impersonable service account, for the cloud-platform scope.
 */
const handleGenerateAccessToken: WireHandler = async (exchange, runtime) => {
  const authority = runtime.googleTokens;
  const read = await exchange.readBody();
  if (!read.ok) return;
  const target = decodeURIComponent(GENERATE_ACCESS_TOKEN.exec(exchange.pathname)?.[1] ?? '');
  const bearer = /^Bearer (\S+)$/.exec(exchange.req.headers.authorization ?? '')?.[1];
  if (bearer === undefined || authority.check(bearer) !== 'valid') {
    return sendIamError(exchange, 401, 'UNAUTHENTICATED', 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.');
  }
  let body: unknown;
  try {
    body = JSON.parse(read.body.toString('utf8'));
  } catch {
    body = undefined;
  }
  const scope = typeof body === 'object' && body !== null && Array.isArray((body as { scope?: unknown }).scope) ? ((body as { scope: unknown[] }).scope) : [];
  exchange.observe({ body: body ?? null });
  if (!scope.includes(CLOUD_PLATFORM_SCOPE)) return sendIamError(exchange, 400, 'INVALID_ARGUMENT', 'Request contains an invalid argument: scope.');
  if (!authority.mayImpersonate(target)) {
    return sendIamError(exchange, 403, 'PERMISSION_DENIED', `Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).`);
  }
  const expiresIn = runtime.behaviour().accessTokenExpiresInSeconds;
  const expireTime = new Date(Date.now() + expiresIn * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  exchange.sendJson(200, { accessToken: authority.issue(runtime, expiresIn), expireTime }, JSON_HEADERS);
};

/** Google's OAuth token endpoint, the metadata server's token route and IAM Credentials' `generateAccessToken`, issuing tokens Vertex AI accepts. */
export const googleOAuthWire: WireProtocol = {
  name: 'google-oauth',
  route(method, pathname) {
    if (method === 'POST' && pathname === TOKEN_PATH) return handleToken;
    if (method === 'POST' && GENERATE_ACCESS_TOKEN.test(pathname)) return handleGenerateAccessToken;
    if (method === 'GET' && pathname === METADATA_TOKEN_PATH) return handleMetadataToken;
    return undefined;
  },
};
