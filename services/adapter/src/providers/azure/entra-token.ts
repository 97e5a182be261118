import { errors as undiciErrors } from 'undici';
import { z } from 'zod';
import { GatewayError } from '@openrouter/errors';
import { proxyRefusal, proxyRefusalText } from '../http-upstream';
import type { GrantedToken, TokenHttp, TokenHttpRequest } from '../access-token';
import type { Secret } from '../credential-file';

/** How a federated token is presented in a client-credentials grant (RFC 7521). */
export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** The Instance Metadata Service's identity API version, and App Service's (also Functions and Container Apps). */
export const IMDS_API_VERSION = '2018-02-01';
export const APP_SERVICE_API_VERSION = '2019-08-01';
const TOKEN_TIMEOUT_MS = 30_000;
/**
 * A managed identity's endpoint is on the host itself (IMDS at a link-local address, App Service's
 * local endpoint): one that has not answered in this time will not, and every call waiting for its
 * token waits as long (off Azure, IMDS's address drops the connection attempt).
 */
export const MANAGED_IDENTITY_TIMEOUT_MS = 5_000;

/** Where Entra ID's token endpoint of a tenant is: `{authorityHost}/{tenantId}/oauth2/v2.0/token`. */
export function entraTokenUrl(authorityHost: string, tenantId: string): URL {
  return new URL(`${authorityHost.replace(/\/+$/, '')}/${encodeURIComponent(tenantId)}/oauth2/v2.0/token`);
}

/** The resource a managed identity's token is asked for: the scope without its `/.default`. */
export function resourceOfScope(scope: string): string {
  return scope.replace(/\/\.default$/, '');
}

/**
 * What Entra ID's common refusals mean, by AADSTS code: the text a client and an operator read.
 * Entra's own description goes to the log only (it names the app and the tenant).
 */
const AADSTS_MEANING: ReadonlyMap<number, string> = new Map([
  [7000215, 'invalid client secret (give the secret\'s value, not its ID)'],
  [7000222, 'the client secret has expired (create a new one for the app registration)'],
  [700016, 'the application (clientId) was not found in the tenant'],
  [90002, 'the tenant was not found'],
  [900023, 'the tenant ID is not valid'],
  [7000112, 'the application is disabled'],
  [70011, 'the scope is not valid'],
  [500011, 'the resource of the scope was not found in the tenant'],
  [700024, 'the federated token has expired or is not yet valid'],
  [70021, 'no federated identity credential of the app matches the federated token'],
  [700211, 'no federated identity credential of the app matches the federated token\'s issuer'],
  [700213, 'no federated identity credential of the app matches the federated token\'s subject'],
  [53003, 'access was blocked by a Conditional Access policy'],
]);

/** An OAuth error code (`invalid_client`); anything else in the field is not trusted into a message. */
const OAUTH_CODE = /^[a-z_]{1,64}$/;
/** A JWT-looking string (a federated token quoted back), dropped from what is logged. */
const JWT_TEXT = /eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.?[A-Za-z0-9_-]*/g;

const entraRefusal = z.looseObject({
  error: z.string().optional(),
  error_description: z.string().optional(),
  error_codes: z.array(z.number()).optional(),
});
/** Entra ID answers `expires_in` as a number; IMDS and App Service answer strings, App Service `expires_on` only. */
const tokenAnswer = z.looseObject({
  access_token: z.string().min(1),
  expires_in: z.union([z.number(), z.string()]).optional(),
  expires_on: z.union([z.number(), z.string()]).optional(),
});
const managedIdentityRefusal = z.looseObject({
  error: z.union([z.string(), z.looseObject({ code: z.string().optional() })]).optional(),
  error_description: z.string().optional(),
  message: z.string().optional(),
});

/**
 * A refusal of the gateway's own credentials: the client is not at fault (502). It is retryable,
 * as Azure's own 401 for a wrong `api-key` is: these credentials are this provider's only, so
 * another deployment (another Azure resource, another provider) may serve, and each refusal
 * counts against this deployment's circuit breaker, which opens and stops the token fetches.
 */
function refused(provider: string, what: string, status: number, cause: unknown): GatewayError {
  return new GatewayError('auth_failed', `The provider "${provider}" could not get an access token: ${what}.`, { provider, code: 'upstream_auth_failed', retryable: true, upstreamStatus: status, cause });
}

/** The token service failed or could not be reached: another deployment may serve (503). */
function unavailable(provider: string, what: string, status: number, cause?: unknown): GatewayError {
  return new GatewayError('unavailable', `The provider "${provider}" could not get an access token: ${what}.`, { provider, code: 'upstream_auth_unavailable', retryable: true, upstreamStatus: status, cause });
}

/** Calls a token service; one that cannot be reached, or does not answer in time, is `unavailable`. */
async function call(http: TokenHttp, request: TokenHttpRequest, provider: string, service: string): Promise<{ status: number; body: string; json: unknown }> {
  let answer: { status: number; body: string };
  try {
    answer = await http.request(request);
  } catch (error) {
    const proxy = proxyRefusal(error);
    const why =
      proxy !== undefined ? `: ${proxyRefusalText(proxy)}` : error instanceof undiciErrors.HeadersTimeoutError || error instanceof undiciErrors.BodyTimeoutError ? ' in time' : '';
    throw unavailable(provider, `${service} could not be reached${why}`, 0, error);
  }
  let json: unknown;
  try {
    json = JSON.parse(answer.body) as unknown;
  } catch {
    json = undefined;
  }
  return { ...answer, json };
}

const numeric = (value: string | number | undefined): number | undefined => {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  return value !== undefined && /^\d+(\.\d+)?$/.test(value.trim()) ? Number(value) : undefined;
};

/** A token answer's lifetime in seconds: `expires_in`, else `expires_on` (epoch seconds, or a date as older App Service versions wrote it). */
export function lifetimeOf(answer: { expires_in?: string | number | undefined; expires_on?: string | number | undefined }, nowMs: number): number | undefined {
  const expiresIn = numeric(answer.expires_in);
  if (expiresIn !== undefined) return expiresIn;
  const expiresOn = numeric(answer.expires_on);
  if (expiresOn !== undefined) return Math.floor(expiresOn - nowMs / 1000);
  if (typeof answer.expires_on === 'string') {
    const at = Date.parse(answer.expires_on);
    if (!Number.isNaN(at)) return Math.floor((at - nowMs) / 1000);
  }
  return undefined;
}

function grantedToken(json: unknown, status: number, provider: string, service: string, nowMs: number): GrantedToken {
  const parsed = tokenAnswer.safeParse(json);
  const lifetime = parsed.success ? lifetimeOf(parsed.data, nowMs) : undefined;
  if (!parsed.success || lifetime === undefined) throw unavailable(provider, `${service} answered without an access token and its lifetime`, status);
  if (lifetime <= 0) throw unavailable(provider, `${service} answered with a token that has already expired`, status);
  return { accessToken: parsed.data.access_token, expiresInSeconds: lifetime };
}

/**
 * Entra ID's answer to a client-credentials grant. A refusal (400, 401: a bad or expired secret,
 * an unknown app or tenant, a federated token no credential matches) is `refused`, named by its
 * AADSTS code; a 429 or 5xx is `unavailable`. No message quotes the secret or a token.
 */
async function exchangeWithEntra(http: TokenHttp, request: TokenHttpRequest, provider: string, now: () => number): Promise<GrantedToken> {
  const service = "Entra ID's token endpoint";
  const answer = await call(http, request, provider, service);
  if (answer.status === 200) return grantedToken(answer.json, answer.status, provider, service, now());
  const refusal = entraRefusal.safeParse(answer.json);
  const oauthCode = refusal.success && refusal.data.error !== undefined && OAUTH_CODE.test(refusal.data.error) ? refusal.data.error : undefined;
  const description = refusal.success ? refusal.data.error_description?.replace(JWT_TEXT, '[redacted]').slice(0, 300) : undefined;
  const aadsts = (refusal.success ? refusal.data.error_codes?.[0] : undefined) ?? numeric(/AADSTS(\d{1,9})/.exec(description ?? '')?.[1]);
  // Entra's own words go to the log only: no response carries a cause.
  const cause = new Error(`HTTP ${answer.status}${oauthCode ? ` ${oauthCode}` : ''}${description ? `: ${description}` : ''}`);
  const status = `HTTP ${answer.status}${oauthCode ? ` ${oauthCode}` : ''}`;
  if (answer.status === 429 || answer.status >= 500) throw unavailable(provider, `${service} answered ${status}`, answer.status, cause);
  const meaning = aadsts === undefined ? undefined : `AADSTS${aadsts}${AADSTS_MEANING.has(aadsts) ? ` ${AADSTS_MEANING.get(aadsts) ?? ''}` : ''}`;
  throw refused(provider, `Entra ID refused the gateway's credentials (${status})${meaning ? `: ${meaning}` : ''}`, answer.status, cause);
}

const form = (fields: Record<string, string>): string => new URLSearchParams(fields).toString();
const FORM_HEADERS = { 'content-type': 'application/x-www-form-urlencoded' };

export interface EntraApp {
  tokenUrl: URL;
  clientId: string;
  scope: string;
}

/**
 * The client-credentials grant of an app registration's client secret. A secret read from a file
 * that Entra ID refuses is read again at once (rate limited), and the grant asked once more when
 * the file holds another secret now: the secret was rotated before the next check found it.
 */
export function clientSecretGrant(app: EntraApp & { clientSecret: Secret }, http: TokenHttp, provider: string, now: () => number = Date.now): () => Promise<GrantedToken> {
  const exchange = (clientSecret: string): Promise<GrantedToken> => {
    const body = form({ grant_type: 'client_credentials', client_id: app.clientId, client_secret: clientSecret, scope: app.scope });
    return exchangeWithEntra(http, { method: 'POST', url: app.tokenUrl, headers: FORM_HEADERS, body, timeoutMs: TOKEN_TIMEOUT_MS }, provider, now);
  };
  return async () => {
    const used = app.clientSecret.value();
    try {
      return await exchange(used);
    } catch (error) {
      if (!(error instanceof GatewayError) || error.kind !== 'auth_failed') throw error;
      await app.clientSecret.reread();
      const fresh = app.clientSecret.value();
      if (fresh === used) throw error;
      return exchange(fresh);
    }
  };
}

/**
 * AKS workload identity: the client-credentials grant with the pod's federated service-account
 * token as the client assertion. The file is read on every fetch: the kubelet rotates the token
 * (hourly by default), and one read at start-up would expire. A file that cannot be read is `refused`.
 */
export function workloadIdentityGrant(app: EntraApp & { tokenFile: string; readFile: (path: string) => string }, http: TokenHttp, provider: string, now: () => number = Date.now): () => Promise<GrantedToken> {
  return () => {
    let assertion: string;
    try {
      assertion = app.readFile(app.tokenFile).trim();
    } catch (error) {
      return Promise.reject(refused(provider, `the federated token file ${app.tokenFile} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'unreadable'})`, 0, error));
    }
    if (assertion === '') return Promise.reject(refused(provider, `the federated token file ${app.tokenFile} is empty`, 0, undefined));
    const body = form({ grant_type: 'client_credentials', client_id: app.clientId, client_assertion_type: CLIENT_ASSERTION_TYPE, client_assertion: assertion, scope: app.scope });
    return exchangeWithEntra(http, { method: 'POST', url: app.tokenUrl, headers: FORM_HEADERS, body, timeoutMs: TOKEN_TIMEOUT_MS }, provider, now);
  };
}

/** Where a managed identity's token comes from: IMDS (VMs, scale sets, AKS nodes) or App Service's endpoint (also Functions and Container Apps). */
export type ManagedIdentityEndpoint =
  | { kind: 'imds'; url: string; resource: string; clientId?: string | undefined }
  | { kind: 'app-service'; url: string; header: string; resource: string; clientId?: string | undefined };

/** The request a managed identity's token is asked with. */
export function managedIdentityRequest(endpoint: ManagedIdentityEndpoint): TokenHttpRequest {
  const url = new URL(endpoint.url);
  url.searchParams.set('api-version', endpoint.kind === 'imds' ? IMDS_API_VERSION : APP_SERVICE_API_VERSION);
  url.searchParams.set('resource', endpoint.resource);
  if (endpoint.clientId !== undefined) url.searchParams.set('client_id', endpoint.clientId);
  const headers: Record<string, string> = endpoint.kind === 'imds' ? { metadata: 'true' } : { 'x-identity-header': endpoint.header };
  return { method: 'GET', url, headers, timeoutMs: MANAGED_IDENTITY_TIMEOUT_MS };
}

/**
 * A managed identity's token. A 4xx other than 404, 410 and 429 (which IMDS answers while it is
 * updating or throttling) means no identity matches: `refused`; the rest is `unavailable`.
 */
export function managedIdentityGrant(endpoint: ManagedIdentityEndpoint, http: TokenHttp, provider: string, now: () => number = Date.now): () => Promise<GrantedToken> {
  const service = endpoint.kind === 'imds' ? 'the managed identity endpoint (IMDS)' : 'the managed identity endpoint (IDENTITY_ENDPOINT)';
  return async () => {
    const answer = await call(http, managedIdentityRequest(endpoint), provider, service);
    if (answer.status === 200) return grantedToken(answer.json, answer.status, provider, service, now());
    const refusal = managedIdentityRefusal.safeParse(answer.json);
    const error = refusal.success ? refusal.data.error : undefined;
    const code = typeof error === 'string' ? error : error?.code;
    const oauthCode = code !== undefined && /^[A-Za-z_]{1,64}$/.test(code) ? code : undefined;
    const description = refusal.success ? (refusal.data.error_description ?? refusal.data.message)?.replace(JWT_TEXT, '[redacted]').slice(0, 300) : undefined;
    // A user-assigned identity's client ID goes to the log only (in the cause), as Entra's own words do.
    const asked = endpoint.clientId === undefined ? '' : ` (asked for the user-assigned identity with client ID ${endpoint.clientId})`;
    const cause = new Error(`HTTP ${answer.status}${oauthCode ? ` ${oauthCode}` : ''}${description ? `: ${description}` : ''}${asked}`);
    const status = `HTTP ${answer.status}${oauthCode ? ` ${oauthCode}` : ''}`;
    if (answer.status === 404 || answer.status === 410 || answer.status === 429 || answer.status >= 500) throw unavailable(provider, `${service} answered ${status}`, answer.status, cause);
    const which = endpoint.clientId === undefined ? 'a system-assigned managed identity' : "the user-assigned managed identity of the provider's entra.clientId";
    throw refused(provider, `${service} refused the request (${status}): is ${which} assigned to the VM or app the gateway runs on?`, answer.status, cause);
  };
}
