import type { OutgoingHttpHeaders } from 'node:http';
import type { HttpExchange } from '../http/http-exchange';
import type { SimulatorRuntime, WireHandler, WireProtocol } from './wire-protocol';

/** An app registration the simulated Entra ID knows: its client secret and/or the federated token its federated credential accepts. */
export interface SimulatedEntraApp {
  tenantId: string;
  clientId: string;
  clientSecret?: string;
  /** The exact client assertion (an AKS service-account token) a federated identity credential of the app matches. */
  federatedToken?: string;
}

/** The managed identities of the simulated host: IMDS's and App Service's endpoints answer for them. */
export interface SimulatedManagedIdentity {
  systemAssigned?: boolean;
  /** Client IDs of the user-assigned identities. */
  userAssigned?: string[];
  /** The value App Service puts in IDENTITY_HEADER, which `X-IDENTITY-HEADER` must carry. */
  identityHeader?: string;
}

/** `/{tenant}/oauth2/v2.0/token`, the tenant a GUID or a domain. */
const ENTRA_TOKEN = /^\/([A-Za-z0-9][A-Za-z0-9.-]*)\/oauth2\/v2\.0\/token$/;
export const IMDS_TOKEN_PATH = '/metadata/identity/oauth2/token';
/** Where App Service (and Functions, Container Apps) serves IDENTITY_ENDPOINT in the simulator. */
export const APP_SERVICE_TOKEN_PATH = '/msi/token';
const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

export type EntraTokenCheck = 'valid' | 'expired' | 'wrong_audience' | 'unknown';

/**
 * What the simulated Entra ID knows: app registrations, the host's managed identities, and the
 * tokens it issued, each for one audience (the scope's resource) until its lifetime runs out or
 * `expireAll()`.
 */
export class EntraTokenAuthority {
  private readonly apps = new Map<string, SimulatedEntraApp>();
  private identity: SimulatedManagedIdentity = {};
  private readonly issued = new Map<string, { expiresAt: number; audience: string }>();

  constructor(
    private readonly startupApps: readonly SimulatedEntraApp[] = [],
    private readonly startupIdentity: SimulatedManagedIdentity = {},
  ) {
    this.reset();
  }

  /** Adds the app, or replaces it (a rotated secret), until `reset()`. */
  register(app: SimulatedEntraApp): void {
    this.apps.set(`${app.tenantId}/${app.clientId}`, app);
  }

  hasTenant(tenantId: string): boolean {
    return [...this.apps.values()].some((app) => app.tenantId === tenantId);
  }

  app(tenantId: string, clientId: string): SimulatedEntraApp | undefined {
    return this.apps.get(`${tenantId}/${clientId}`);
  }

  managedIdentity(): SimulatedManagedIdentity {
    return this.identity;
  }

  /** True once any app or managed identity is known: Azure OpenAI then insists on a credential. */
  configured(): boolean {
    return this.apps.size > 0 || this.identity.systemAssigned === true || (this.identity.userAssigned?.length ?? 0) > 0;
  }

  issue(runtime: SimulatorRuntime, expiresInSeconds: number, audience: string): string {
    const token = `sim-entra-${runtime.ids.alphanumeric(40)}`;
    this.issued.set(token, { expiresAt: Date.now() + expiresInSeconds * 1000, audience });
    return token;
  }

  check(token: string, audience: string): EntraTokenCheck {
    const issued = this.issued.get(token);
    if (issued === undefined) return 'unknown';
    if (issued.audience !== audience) return 'wrong_audience';
    return Date.now() < issued.expiresAt ? 'valid' : 'expired';
  }

  /** Every token issued so far lapses (or is revoked). */
  expireAll(): void {
    for (const entry of this.issued.values()) entry.expiresAt = 0;
  }

  /** Back to the apps and identities the simulator started with; issued tokens stay, as a real service's would. */
  reset(): void {
    this.apps.clear();
    for (const app of this.startupApps) this.register(app);
    this.identity = { ...this.startupIdentity };
  }
}

const JSON_HEADERS: OutgoingHttpHeaders = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store, no-cache' };

/** Entra ID's error answer: an OAuth error, an AADSTS description with trace ids, and its codes. */
function refuse(exchange: HttpExchange, status: number, error: string, code: number, text: string): void {
  const timestamp = new Date().toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, 'Z');
  exchange.sendJson(
    status,
    {
      error,
      error_description: `AADSTS${code}: ${text} Trace ID: 00000000-0000-0000-0000-000000000000 Correlation ID: 00000000-0000-0000-0000-000000000000 Timestamp: ${timestamp}`,
      error_codes: [code],
      timestamp,
      trace_id: '00000000-0000-0000-0000-000000000000',
      correlation_id: '00000000-0000-0000-0000-000000000000',
      error_uri: `https://login.microsoftonline.com/error?code=${code}`,
    },
    JSON_HEADERS,
  );
}

const expiresIn = (runtime: SimulatorRuntime): number => runtime.behaviour().accessTokenExpiresInSeconds;

/** `POST /{tenant}/oauth2/v2.0/token`: the client-credentials grant, with a client secret or a federated client assertion. */
const handleEntraToken: WireHandler = async (exchange, runtime) => {
  const authority = runtime.entraTokens;
  const read = await exchange.readBody();
  if (!read.ok) return;
  const form = new URLSearchParams(read.body.toString('utf8'));
  const present = (name: string): string => ((form.get(name) ?? '') === '' ? 'absent' : 'present');
  // The secret and the assertion are credentials: the log only says whether they came.
  exchange.observe({
    body: {
      grant_type: form.get('grant_type'),
      client_id: form.get('client_id'),
      scope: form.get('scope'),
      client_secret: present('client_secret'),
      client_assertion_type: form.get('client_assertion_type'),
      client_assertion: present('client_assertion'),
    },
  });
  const tenantId = ENTRA_TOKEN.exec(exchange.pathname)?.[1] ?? '';
  if (!authority.hasTenant(tenantId)) return refuse(exchange, 400, 'invalid_request', 90002, `Tenant '${tenantId}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.`);
  if (form.get('grant_type') !== 'client_credentials') return refuse(exchange, 400, 'unsupported_grant_type', 70003, 'The app requested an unsupported grant type.');
  const scope = form.get('scope') ?? '';
  if (scope === '') return refuse(exchange, 400, 'invalid_request', 900144, "The request body must contain the following parameter: 'scope'.");
  if (!scope.endsWith('/.default')) return refuse(exchange, 400, 'invalid_scope', 1002012, `The provided value for scope ${scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`);
  const clientId = form.get('client_id') ?? '';
  const app = authority.app(tenantId, clientId);
  if (app === undefined) {
    return refuse(exchange, 400, 'unauthorized_client', 700016, `Application with identifier '${clientId}' was not found in the directory '${tenantId}'.`);
  }
  const secret = form.get('client_secret');
  const assertion = form.get('client_assertion');
  if (secret !== null && secret !== '') {
    if (app.clientSecret === undefined || secret !== app.clientSecret) {
      return refuse(exchange, 401, 'invalid_client', 7000215, `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${clientId}'.`);
    }
  } else if (assertion !== null && assertion !== '') {
    if (form.get('client_assertion_type') !== CLIENT_ASSERTION_TYPE) return refuse(exchange, 400, 'invalid_request', 50027, 'Invalid client_assertion_type.');
    if (app.federatedToken === undefined || assertion !== app.federatedToken) {
      return refuse(exchange, 400, 'invalid_client', 70021, 'No matching federated identity record found for presented assertion.');
    }
  } else {
    return refuse(exchange, 401, 'invalid_client', 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.");
  }
  const lifetime = expiresIn(runtime);
  const token = authority.issue(runtime, lifetime, scope.replace(/\/\.default$/, ''));
  exchange.sendJson(200, { token_type: 'Bearer', expires_in: lifetime, ext_expires_in: lifetime, access_token: token }, JSON_HEADERS);
};

/** Whether the host has the identity a request names (a client ID: user-assigned; none: system-assigned). */
function hasIdentity(identity: SimulatedManagedIdentity, clientId: string | null): boolean {
  return clientId === null ? identity.systemAssigned === true : (identity.userAssigned ?? []).includes(clientId);
}

/** `GET /metadata/identity/oauth2/token` (IMDS): `Metadata: true`, `api-version`, `resource`, optionally `client_id`. */
const handleImdsToken: WireHandler = async (exchange, runtime) => {
  exchange.req.resume();
  const query = new URL(exchange.req.url ?? '/', 'http://simulator').searchParams;
  const invalid = (description: string): void => exchange.sendJson(400, { error: 'invalid_request', error_description: description }, JSON_HEADERS);
  if (exchange.req.headers['metadata'] !== 'true') return invalid('Required metadata header not specified');
  if (query.get('api-version') === null) return invalid("Required query variable 'api-version' is missing");
  const resource = query.get('resource');
  if (resource === null || resource === '') return invalid("Required query variable 'resource' is missing");
  if (!hasIdentity(runtime.entraTokens.managedIdentity(), query.get('client_id'))) return invalid('Identity not found');
  const lifetime = expiresIn(runtime);
  const now = Math.floor(Date.now() / 1000);
  const token = runtime.entraTokens.issue(runtime, lifetime, resource);
  // IMDS writes its numbers as strings.
  exchange.sendJson(200, { access_token: token, refresh_token: '', expires_in: String(lifetime), expires_on: String(now + lifetime), not_before: String(now), resource, token_type: 'Bearer' }, JSON_HEADERS);
};

/** `GET /msi/token` (App Service's IDENTITY_ENDPOINT): `X-IDENTITY-HEADER`, `api-version=2019-08-01`, `resource`, optionally `client_id`. */
const handleAppServiceToken: WireHandler = async (exchange, runtime) => {
  exchange.req.resume();
  const query = new URL(exchange.req.url ?? '/', 'http://simulator').searchParams;
  const identity = runtime.entraTokens.managedIdentity();
  const fail = (status: number, message: string): void => exchange.sendJson(status, { statusCode: status, message, correlationId: '00000000-0000-0000-0000-000000000000' }, JSON_HEADERS);
  if (identity.identityHeader === undefined || exchange.req.headers['x-identity-header'] !== identity.identityHeader) return fail(401, 'The X-IDENTITY-HEADER header is missing or not valid.');
  if (query.get('api-version') !== '2019-08-01') return fail(400, 'The api-version is not supported.');
  const resource = query.get('resource');
  if (resource === null || resource === '') return fail(400, 'The resource query parameter is required.');
  const clientId = query.get('client_id');
  if (!hasIdentity(identity, clientId)) return fail(400, 'No MSI found for specified ClientId/ResourceId.');
  const lifetime = expiresIn(runtime);
  const token = runtime.entraTokens.issue(runtime, lifetime, resource);
  // App Service answers `expires_on` (epoch seconds, as a string) and no `expires_in`.
  exchange.sendJson(200, { access_token: token, expires_on: String(Math.floor(Date.now() / 1000) + lifetime), resource, token_type: 'Bearer', client_id: clientId ?? 'system-assigned' }, JSON_HEADERS);
};

/** Entra ID's token endpoint and the managed identity endpoints (IMDS, App Service), issuing tokens Azure OpenAI accepts. */
export const entraIdWire: WireProtocol = {
  name: 'entra-id',
  route(method, pathname) {
    if (method === 'POST' && ENTRA_TOKEN.test(pathname)) return handleEntraToken;
    if (method === 'GET' && pathname === IMDS_TOKEN_PATH) return handleImdsToken;
    if (method === 'GET' && pathname === APP_SERVICE_TOKEN_PATH) return handleAppServiceToken;
    return undefined;
  },
};
