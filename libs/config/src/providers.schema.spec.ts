import { ConfigError, parseConfig } from './config-loader';
import { MINIMAL_CONFIG } from './minimal-config.testing';
import { GOOGLE_METADATA_TOKEN_URL, GOOGLE_TOKEN_URI, providerBaseUrl, providerSchema, type ProviderConfigOf } from './providers.schema';

const PRIVATE_KEY = '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7secret\n-----END PRIVATE KEY-----\n';

/** The problems `parseConfig` reports with `vx` as one more provider. */
function problems(vx: Record<string, unknown>): string[] {
  try {
    parseConfig({ ...MINIMAL_CONFIG, providers: { ...MINIMAL_CONFIG.providers, vx } }, {});
    return [];
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
}

const vertex = (fields: Record<string, unknown>): ProviderConfigOf<'vertex'> => providerSchema.parse({ type: 'vertex', project: 'my-project', ...fields }) as ProviderConfigOf<'vertex'>;

describe('a vertex provider', () => {
  it('fills in the location, the token endpoint and the metadata server, and computes the regional or global host', () => {
    const withKey = vertex({ credentials: { clientEmail: 'sa@my-project.iam.gserviceaccount.com', privateKey: PRIVATE_KEY } });
    expect(withKey).toMatchObject({ location: 'us-central1', credentials: { tokenUri: GOOGLE_TOKEN_URI }, metadataServerUrl: GOOGLE_METADATA_TOKEN_URL, publishers: {}, thinking: 'adaptive', defaultMaxTokens: 4096, timeoutMs: 600_000 });
    expect(providerBaseUrl(withKey)).toBe('https://us-central1-aiplatform.googleapis.com');
    expect(providerBaseUrl(vertex({ accessToken: 't', location: 'global' }))).toBe('https://aiplatform.googleapis.com');
    expect(providerBaseUrl(vertex({ accessToken: 't', location: 'europe-west4', baseUrl: 'http://127.0.0.1:9/' }))).toBe('http://127.0.0.1:9');
  });

  it('takes each source of tokens alone: a key inline or in a file, the metadata server (also as text), a static token', () => {
    expect(problems({ type: 'vertex', project: 'p', credentials: { clientEmail: 'sa@p', privateKey: PRIVATE_KEY, tokenUri: 'http://127.0.0.1:9/token' } })).toEqual([]);
    expect(problems({ type: 'vertex', project: 'p', credentialsFile: '/var/run/secrets/vertex/key.json' })).toEqual([]);
    expect(problems({ type: 'vertex', project: 'p', metadataServer: 'true' })).toEqual([]);
    expect(problems({ type: 'vertex', project: 'p', accessToken: 'ya29.x' })).toEqual([]);
    expect(problems({ type: 'vertex', project: 'p', adc: true })).toEqual([]);
  });

  it('refuses no source of tokens, and more than one', () => {
    expect(problems({ type: 'vertex', project: 'p' })).toEqual(['providers.vx: one source of access tokens is required: credentials, credentialsFile, metadataServer: true, adc: true, accessToken or accessTokenFile']);
    expect(problems({ type: 'vertex', project: 'p', metadataServer: false })).toEqual(['providers.vx: one source of access tokens is required: credentials, credentialsFile, metadataServer: true, adc: true, accessToken or accessTokenFile']);
    expect(problems({ type: 'vertex', project: 'p', credentialsFile: 'key.json', metadataServer: true, accessToken: 't' })).toEqual([
      'providers.vx: exactly one source of access tokens may be given, found credentialsFile, metadataServer, accessToken',
    ]);
    expect(problems({ type: 'vertex', project: 'p', adc: true, metadataServer: true })).toEqual(['providers.vx: exactly one source of access tokens may be given, found metadataServer, adc']);
    expect(problems({ type: 'vertex', project: 'p', adc: false })).toEqual(['providers.vx: one source of access tokens is required: credentials, credentialsFile, metadataServer: true, adc: true, accessToken or accessTokenFile']);
  });

  it('names bad keys and values without quoting the private key', () => {
    const found = problems({ type: 'vertex', project: '', location: 'US Central', credentials: { clientEmail: 'sa@p', privateKey: PRIVATE_KEY, tokenURI: 'x' }, publishers: { 'my-model': 'meta' } });
    expect(found).toEqual([
      'providers.vx.project: Too small: expected string to have >=1 characters',
      'providers.vx.location: a Google Cloud region such as us-central1, or global',
      'providers.vx.credentials: unknown key "tokenURI" (did you mean "tokenUri"?)',
      'providers.vx.publishers.my-model: Invalid option: expected one of "google"|"anthropic"',
    ]);
    expect(found.join('\n')).not.toContain('MIIE');
  });

  it('requires the project', () => {
    expect(problems({ type: 'vertex', accessToken: 't' })).toEqual(['providers.vx.project: Invalid input: expected string, received undefined']);
  });
});

describe("a provider's proxy", () => {
  it('takes an http(s) URL, with credentials, or "none"', () => {
    for (const proxy of ['http://proxy.corp:3128', 'https://gateway:s%40cret@proxy.corp:443', 'none']) {
      expect(problems({ type: 'openai', baseUrl: 'https://api.openai.com/v1', proxy })).toEqual([]);
    }
    expect(providerSchema.parse({ type: 'gemini', proxy: 'none' })).toMatchObject({ proxy: 'none' });
    expect(providerSchema.parse({ type: 'gemini' })).not.toHaveProperty('proxy');
  });

  it('refuses anything else without quoting it', () => {
    for (const proxy of ['socks5://user:s3cret@proxy:1080', 'proxy.corp:3128', 'direct', '', 'http://user:s3cret%zz@proxy.corp:3128']) {
      const found = problems({ type: 'anthropic', proxy });
      expect(found).toEqual(['providers.vx.proxy: "none", or an http:// or https:// URL of a forward proxy (http://[user:password@]host:port)']);
      expect(found.join()).not.toContain('s3cret');
    }
  });

  it('refuses Proxy-Authorization among the headers, which the HTTP client would refuse on every call', () => {
    expect(problems({ type: 'openai', baseUrl: 'https://api.openai.com/v1', headers: { 'proxy-authorization': 'Basic czNjcmV0' } })).toEqual([
      "providers.vx.headers: Proxy-Authorization cannot be sent as a header: put the proxy's credentials in its URL (`proxy` or HTTPS_PROXY)",
    ]);
    expect(problems({ type: 'openai', baseUrl: 'https://api.openai.com/v1', headers: { 'OpenAI-Organization': 'org-1' } })).toEqual([]);
  });

  it('refuses headers the HTTP client would refuse on every call, naming the header but never its value', () => {
    // A line break comes in with a ${VAR} read from a file that ends with one.
    const found = problems({
      type: 'openai',
      baseUrl: 'https://api.openai.com/v1',
      headers: { 'x team': 'a', 'x-org:': 'b', 'x-key': 's3cret-value\n', 'x-nul': 'a\u0000b', 'x-ctl': 's3cret\u0007', 'x-wide': 'costs €' },
    });
    expect(found).toEqual([
      "providers.vx.headers.x team: is not a valid header name (letters, digits and !#$%&'*+-.^_`|~ only; no spaces or colons)",
      "providers.vx.headers.x-org:: is not a valid header name (letters, digits and !#$%&'*+-.^_`|~ only; no spaces or colons)",
      'providers.vx.headers.x-key: header value must not contain a line break (CR, LF) or NUL',
      'providers.vx.headers.x-nul: header value must not contain a line break (CR, LF) or NUL',
      'providers.vx.headers.x-ctl: header value must hold only printable characters: no control character but tab, nothing beyond Latin-1 (U+00FF)',
      'providers.vx.headers.x-wide: header value must hold only printable characters: no control character but tab, nothing beyond Latin-1 (U+00FF)',
    ]);
    expect(found.join('\n')).not.toContain('s3cret');
    expect(problems({ type: 'openai', baseUrl: 'https://api.openai.com/v1', headers: { 'X-Tenant_Id.v2': 'café\tcrème', 'x-env': '${SIM_ENV:-prod}' } })).toEqual([]);
  });
});

describe("a provider's secret in a file", () => {
  const KEY_FILE = '/var/run/secrets/openai/api-key';

  it('is taken in place of the inline one by every family whose credential is a static secret', () => {
    expect(providerSchema.parse({ type: 'openai', baseUrl: 'https://api.openai.com/v1', apiKeyFile: KEY_FILE })).toMatchObject({ apiKey: '', apiKeyFile: KEY_FILE });
    for (const type of ['anthropic', 'gemini'] as const) expect(providerSchema.parse({ type, apiKeyFile: KEY_FILE })).toMatchObject({ apiKey: '', apiKeyFile: KEY_FILE });
    expect(problems({ type: 'azure', baseUrl: 'https://r.openai.azure.com', apiKeyFile: KEY_FILE })).toEqual([]);
    expect(problems({ type: 'azure', baseUrl: 'https://r.openai.azure.com', entra: { tenantId: 'contoso.onmicrosoft.com', clientId: 'c', clientSecretFile: '/run/secrets/entra' } })).toEqual([]);
    expect(problems({ type: 'bedrock', region: 'us-east-1', credentials: { accessKeyIdFile: '/run/aws/id', secretAccessKeyFile: '/run/aws/secret', sessionTokenFile: '/run/aws/token' } })).toEqual([]);
    // A key id is no secret: one part inline and another in a file is fine.
    expect(problems({ type: 'bedrock', region: 'us-east-1', credentials: { accessKeyId: 'AKIA', secretAccessKeyFile: '/run/aws/secret', sessionToken: '' } })).toEqual([]);
    expect(problems({ type: 'vertex', project: 'p', accessTokenFile: '/run/token' })).toEqual([]);
  });

  it('given with the inline secret too is refused, naming the setting', () => {
    expect(problems({ type: 'openai', baseUrl: 'https://api.openai.com/v1', apiKey: 'sk-inline-secret', apiKeyFile: KEY_FILE })).toEqual([
      'providers.vx.apiKeyFile: give apiKey or apiKeyFile, not both: the secret comes from the configuration or from a file',
    ]);
    for (const type of ['anthropic', 'gemini'] as const) {
      expect(problems({ type, apiKey: 'sk-inline-secret', apiKeyFile: KEY_FILE })).toEqual(['providers.vx.apiKeyFile: give apiKey or apiKeyFile, not both: the secret comes from the configuration or from a file']);
    }
    expect(problems({ type: 'azure', baseUrl: 'https://r.openai.azure.com', apiKey: 'sk-inline-secret', apiKeyFile: KEY_FILE })).toEqual([
      'providers.vx.apiKeyFile: give apiKey or apiKeyFile, not both: the secret comes from the configuration or from a file',
    ]);
    expect(problems({ type: 'azure', baseUrl: 'https://r.openai.azure.com', apiKeyFile: KEY_FILE, entra: { managedIdentity: true } })).toEqual([
      'providers.vx.entra: exactly one of apiKeyFile and entra may be given: an Azure OpenAI resource is called with a key or with Entra ID tokens',
    ]);
    expect(problems({ type: 'azure', baseUrl: 'https://r.openai.azure.com', entra: { tenantId: 't', clientId: 'c', clientSecret: 'sk-inline-secret', clientSecretFile: '/run/secrets/entra' } })).toEqual([
      'providers.vx.entra.clientSecretFile: give clientSecret or clientSecretFile, not both: the secret comes from the configuration or from a file',
    ]);
    expect(problems({ type: 'bedrock', region: 'us-east-1', credentials: { accessKeyId: 'AKIA', accessKeyIdFile: '/run/aws/id', secretAccessKey: 'sk-inline-secret', secretAccessKeyFile: '/run/aws/secret', sessionToken: 'tok', sessionTokenFile: '/run/aws/token' } })).toEqual([
      'providers.vx.credentials.accessKeyIdFile: give accessKeyId or accessKeyIdFile, not both: the secret comes from the configuration or from a file',
      'providers.vx.credentials.secretAccessKeyFile: give secretAccessKey or secretAccessKeyFile, not both: the secret comes from the configuration or from a file',
      'providers.vx.credentials.sessionTokenFile: give sessionToken or sessionTokenFile, not both: the secret comes from the configuration or from a file',
    ]);
    expect(problems({ type: 'vertex', project: 'p', accessToken: 'ya29.inline', accessTokenFile: '/run/token' })).toEqual(['providers.vx: exactly one source of access tokens may be given, found accessToken, accessTokenFile']);
    expect(JSON.stringify(problems({ type: 'openai', baseUrl: 'https://api.openai.com/v1', apiKey: 'sk-inline-secret', apiKeyFile: KEY_FILE }))).not.toContain('sk-inline-secret');
  });

  it('is not refused beside an empty inline secret (`${VAR:-}` with the variable unset)', () => {
    expect(problems({ type: 'openai', baseUrl: 'https://api.openai.com/v1', apiKey: '', apiKeyFile: KEY_FILE })).toEqual([]);
    expect(problems({ type: 'bedrock', region: 'us-east-1', credentials: { accessKeyId: 'AKIA', secretAccessKeyFile: '/run/aws/secret', sessionToken: '', sessionTokenFile: '/run/aws/token' } })).toEqual([]);
  });

  it('is one way or the other required for both parts of a Bedrock access key', () => {
    expect(problems({ type: 'bedrock', region: 'us-east-1', credentials: { sessionTokenFile: '/run/aws/token' } })).toEqual([
      'providers.vx.credentials.accessKeyId: required: give accessKeyId or accessKeyIdFile',
      'providers.vx.credentials.secretAccessKey: required: give secretAccessKey or secretAccessKeyFile',
    ]);
    expect(problems({ type: 'bedrock', region: 'us-east-1', credentials: { accessKeyId: 'AKIA', secretAccessKeyFile: '' } })).toEqual([
      'providers.vx.credentials.secretAccessKeyFile: Too small: expected string to have >=1 characters',
    ]);
  });

  it('is checked every 10 s unless credentialFileCheckIntervalMs says otherwise (at least 100 ms; text too)', () => {
    expect(providerSchema.parse({ type: 'gemini', apiKeyFile: KEY_FILE })).not.toHaveProperty('credentialFileCheckIntervalMs');
    expect(providerSchema.parse({ type: 'gemini', apiKeyFile: KEY_FILE, credentialFileCheckIntervalMs: '2500' })).toMatchObject({ credentialFileCheckIntervalMs: 2500 });
    expect(problems({ type: 'gemini', apiKeyFile: KEY_FILE, credentialFileCheckIntervalMs: 10 })).toEqual(['providers.vx.credentialFileCheckIntervalMs: Too small: expected number to be >=100']);
  });

  it('is not read when the configuration is loaded: only the adapter serving the provider has it mounted, and reads it at its start', () => {
    expect(problems({ type: 'openai', baseUrl: 'https://api.openai.com/v1', apiKeyFile: '/nonexistent/api-key' })).toEqual([]);
  });
});
