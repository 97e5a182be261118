import { resolve } from 'node:path';
import { loadConfigFile } from './config-loader';
import { ConfigError } from './config-loader';
import type { GatewayConfig } from './config.schema';
import { configWarnings, emitConfigWarning, type ConfigWarning } from './config-warnings';
import { isProxyUrl } from './providers.schema';

/** The one place the process environment is read. Everything else receives typed values. */
export interface RuntimeEnv {
  /** Path of the YAML configuration. */
  configPath: string;
  /** The whole environment, for `${VAR}` interpolation inside the configuration. */
  vars: Readonly<Record<string, string | undefined>>;
}

export const DEFAULT_CONFIG_PATH = 'deploy/config/embedded.yaml';

export function readRuntimeEnv(env: NodeJS.ProcessEnv = process.env, cwd: string = process.cwd()): RuntimeEnv {
  return { configPath: resolve(cwd, env['OPENROUTER_CONFIG'] || DEFAULT_CONFIG_PATH), vars: { ...env } };
}

/**
 * Loads the configuration named by OPENROUTER_CONFIG (or the embedded default). What it accepts but
 * should not run with (see `configWarnings`) is passed to `warn`: by default printed on standard
 * error at once, as every service loads its configuration here before it starts.
 */
export function loadConfig(runtime: RuntimeEnv = readRuntimeEnv(), warn: (warning: ConfigWarning) => void = emitConfigWarning): GatewayConfig {
  const config = loadConfigFile(runtime.configPath, runtime.vars);
  for (const warning of configWarnings(config)) warn(warning);
  return config;
}

/**
 * The forward proxies of the environment, as curl names them: `https_proxy` / `HTTPS_PROXY` for
 * https URLs, `http_proxy` / `HTTP_PROXY` for http ones (and for https when no https proxy is
 * set), `no_proxy` / `NO_PROXY` for the hosts reached directly; the lower-case name wins. An
 * unset variable is `""`.
 */
export interface ProxyEnv {
  httpProxy: string;
  httpsProxy: string;
  noProxy: string;
}

export const NO_PROXY_ENV: ProxyEnv = { httpProxy: '', httpsProxy: '', noProxy: '' };

/**
 * Reads the proxy variables once, at start-up. A proxy that is not an http(s) URL is a ConfigError
 * naming the variable, never its value (which may hold the proxy's password).
 */
export function readProxyEnv(env: Readonly<Record<string, string | undefined>> = process.env): ProxyEnv {
  const problems: string[] = [];
  const read = (name: string, isUrl: boolean): string => {
    const lower = env[name.toLowerCase()];
    const [variable, value] = lower !== undefined && lower !== '' ? [name.toLowerCase(), lower] : [name, env[name] ?? ''];
    if (isUrl && value !== '' && !isProxyUrl(value)) problems.push(`${variable}: not an http:// or https:// URL of a forward proxy (http://[user:password@]host:port)`);
    return value;
  };
  const proxies = { httpProxy: read('HTTP_PROXY', true), httpsProxy: read('HTTPS_PROXY', true), noProxy: read('NO_PROXY', false) };
  if (problems.length > 0) throw new ConfigError('environment', problems);
  return proxies;
}

/**
 * Where Application Default Credentials are looked for, as Google's client libraries look:
 * GOOGLE_APPLICATION_CREDENTIALS (a JSON file), else gcloud's configuration directory
 * (CLOUDSDK_CONFIG, or `$HOME/.config/gcloud`). An unset variable is `""`.
 */
export interface GoogleAdcEnv {
  applicationCredentials: string;
  cloudsdkConfig: string;
  home: string;
}

/** Read when a provider that uses Application Default Credentials starts. */
export function readGoogleAdcEnv(env: Readonly<Record<string, string | undefined>> = process.env): GoogleAdcEnv {
  return { applicationCredentials: env['GOOGLE_APPLICATION_CREDENTIALS'] ?? '', cloudsdkConfig: env['CLOUDSDK_CONFIG'] ?? '', home: env['HOME'] ?? '' };
}
