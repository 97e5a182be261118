import { toOpenAIError } from '@openrouter/openai-wire';
import { failure } from '../gateway-failure.testing';
import type { TokenHttpRequest } from '../access-token';
import { inlineSecret, type Secret } from '../credential-file';
import { FakeTokenHttp } from '../token-http.testing';
import { CLIENT_ASSERTION_TYPE, clientSecretGrant, entraTokenUrl, lifetimeOf, managedIdentityGrant, managedIdentityRequest, workloadIdentityGrant } from './entra-token';

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const SCOPE = 'https://cognitiveservices.azure.com/.default';
const SECRET = 'Xy8Q~top-secret-value';
const TOKEN_URL = entraTokenUrl('https://login.microsoftonline.com/', TENANT);

const formOf = (request: TokenHttpRequest | undefined): Record<string, string> => Object.fromEntries(new URLSearchParams(request?.body ?? ''));
const entraRefusal = (status: number, error: string, code: number, text: string) => ({
  error,
  error_description: `AADSTS${code}: ${text} Trace ID: 1 Correlation ID: 2 Timestamp: 2025-01-01 00:00:00Z`,
  error_codes: [code],
});

describe('the client-secret grant', () => {
  const app = { tokenUrl: TOKEN_URL, clientId: 'app-id', clientSecret: inlineSecret(SECRET), scope: SCOPE };

  it("posts the client-credentials form to the tenant's v2.0 token endpoint", async () => {
    const http = new FakeTokenHttp().reply(200, { token_type: 'Bearer', expires_in: 3599, ext_expires_in: 3599, access_token: 'eyJ.token' });
    await expect(clientSecretGrant(app, http, 'az')()).resolves.toEqual({ accessToken: 'eyJ.token', expiresInSeconds: 3599 });
    expect(http.requests[0]?.url.href).toBe(`https://login.microsoftonline.com/${TENANT}/oauth2/v2.0/token`);
    expect(http.requests[0]).toMatchObject({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(formOf(http.requests[0])).toEqual({ grant_type: 'client_credentials', client_id: 'app-id', client_secret: SECRET, scope: SCOPE });
  });

  it.each([
    [401, 'invalid_client', 7000215, 'Invalid client secret provided.', "AADSTS7000215 invalid client secret (give the secret's value, not its ID)"],
    [401, 'invalid_client', 7000222, 'The provided client secret keys for app are expired.', 'AADSTS7000222 the client secret has expired'],
    [400, 'unauthorized_client', 700016, "Application with identifier 'app-id' was not found.", 'AADSTS700016 the application (clientId) was not found in the tenant'],
    [400, 'invalid_request', 90002, "Tenant 'x' not found.", 'AADSTS90002 the tenant was not found'],
    [400, 'invalid_request', 9999999, 'Something new.', 'AADSTS9999999'],
  ])('a refusal (HTTP %i %s AADSTS%i) is a retryable 502 naming the problem, never the secret, so failover goes on to another deployment', async (status, error, code, text, named) => {
    const http = new FakeTokenHttp().reply(status, entraRefusal(status, error, code, `${text} ${SECRET}`));
    const refused = await failure(clientSecretGrant(app, http, 'az')());
    expect(refused).toMatchObject({ kind: 'auth_failed', code: 'upstream_auth_failed', retryable: true, upstreamStatus: status, provider: 'az' });
    expect(refused.message).toContain(`Entra ID refused the gateway's credentials (HTTP ${status} ${error}): ${named}`);
    expect(refused.message).not.toContain(SECRET);
    const wire = toOpenAIError(refused);
    expect(wire.status).toBe(502);
    expect(wire.body.error.code).toBe('upstream_auth_failed');
  });

  it.each([
    [503, 'temporarily_unavailable'],
    [500, 'server_error'],
    [429, 'slow_down'],
  ])('HTTP %i from Entra ID is a retryable 503', async (status, error) => {
    const http = new FakeTokenHttp().reply(status, { error });
    const failed = await failure(clientSecretGrant(app, http, 'az')());
    expect(failed).toMatchObject({ kind: 'unavailable', retryable: true, upstreamStatus: status, code: 'upstream_auth_unavailable' });
    expect(toOpenAIError(failed).status).toBe(503);
  });

  it('an endpoint that cannot be reached, or answers without a token, is a retryable 503', async () => {
    const unreachable = await failure(clientSecretGrant(app, new FakeTokenHttp().unreachable(), 'az')());
    expect(unreachable).toMatchObject({ kind: 'unavailable', retryable: true, upstreamStatus: 0 });
    expect(unreachable.message).toBe('The provider "az" could not get an access token: Entra ID\'s token endpoint could not be reached.');
    const empty = await failure(clientSecretGrant(app, new FakeTokenHttp().reply(200, '<html>'), 'az')());
    expect(empty).toMatchObject({ kind: 'unavailable', retryable: true });
  });
});

describe('the client-secret grant with the secret in a file', () => {
  /** A file's secret that a spec rotates by hand; `reread` counts the reads a refusal asked for. */
  function rotatingSecret(first: string): Secret & { rotate(next: string): void; rereads: number } {
    let value = first;
    let written = first;
    return {
      rereads: 0,
      value: () => value,
      reread() {
        this.rereads++;
        value = written;
        return Promise.resolve();
      },
      close: () => undefined,
      rotate(next: string) {
        written = next;
      },
    };
  }
  const refusal = entraRefusal(401, 'invalid_client', 7000215, 'Invalid client secret provided.');

  it('reads the file again when Entra ID refuses the secret, and asks once more with the new one', async () => {
    const secret = rotatingSecret('Xy8Q~old-secret');
    secret.rotate('Xy8Q~new-secret');
    const http = new FakeTokenHttp().reply(401, refusal).reply(200, { expires_in: 3599, access_token: 'eyJ.token' });
    await expect(clientSecretGrant({ tokenUrl: TOKEN_URL, clientId: 'app-id', clientSecret: secret, scope: SCOPE }, http, 'az')()).resolves.toEqual({ accessToken: 'eyJ.token', expiresInSeconds: 3599 });
    expect(http.requests.map((r) => formOf(r)['client_secret'])).toEqual(['Xy8Q~old-secret', 'Xy8Q~new-secret']);
    expect(secret.rereads).toBe(1);
  });

  it('passes the refusal on, asking nothing more, when the file holds the refused secret still', async () => {
    const secret = rotatingSecret('Xy8Q~old-secret');
    const http = new FakeTokenHttp().reply(401, refusal);
    const refused = await failure(clientSecretGrant({ tokenUrl: TOKEN_URL, clientId: 'app-id', clientSecret: secret, scope: SCOPE }, http, 'az')());
    expect(refused).toMatchObject({ kind: 'auth_failed', code: 'upstream_auth_failed', upstreamStatus: 401 });
    expect(http.requests).toHaveLength(1);
    expect(secret.rereads).toBe(1);
  });

  it('does not read the file for a failure that is not a refusal', async () => {
    const secret = rotatingSecret('Xy8Q~old-secret');
    const failed = await failure(clientSecretGrant({ tokenUrl: TOKEN_URL, clientId: 'app-id', clientSecret: secret, scope: SCOPE }, new FakeTokenHttp().reply(503, { error: 'temporarily_unavailable' }), 'az')());
    expect(failed).toMatchObject({ kind: 'unavailable' });
    expect(secret.rereads).toBe(0);
  });
});

describe('the workload identity grant', () => {
  it('reads the federated token file on every fetch and sends it as the client assertion', async () => {
    let content = 'eyJfirst.federated.token\n';
    const reads: string[] = [];
    const readFile = (path: string): string => {
      reads.push(path);
      return content;
    };
    const http = new FakeTokenHttp().reply(200, { access_token: 'a1', expires_in: 3599 }).reply(200, { access_token: 'a2', expires_in: 3599 });
    const grant = workloadIdentityGrant({ tokenUrl: TOKEN_URL, clientId: 'wi-client', scope: SCOPE, tokenFile: '/var/run/secrets/azure/tokens/azure-identity-token', readFile }, http, 'az');
    await grant();
    content = 'eyJsecond.federated.token';
    await grant();
    expect(reads).toEqual(['/var/run/secrets/azure/tokens/azure-identity-token', '/var/run/secrets/azure/tokens/azure-identity-token']);
    expect(formOf(http.requests[0])).toEqual({ grant_type: 'client_credentials', client_id: 'wi-client', client_assertion_type: CLIENT_ASSERTION_TYPE, client_assertion: 'eyJfirst.federated.token', scope: SCOPE });
    expect(formOf(http.requests[1])['client_assertion']).toBe('eyJsecond.federated.token');
  });

  it('a file that cannot be read is a retryable 502 naming it; a refused assertion names AADSTS70021', async () => {
    const missing = () => {
      throw Object.assign(new Error('nope'), { code: 'ENOENT' });
    };
    const unreadable = await failure(workloadIdentityGrant({ tokenUrl: TOKEN_URL, clientId: 'c', scope: SCOPE, tokenFile: '/t', readFile: missing }, new FakeTokenHttp(), 'az')());
    expect(unreadable).toMatchObject({ kind: 'auth_failed', retryable: true, upstreamStatus: 0 });
    expect(unreadable.message).toContain('the federated token file /t cannot be read (ENOENT)');
    const http = new FakeTokenHttp().reply(400, entraRefusal(400, 'invalid_client', 70021, 'No matching federated identity record found for presented assertion.'));
    const refused = await failure(workloadIdentityGrant({ tokenUrl: TOKEN_URL, clientId: 'c', scope: SCOPE, tokenFile: '/t', readFile: () => 'eyJa.b.c' }, http, 'az')());
    expect(refused.message).toContain('AADSTS70021 no federated identity credential of the app matches the federated token');
    expect(refused.message).not.toContain('eyJa.b.c');
  });
});

describe('the managed identity grant', () => {
  const now = () => 1_700_000_000_000;

  it('asks IMDS with Metadata: true, api-version 2018-02-01, the resource and a user-assigned client id', async () => {
    const http = new FakeTokenHttp().reply(200, { access_token: 'mi', expires_in: '3599', expires_on: '1700003599', resource: 'https://cognitiveservices.azure.com', token_type: 'Bearer' });
    const grant = managedIdentityGrant({ kind: 'imds', url: 'http://169.254.169.254/metadata/identity/oauth2/token', resource: 'https://cognitiveservices.azure.com', clientId: 'ua-id' }, http, 'az', now);
    await expect(grant()).resolves.toEqual({ accessToken: 'mi', expiresInSeconds: 3599 });
    expect(http.requests[0]).toMatchObject({ method: 'GET', headers: { metadata: 'true' } });
    expect(http.requests[0]?.url.href).toBe('http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fcognitiveservices.azure.com&client_id=ua-id');
  });

  it("asks App Service's endpoint with X-IDENTITY-HEADER and api-version 2019-08-01, reading expires_on", async () => {
    const http = new FakeTokenHttp().reply(200, { access_token: 'as', expires_on: '1700001800', resource: 'https://cognitiveservices.azure.com', token_type: 'Bearer' });
    const grant = managedIdentityGrant({ kind: 'app-service', url: 'http://localhost:42356/msi/token', header: 'secret-header', resource: 'https://cognitiveservices.azure.com' }, http, 'az', now);
    await expect(grant()).resolves.toEqual({ accessToken: 'as', expiresInSeconds: 1800 });
    expect(http.requests[0]).toMatchObject({ method: 'GET', headers: { 'x-identity-header': 'secret-header' } });
    expect(http.requests[0]?.url.searchParams.get('api-version')).toBe('2019-08-01');
    expect(http.requests[0]?.url.searchParams.has('client_id')).toBe(false);
  });

  it('gives a managed identity endpoint (on the host itself) a short timeout, not the 30 s of Entra ID over the network', () => {
    const resource = 'https://cognitiveservices.azure.com';
    const imds = managedIdentityRequest({ kind: 'imds', url: 'http://169.254.169.254/metadata/identity/oauth2/token', resource });
    const appService = managedIdentityRequest({ kind: 'app-service', url: 'http://localhost:42356/msi/token', header: 'h', resource });
    expect(imds.timeoutMs).toBe(5_000);
    expect(appService.timeoutMs).toBe(5_000);
  });

  it('no matching identity (400) is a retryable 502; IMDS 404, 429 and 5xx and no answer are retryable 503', async () => {
    const imds = { kind: 'imds' as const, url: 'http://169.254.169.254/metadata/identity/oauth2/token', resource: 'https://cognitiveservices.azure.com' };
    const refused = await failure(managedIdentityGrant(imds, new FakeTokenHttp().reply(400, { error: 'invalid_request', error_description: 'Identity not found' }), 'az')());
    expect(refused).toMatchObject({ kind: 'auth_failed', retryable: true, upstreamStatus: 400 });
    expect(refused.message).toContain('is a system-assigned managed identity assigned to the VM or app the gateway runs on?');
    for (const status of [404, 429, 500]) {
      expect(await failure(managedIdentityGrant(imds, new FakeTokenHttp().reply(status, {}), 'az')())).toMatchObject({ kind: 'unavailable', retryable: true, upstreamStatus: status });
    }
    expect(await failure(managedIdentityGrant(imds, new FakeTokenHttp().unreachable(), 'az')())).toMatchObject({ kind: 'unavailable', retryable: true, upstreamStatus: 0 });
  });

  it("keeps a user-assigned identity's client ID from the client, in the cause for the log", async () => {
    const clientId = '00001111-aaaa-2222-bbbb-3333cccc4444';
    const imds = { kind: 'imds' as const, url: 'http://169.254.169.254/metadata/identity/oauth2/token', resource: 'https://cognitiveservices.azure.com', clientId };
    const refused = await failure(managedIdentityGrant(imds, new FakeTokenHttp().reply(400, { error: 'invalid_request', error_description: 'Identity not found' }), 'az')());
    expect(refused).toMatchObject({ kind: 'auth_failed', retryable: true, upstreamStatus: 400 });
    expect(refused.message).toContain("is the user-assigned managed identity of the provider's entra.clientId assigned to the VM or app the gateway runs on?");
    expect(refused.message).not.toContain(clientId);
    expect(JSON.stringify(toOpenAIError(refused).body)).not.toContain(clientId);
    expect(String(refused.cause)).toContain(clientId);
  });
});

describe('lifetimeOf', () => {
  it('reads expires_in (a number or a string), else expires_on (epoch seconds or a date)', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(lifetimeOf({ expires_in: 3599 }, now)).toBe(3599);
    expect(lifetimeOf({ expires_in: '86399' }, now)).toBe(86399);
    expect(lifetimeOf({ expires_on: String(now / 1000 + 600) }, now)).toBe(600);
    expect(lifetimeOf({ expires_on: '2025-01-01T01:00:00Z' }, now)).toBe(3600);
    expect(lifetimeOf({}, now)).toBeUndefined();
  });
});
