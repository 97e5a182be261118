import { type AzureIdentityEnv, ConfigError, providerSchema, type ProviderConfigOf, readAzureIdentityEnv } from '@openrouter/config';
import { bearerAuth, type TokenHttp, type TokenHttpRequest } from '../access-token';
import { type AzureEntraConfig, entraTokenSource, managedIdentityEndpoint } from './azure-credentials';

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const never = new AbortController().signal;
const NO_ENV: AzureIdentityEnv = readAzureIdentityEnv({});

const entraOf = (entra: Record<string, unknown>): AzureEntraConfig =>
  (providerSchema.parse({ type: 'azure', baseUrl: 'https://r.openai.azure.com', entra }) as ProviderConfigOf<'azure'>).entra as AzureEntraConfig;

/** Answers every token request with a fresh token, each held until released when `hold` is set. */
class CountingTokenHttp implements TokenHttp {
  readonly requests: TokenHttpRequest[] = [];
  private gate: Promise<void> | undefined;
  release: () => void = () => undefined;

  hold(): void {
    this.gate = new Promise<void>((resolve) => (this.release = resolve));
  }

  async request(request: TokenHttpRequest): Promise<{ status: number; body: string }> {
    this.requests.push(request);
    const n = this.requests.length;
    if (this.gate) await this.gate;
    return { status: 200, body: JSON.stringify({ access_token: `token-${n}`, expires_in: 3600 }) };
  }
}

const configProblems = (run: () => unknown): string[] => {
  try {
    run();
    return [];
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
};

describe('entraTokenSource', () => {
  it('caches a token, refreshes it 5 minutes before it expires, and shares one fetch among concurrent calls', async () => {
    let now = 1_000_000;
    const http = new CountingTokenHttp();
    const source = entraTokenSource('az', entraOf({ tenantId: TENANT, clientId: 'c', clientSecret: 's' }), { http, env: NO_ENV, now: () => now });
    http.hold();
    const calls = [source.token(never), source.token(never), source.token(never)];
    http.release();
    expect(await Promise.all(calls)).toEqual(['token-1', 'token-1', 'token-1']);
    expect(http.requests).toHaveLength(1);
    now += 54 * 60_000;
    expect(await source.token(never)).toBe('token-1');
    expect(http.requests).toHaveLength(1);
    // Inside the last 5 minutes: a refresh starts, the token in hand serves meanwhile, then the new one.
    now += 2 * 60_000;
    expect(await source.token(never)).toBe('token-1');
    expect(http.requests).toHaveLength(2);
    // Within 30 seconds of its expiry the old token is no longer handed out: the call has the refreshed one, fetched once.
    now += 3.6 * 60_000;
    expect(await source.token(never)).toBe('token-2');
    expect(http.requests).toHaveLength(2);
  });

  it('drops a token the provider refused (401), so the next call fetches a fresh one', async () => {
    const http = new CountingTokenHttp();
    const auth = bearerAuth(entraTokenSource('az', entraOf({ tenantId: TENANT, clientId: 'c', clientSecret: 's' }), { http, env: NO_ENV }));
    const first = await auth.headers(never);
    expect(first).toEqual({ authorization: 'Bearer token-1' });
    expect(auth.refused?.(first)).toBe(true);
    expect(await auth.headers(never)).toEqual({ authorization: 'Bearer token-2' });
  });

  it("uses the authority host and tenant of the configuration, else AZURE_AUTHORITY_HOST's", async () => {
    const http = new CountingTokenHttp();
    await entraTokenSource('az', entraOf({ tenantId: TENANT, clientId: 'c', clientSecret: 's' }), { http, env: { ...NO_ENV, authorityHost: 'https://login.microsoftonline.us/' } }).token(never);
    await entraTokenSource('az', entraOf({ tenantId: TENANT, clientId: 'c', clientSecret: 's', authorityHost: 'https://login.chinacloudapi.cn' }), { http, env: NO_ENV }).token(never);
    expect(http.requests.map((r) => r.url.href)).toEqual([`https://login.microsoftonline.us/${TENANT}/oauth2/v2.0/token`, `https://login.chinacloudapi.cn/${TENANT}/oauth2/v2.0/token`]);
  });

  it('takes workload identity values from the environment AKS sets, the configuration winning', async () => {
    const http = new CountingTokenHttp();
    const env = { ...NO_ENV, tenantId: 'env-tenant', clientId: 'env-client', federatedTokenFile: '/var/run/secrets/azure/tokens/azure-identity-token' };
    const files: Record<string, string> = { '/var/run/secrets/azure/tokens/azure-identity-token': 'eyJ.fed.tok', '/other': 'eyJ.other.tok' };
    const readFile = (path: string): string => files[path] ?? '';
    await entraTokenSource('az', entraOf({ workloadIdentity: true }), { http, env, readFile }).token(never);
    await entraTokenSource('az', entraOf({ workloadIdentity: true, clientId: 'cfg-client', federatedTokenFile: '/other' }), { http, env, readFile }).token(never);
    expect(http.requests[0]?.url.pathname).toBe('/env-tenant/oauth2/v2.0/token');
    const forms = http.requests.map((r) => Object.fromEntries(new URLSearchParams(r.body)));
    expect(forms.map((f) => [f['client_id'], f['client_assertion']])).toEqual([
      ['env-client', 'eyJ.fed.tok'],
      ['cfg-client', 'eyJ.other.tok'],
    ]);
  });

  it('stops at start-up naming what workload identity lacks, and an unreadable token file', () => {
    const http = new CountingTokenHttp();
    expect(configProblems(() => entraTokenSource('az', entraOf({ workloadIdentity: true }), { http, env: NO_ENV }))).toEqual([
      'providers.az.entra.tenantId: required for workloadIdentity: set it, or AZURE_TENANT_ID (AKS\'s workload identity webhook sets it for a pod labelled azure.workload.identity/use: "true")',
      "providers.az.entra.clientId: required for workloadIdentity: set it, or AZURE_CLIENT_ID (the client ID of the identity the pod's service account is federated with)",
      "providers.az.entra.federatedTokenFile: required for workloadIdentity: set it, or AZURE_FEDERATED_TOKEN_FILE (AKS's workload identity webhook sets it)",
    ]);
    const unreadable = () => {
      throw Object.assign(new Error('x'), { code: 'EACCES' });
    };
    expect(configProblems(() => entraTokenSource('az', entraOf({ workloadIdentity: true, tenantId: TENANT, clientId: 'c', federatedTokenFile: '/t' }), { http, env: NO_ENV, readFile: unreadable }))).toEqual([
      'providers.az.entra.federatedTokenFile: cannot read /t: EACCES',
    ]);
    expect(configProblems(() => entraTokenSource('az', entraOf({ tenantId: TENANT, clientId: 'c', clientSecret: 's' }), { http, env: { ...NO_ENV, authorityHost: 'login' } }))).toEqual([
      'providers.az.entra.authorityHost: AZURE_AUTHORITY_HOST is not an http(s) URL',
    ]);
  });
});

describe('managedIdentityEndpoint', () => {
  const entra = entraOf({ managedIdentity: true, clientId: 'ua' });

  it("is IMDS unless App Service's IDENTITY_ENDPOINT and IDENTITY_HEADER are set", () => {
    expect(managedIdentityEndpoint('w', entra, NO_ENV)).toEqual({ kind: 'imds', url: 'http://169.254.169.254/metadata/identity/oauth2/token', resource: 'https://cognitiveservices.azure.com', clientId: 'ua' });
    expect(managedIdentityEndpoint('w', entra, { ...NO_ENV, identityEndpoint: 'http://localhost:42356/msi/token', identityHeader: 'h' })).toEqual({
      kind: 'app-service',
      url: 'http://localhost:42356/msi/token',
      header: 'h',
      resource: 'https://cognitiveservices.azure.com',
      clientId: 'ua',
    });
  });

  it('refuses Azure Arc, Service Fabric and an endpoint without its header', () => {
    const at = (env: Partial<AzureIdentityEnv>) => configProblems(() => managedIdentityEndpoint('providers.az.entra', entra, { ...NO_ENV, identityEndpoint: 'http://localhost:40342/metadata/identity/oauth2/token', ...env }));
    expect(at({ imdsEndpoint: 'http://localhost:40342' })[0]).toContain('(Azure Arc), whose managed identity is not supported');
    expect(at({ identityHeader: 'h', identityServerThumbprint: 'AB' })[0]).toContain('(Service Fabric)');
    expect(at({})).toEqual(['providers.az.entra.managedIdentity: IDENTITY_ENDPOINT is set without IDENTITY_HEADER']);
  });
});
