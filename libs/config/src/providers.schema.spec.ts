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
    expect(problems({ type: 'vertex', project: 'p' })).toEqual(['providers.vx: one source of access tokens is required: credentials, credentialsFile, metadataServer: true, adc: true or accessToken']);
    expect(problems({ type: 'vertex', project: 'p', metadataServer: false })).toEqual(['providers.vx: one source of access tokens is required: credentials, credentialsFile, metadataServer: true, adc: true or accessToken']);
    expect(problems({ type: 'vertex', project: 'p', credentialsFile: 'key.json', metadataServer: true, accessToken: 't' })).toEqual([
      'providers.vx: exactly one source of access tokens may be given, found credentialsFile, metadataServer, accessToken',
    ]);
    expect(problems({ type: 'vertex', project: 'p', adc: true, metadataServer: true })).toEqual(['providers.vx: exactly one source of access tokens may be given, found metadataServer, adc']);
    expect(problems({ type: 'vertex', project: 'p', adc: false })).toEqual(['providers.vx: one source of access tokens is required: credentials, credentialsFile, metadataServer: true, adc: true or accessToken']);
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
});
