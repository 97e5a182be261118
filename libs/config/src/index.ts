export * from './config.schema';
export { ConfigError, interpolate, loadConfigFile, parseConfig } from './config-loader';
export { DEFAULT_CONFIG_PATH, loadConfig, readRuntimeEnv } from './runtime-env';
export type { RuntimeEnv } from './runtime-env';
