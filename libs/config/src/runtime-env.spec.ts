import { ConfigError } from './config-loader';
import { readGoogleAdcEnv, readProxyEnv } from './runtime-env';

describe('the proxy variables of the environment', () => {
  it('reads either case, the lower-case name first, and gives "" for an unset one', () => {
    expect(readProxyEnv({})).toEqual({ httpProxy: '', httpsProxy: '', noProxy: '' });
    expect(readProxyEnv({ HTTPS_PROXY: 'http://upper:3128', https_proxy: 'http://lower:3128', HTTP_PROXY: 'http://proxy:8080', NO_PROXY: 'vllm.internal,.svc' })).toEqual({
      httpProxy: 'http://proxy:8080',
      httpsProxy: 'http://lower:3128',
      noProxy: 'vllm.internal,.svc',
    });
    expect(readProxyEnv({ https_proxy: '', HTTPS_PROXY: 'https://u:p@proxy:443', no_proxy: '*' })).toMatchObject({ httpsProxy: 'https://u:p@proxy:443', noProxy: '*' });
  });

  it('refuses a proxy that is not an http(s) URL, naming the variable and never the value', () => {
    let error: unknown;
    try {
      readProxyEnv({ http_proxy: 'socks5://user:s3cret@proxy:1080', HTTPS_PROXY: 'proxy.corp:3128' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([
      'http_proxy: not an http:// or https:// URL of a forward proxy (http://[user:password@]host:port)',
      'HTTPS_PROXY: not an http:// or https:// URL of a forward proxy (http://[user:password@]host:port)',
    ]);
    expect((error as ConfigError).message).not.toContain('s3cret');
  });

  it('refuses a proxy whose credentials are not percent-encoded where they must be, without quoting them', () => {
    let error: unknown;
    try {
      readProxyEnv({ HTTPS_PROXY: 'http://gateway:50%off@proxy.corp:3128' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual(['HTTPS_PROXY: not an http:// or https:// URL of a forward proxy (http://[user:password@]host:port)']);
    expect((error as ConfigError).message).not.toContain('50%off');
    expect(readProxyEnv({ HTTPS_PROXY: 'http://gateway:50%25off@proxy.corp:3128' }).httpsProxy).toBe('http://gateway:50%25off@proxy.corp:3128');
  });
});

describe('the Application Default Credentials variables', () => {
  it('reads GOOGLE_APPLICATION_CREDENTIALS, CLOUDSDK_CONFIG and HOME, "" for an unset one', () => {
    expect(readGoogleAdcEnv({})).toEqual({ applicationCredentials: '', cloudsdkConfig: '', home: '' });
    expect(readGoogleAdcEnv({ GOOGLE_APPLICATION_CREDENTIALS: '/var/run/secrets/adc.json', CLOUDSDK_CONFIG: '/etc/gcloud', HOME: '/home/app' })).toEqual({
      applicationCredentials: '/var/run/secrets/adc.json',
      cloudsdkConfig: '/etc/gcloud',
      home: '/home/app',
    });
  });
});
