import { createPrivateKey, sign, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import type { GoogleServiceAccountKey } from '@openrouter/config';
import { GatewayError } from '@openrouter/errors';
import { proxyRefusal, proxyRefusalText } from '../http-upstream';
import type { CachedTokenOptions, GrantedToken, TokenHttp, TokenHttpRequest } from '../access-token';

/** The scope every Vertex AI call needs. */
export const CLOUD_PLATFORM_SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
/** The grant a signed service-account assertion is exchanged under (RFC 7523). */
export const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
/** Lifetime asked for in an assertion; Google issues tokens for at most an hour. */
const ASSERTION_LIFETIME_S = 3600;
const TOKEN_TIMEOUT_MS = 30_000;

const tokenAnswer = z.looseObject({ access_token: z.string().min(1), expires_in: z.number().positive() });
const tokenRefusal = z.looseObject({ error: z.string().optional(), error_description: z.string().optional() });
/** An OAuth error code (`invalid_grant`); anything else in the field is not trusted into a message. */
const ERROR_CODE = /^[a-z_]{1,64}$/;
/** A JWT-looking string, dropped from whatever a token endpoint's text quotes back. */
const JWT_TEXT = /eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.?[A-Za-z0-9_-]*/g;

/**
 * Every failure to get a token: the gateway's credentials, so another deployment may serve. It
 * carries the token endpoint's status (0 when none answered) so that it reaches a client as the
 * provider's failure (502 `upstream_auth_failed`), never as a 401 about the client's own key.
 */
export function tokenError(provider: string, what: string, upstreamStatus: number, cause?: unknown): GatewayError {
  return new GatewayError('auth_failed', `The provider "${provider}" could not get an access token: ${what}.`, { provider, code: 'upstream_auth_failed', retryable: true, upstreamStatus, cause });
}

/**
 * A refusal retrying cannot mend (a revoked refresh token): its error is not retryable and says
 * what to do. Returns the text of the message, or undefined for a refusal that may pass.
 */
export type PermanentRefusal = (status: number, code: string | undefined) => string | undefined;

/**
 * Calls a token endpoint: its answer, and its body as JSON (undefined when it is not). An endpoint
 * that cannot be reached is a retryable `tokenError` naming it (and a proxy's refusal, if any).
 */
async function callEndpoint(http: TokenHttp, request: TokenHttpRequest, provider: string, endpoint: string): Promise<{ answer: { status: number; body: string }; json: unknown }> {
  let answer: { status: number; body: string };
  try {
    answer = await http.request(request);
  } catch (error) {
    const refused = proxyRefusal(error);
    throw tokenError(provider, `the ${endpoint} could not be reached${refused === undefined ? '' : `: ${proxyRefusalText(refused)}`}`, 0, error);
  }
  try {
    return { answer, json: JSON.parse(answer.body) as unknown };
  } catch {
    return { answer, json: undefined };
  }
}

/** Reads a token endpoint's answer; refusals and malformed answers become `tokenError`s without the body's secrets. */
export async function exchangeForToken(http: TokenHttp, request: TokenHttpRequest, provider: string, endpoint: string, permanent?: PermanentRefusal): Promise<GrantedToken> {
  const { answer, json } = await callEndpoint(http, request, provider, endpoint);
  if (answer.status !== 200) {
    const refusal = tokenRefusal.safeParse(json);
    const code = refusal.success && refusal.data.error !== undefined && ERROR_CODE.test(refusal.data.error) ? refusal.data.error : undefined;
    const description = refusal.success ? refusal.data.error_description?.replace(JWT_TEXT, '[redacted]').slice(0, 200) : undefined;
    // The endpoint's own words go to the log only (no response carries a cause).
    const cause = new Error(`HTTP ${answer.status}${code ? ` ${code}` : ''}${description ? `: ${description}` : ''}`);
    const what = `the ${endpoint} answered HTTP ${answer.status}${code ? ` (${code})` : ''}`;
    const advice = permanent?.(answer.status, code);
    if (advice !== undefined) {
      throw new GatewayError('auth_failed', `The provider "${provider}" could not get an access token: ${what}: ${advice}.`, { provider, code: 'upstream_auth_failed', retryable: false, upstreamStatus: answer.status, cause });
    }
    throw tokenError(provider, what, answer.status, cause);
  }
  const parsed = tokenAnswer.safeParse(json);
  if (!parsed.success) throw tokenError(provider, `the ${endpoint} answered without an access token and its lifetime`, answer.status);
  return { accessToken: parsed.data.access_token, expiresInSeconds: parsed.data.expires_in };
}

const base64url = (data: string | Buffer): string => Buffer.from(data).toString('base64url');

/** The RS256-signed assertion a service account exchanges for a token. */
export function signedAssertion(key: { clientEmail: string; tokenUri: string }, privateKey: KeyObject, issuedAtSeconds: number): string {
  const header = base64url(JSON.stringify({ alg: 'RS256', typ: 'JWT' }));
  const claims = base64url(JSON.stringify({ iss: key.clientEmail, scope: CLOUD_PLATFORM_SCOPE, aud: key.tokenUri, iat: issuedAtSeconds, exp: issuedAtSeconds + ASSERTION_LIFETIME_S }));
  const signature = sign('RSA-SHA256', Buffer.from(`${header}.${claims}`), privateKey);
  return `${header}.${claims}.${base64url(signature)}`;
}

/**
 * A service account's private key; the message never quotes it. A key whose line breaks are
 * written `\n` (as in the JSON key file, copied into an environment variable) is taken too.
 */
export function readPrivateKey(pem: string, where: string): KeyObject {
  try {
    const key = createPrivateKey(pem.includes('\n') ? pem : pem.replace(/\\n/g, '\n'));
    if (key.asymmetricKeyType !== 'rsa') throw new Error('not RSA');
    return key;
  } catch {
    throw new Error(`${where}: not an RSA private key in PEM form (-----BEGIN PRIVATE KEY-----)`);
  }
}

/** The JWT-bearer grant of a service-account key, as Google's client libraries make it. */
export function serviceAccountGrant(key: GoogleServiceAccountKey, privateKey: KeyObject, http: TokenHttp, options: CachedTokenOptions): () => Promise<GrantedToken> {
  const now = options.now ?? Date.now;
  const url = new URL(key.tokenUri);
  return () => {
    const assertion = signedAssertion(key, privateKey, Math.floor(now() / 1000));
    const body = new URLSearchParams({ grant_type: JWT_BEARER_GRANT, assertion }).toString();
    const request: TokenHttpRequest = { method: 'POST', url, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body, timeoutMs: TOKEN_TIMEOUT_MS };
    return exchangeForToken(http, request, options.provider, 'token endpoint');
  };
}

/** A user's credentials (`gcloud auth application-default login`): its OAuth client and refresh token. */
export interface GoogleAuthorizedUser {
  clientId: string;
  clientSecret: string;
  refreshToken: string;
  tokenUri: string;
  /** Names the credentials in the message of a refused refresh token: the file they came from. */
  origin: string;
}

/**
 * The refresh-token grant of a user's credentials, as Google's client libraries make it. A refresh
 * token or client the endpoint refuses (`invalid_grant`, `invalid_client`, `unauthorized_client`)
 * stays refused: that failure is not retryable.
 */
export function authorizedUserGrant(user: GoogleAuthorizedUser, http: TokenHttp, options: CachedTokenOptions): () => Promise<GrantedToken> {
  const url = new URL(user.tokenUri);
  const body = new URLSearchParams({ grant_type: 'refresh_token', client_id: user.clientId, client_secret: user.clientSecret, refresh_token: user.refreshToken }).toString();
  const permanent: PermanentRefusal = (status, code) =>
    status === 400 || status === 401 ? (code === undefined || code === 'invalid_grant' ? `the refresh token of ${user.origin} was refused (expired or revoked); sign in again (gcloud auth application-default login)` : code === 'invalid_client' || code === 'unauthorized_client' ? `the OAuth client of ${user.origin} was refused` : undefined) : undefined;
  return () => exchangeForToken(http, { method: 'POST', url, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body, timeoutMs: TOKEN_TIMEOUT_MS }, options.provider, 'token endpoint', permanent);
}

const generatedToken = z.looseObject({ accessToken: z.string().min(1), expireTime: z.iso.datetime({ offset: true }) });
const googleApiError = z.looseObject({ error: z.looseObject({ status: z.string().optional() }) });
const GOOGLE_STATUS = /^[A-Z][A-Z_]{1,63}$/;

/**
 * Impersonation: a token of `source` buys one of the target service account from IAM Credentials'
 * `generateAccessToken` (`url`, naming the target), for the cloud-platform scope. The source needs
 * `roles/iam.serviceAccountTokenCreator` on the target; a refusal (403 `PERMISSION_DENIED`) is a
 * `tokenError` naming the status, as the token endpoint's are.
 */
export function impersonatedGrant(source: () => Promise<GrantedToken>, target: { url: string; delegates: readonly string[]; lifetimeSeconds: number }, http: TokenHttp, options: CachedTokenOptions): () => Promise<GrantedToken> {
  const now = options.now ?? Date.now;
  const url = new URL(target.url);
  const body = JSON.stringify({ scope: [CLOUD_PLATFORM_SCOPE], delegates: target.delegates, lifetime: `${target.lifetimeSeconds}s` });
  const endpoint = 'IAM Credentials API (generateAccessToken)';
  return async () => {
    const sourceToken = await source();
    const request: TokenHttpRequest = { method: 'POST', url, headers: { 'content-type': 'application/json', authorization: `Bearer ${sourceToken.accessToken}` }, body, timeoutMs: TOKEN_TIMEOUT_MS };
    const { answer, json } = await callEndpoint(http, request, options.provider, endpoint);
    if (answer.status !== 200) {
      const refusal = googleApiError.safeParse(json);
      const status = refusal.success && refusal.data.error.status !== undefined && GOOGLE_STATUS.test(refusal.data.error.status) ? refusal.data.error.status : undefined;
      throw tokenError(options.provider, `the ${endpoint} answered HTTP ${answer.status}${status ? ` (${status})` : ''}`, answer.status, new Error(`HTTP ${answer.status}${status ? ` ${status}` : ''}`));
    }
    const parsed = generatedToken.safeParse(json);
    if (!parsed.success) throw tokenError(options.provider, `the ${endpoint} answered without an access token and its expiry`, answer.status);
    const expiresInSeconds = Math.floor((Date.parse(parsed.data.expireTime) - now()) / 1000);
    if (expiresInSeconds <= 0) throw tokenError(options.provider, `the ${endpoint} answered with a token that has already expired`, answer.status);
    return { accessToken: parsed.data.accessToken, expiresInSeconds };
  };
}

/** The token of the workload's own service account, from the metadata server (GCE, GKE Workload Identity). */
export function metadataServerGrant(metadataUrl: string, http: TokenHttp, options: CachedTokenOptions): () => Promise<GrantedToken> {
  const url = new URL(metadataUrl);
  return () => exchangeForToken(http, { method: 'GET', url, headers: { 'metadata-flavor': 'Google' }, timeoutMs: TOKEN_TIMEOUT_MS }, options.provider, 'metadata server');
}
