import { ConfigError, parseConfig } from './config-loader';
import { MINIMAL_CONFIG } from './minimal-config.testing';
import { readAzureIdentityEnv } from './azure-identity-env';
import { AZURE_COGNITIVE_SERVICES_SCOPE, AZURE_IMDS_TOKEN_URL, providerSchema, type ProviderConfigOf } from './providers.schema';

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const BASE = { type: 'azure', baseUrl: 'https://my-resource.openai.azure.com' };

/** The problems `parseConfig` reports with `az` as one more provider, under `env`. */
function problems(az: Record<string, unknown>, env: Record<string, string> = {}): string[] {
  try {
    parseConfig({ ...MINIMAL_CONFIG, providers: { ...MINIMAL_CONFIG.providers, az } }, env);
    return [];
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
}

const azure = (fields: Record<string, unknown>): ProviderConfigOf<'azure'> => providerSchema.parse({ ...BASE, ...fields }) as ProviderConfigOf<'azure'>;

describe('an azure provider', () => {
  it('keeps apiKey as it was: the default, empty when not given, and no entra', () => {
    expect(azure({ apiKey: 'k' })).toMatchObject({ apiKey: 'k', apiVersion: '2024-10-21' });
    expect(azure({}).apiKey).toBe('');
    expect(azure({ apiKey: 'k' }).entra).toBeUndefined();
  });

  it('takes each Entra ID source alone, filling in the scope and the IMDS endpoint', () => {
    const secret = azure({ entra: { tenantId: TENANT, clientId: 'app-id', clientSecret: 's3cret' } });
    expect(secret.entra).toEqual({ tenantId: TENANT, clientId: 'app-id', clientSecret: 's3cret', scope: AZURE_COGNITIVE_SERVICES_SCOPE, imdsUrl: AZURE_IMDS_TOKEN_URL });
    expect(problems({ ...BASE, entra: { workloadIdentity: true } })).toEqual([]);
    expect(problems({ ...BASE, entra: { workloadIdentity: 'yes', tenantId: 'contoso.onmicrosoft.com', clientId: 'c', federatedTokenFile: '/var/run/secrets/azure/tokens/azure-identity-token' } })).toEqual([]);
    expect(problems({ ...BASE, entra: { managedIdentity: true } })).toEqual([]);
    expect(problems({ ...BASE, entra: { managedIdentity: true, clientId: 'user-assigned-id', scope: 'https://cognitiveservices.azure.us/.default' } })).toEqual([]);
    expect(problems({ ...BASE, entra: { tenantId: TENANT, clientId: 'c', clientSecret: 's', authorityHost: 'https://login.microsoftonline.us' } })).toEqual([]);
  });

  it('takes the client secret from the environment, as other secrets', () => {
    const config = parseConfig({ ...MINIMAL_CONFIG, providers: { ...MINIMAL_CONFIG.providers, az: { ...BASE, entra: { tenantId: TENANT, clientId: 'c', clientSecret: '${AZURE_OPENAI_CLIENT_SECRET}' } } } }, { AZURE_OPENAI_CLIENT_SECRET: 'from-env' });
    expect((config.providers['az'] as ProviderConfigOf<'azure'>).entra?.clientSecret).toBe('from-env');
  });

  it('refuses both an apiKey and entra, naming the path', () => {
    expect(problems({ ...BASE, apiKey: 'k', entra: { managedIdentity: true } })).toEqual([
      'providers.az.entra: exactly one of apiKey and entra may be given: an Azure OpenAI resource is called with a key or with Entra ID tokens',
    ]);
    // An apiKey interpolated to nothing is no key.
    expect(problems({ ...BASE, apiKey: '${AZURE_OPENAI_API_KEY:-}', entra: { managedIdentity: true } })).toEqual([]);
  });

  it('refuses no source, more than one, and a client secret without its tenant and client', () => {
    expect(problems({ ...BASE, entra: {} })).toEqual(['providers.az.entra: one source of Entra ID tokens is required: clientSecret or clientSecretFile (with tenantId and clientId), workloadIdentity: true or managedIdentity: true']);
    expect(problems({ ...BASE, entra: { managedIdentity: false } })).toHaveLength(1);
    expect(problems({ ...BASE, entra: { clientSecret: 's', managedIdentity: true, workloadIdentity: true, tenantId: TENANT, clientId: 'c' } })[0]).toBe(
      'providers.az.entra: exactly one source of Entra ID tokens may be given, found clientSecret, workloadIdentity, managedIdentity',
    );
    const missing = problems({ ...BASE, entra: { clientSecret: 'top-secret-value' } });
    expect(missing).toEqual([
      "providers.az.entra.tenantId: required with clientSecret (the app registration's directory (tenant) ID)",
      "providers.az.entra.clientId: required with clientSecret (the app registration's application (client) ID)",
    ]);
    expect(missing.join(' ')).not.toContain('top-secret-value');
  });

  it('refuses keys that do not apply, an unknown key, a tenant that is not one and a bad authority host', () => {
    expect(problems({ ...BASE, entra: { managedIdentity: true, tenantId: TENANT } })).toEqual(['providers.az.entra.tenantId: does not apply to managedIdentity (a user-assigned identity is chosen by clientId)']);
    expect(problems({ ...BASE, entra: { tenantId: TENANT, clientId: 'c', clientSecret: 's', federatedTokenFile: '/t' } })).toEqual(['providers.az.entra.federatedTokenFile: applies to workloadIdentity: true only']);
    expect(problems({ ...BASE, entra: { managedIdentity: true, secret: 'x' } })[0]).toMatch(/^providers\.az\.entra/);
    expect(problems({ ...BASE, entra: { tenantId: '../evil', clientId: 'c', clientSecret: 's' } })[0]).toMatch(/^providers\.az\.entra\.tenantId: a tenant id/);
    expect(problems({ ...BASE, entra: { tenantId: TENANT, clientId: 'c', clientSecret: 's', authorityHost: 'login' } })[0]).toMatch(/^providers\.az\.entra\.authorityHost/);
  });
});

describe('readAzureIdentityEnv', () => {
  it('reads what AKS workload identity and App Service set, unset as ""', () => {
    expect(readAzureIdentityEnv({})).toEqual({ tenantId: '', clientId: '', federatedTokenFile: '', authorityHost: '', identityEndpoint: '', identityHeader: '', imdsEndpoint: '', identityServerThumbprint: '' });
    expect(
      readAzureIdentityEnv({
        AZURE_TENANT_ID: TENANT,
        AZURE_CLIENT_ID: 'c',
        AZURE_FEDERATED_TOKEN_FILE: '/var/run/secrets/azure/tokens/azure-identity-token',
        AZURE_AUTHORITY_HOST: 'https://login.microsoftonline.com/',
        IDENTITY_ENDPOINT: 'http://localhost:42356/msi/token',
        IDENTITY_HEADER: 'h',
      }),
    ).toMatchObject({ tenantId: TENANT, clientId: 'c', federatedTokenFile: '/var/run/secrets/azure/tokens/azure-identity-token', authorityHost: 'https://login.microsoftonline.com/', identityEndpoint: 'http://localhost:42356/msi/token', identityHeader: 'h' });
  });
});
