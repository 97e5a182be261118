export * from './config.schema';
export { ConfigError, interpolate, loadConfigFile, parseConfig } from './config-loader';
export { DEFAULT_CONFIG_PATH, loadConfig, NO_PROXY_ENV, readGoogleAdcEnv, readProxyEnv, readRuntimeEnv } from './runtime-env';
export type { GoogleAdcEnv, ProxyEnv, RuntimeEnv } from './runtime-env';
export { readAzureIdentityEnv } from './azure-identity-env';
export type { AzureIdentityEnv } from './azure-identity-env';
export { configWarnings, DEVELOPMENT_KEY_HASH_SECRET, emitConfigWarning } from './config-warnings';
export type { ConfigWarning } from './config-warnings';
export { embeddingInputTokenLimit, knownEmbeddingInputTokens } from './embedding-input-limits';
