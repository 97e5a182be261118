import { resolve } from 'node:path';
import { loadConfigFile } from './config-loader';
import type { GatewayConfig } from './config.schema';

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

/** Loads the configuration named by OPENROUTER_CONFIG (or the embedded default). */
export function loadConfig(runtime: RuntimeEnv = readRuntimeEnv()): GatewayConfig {
  return loadConfigFile(runtime.configPath, runtime.vars);
}
