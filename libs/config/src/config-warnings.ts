import type { GatewayConfig } from './config.schema';

/**
 * The default of `access.keyHashSecret`: published (in the schema, the docs and
 * deploy/config/embedded.yaml), so fit for trying the gateway out and nothing else.
 */
export const DEVELOPMENT_KEY_HASH_SECRET = 'open-router-development-secret';

/** A setting the gateway runs with but should not: its path and why, never its value. */
export interface ConfigWarning {
  path: string;
  message: string;
}

/**
 * What a valid configuration does that is unsafe, to be shouted at start-up rather than refused.
 *
 * The development `access.keyHashSecret` with Redis: the stored responses, chat completions, files
 * and cached answers kept in Redis are sealed under keys derived from that secret, so with the
 * published one anyone who can read Redis (a backup, a replica, a shared instance) can decrypt the
 * prompts and answers in it. Refusing it would break every test and lab setup that points the
 * gateway at a Redis without naming a secret, so it is a warning (docs/configuration.md, access).
 */
export function configWarnings(config: Pick<GatewayConfig, 'access'>): ConfigWarning[] {
  const warnings: ConfigWarning[] = [];
  if (config.access.redis.url !== '' && config.access.keyHashSecret === DEVELOPMENT_KEY_HASH_SECRET) {
    warnings.push({
      path: 'access.keyHashSecret',
      message:
        'is the published development default while access.redis.url is set: the stored responses, chat completions, files and cached answers in Redis are sealed with keys derived from it, so anyone who can read Redis can decrypt them. ' +
        'Set a secret of your own (`openssl rand -hex 32`, e.g. in OPENROUTER_KEY_HASH_SECRET); keys issued and data stored under the default stay readable while it is listed in access.previousKeyHashSecrets, for the rotation (docs/access.md)',
    });
  }
  return warnings;
}

/**
 * Writes a configuration warning to the process's standard error as a Node.js process warning
 * (`(node:1) [OPENROUTER_CONFIG] ConfigurationWarning: …`): it is printed before the service's
 * logger exists, whatever its level, so it cannot go unseen.
 */
export function emitConfigWarning(warning: ConfigWarning): void {
  process.emitWarning(`${warning.path} ${warning.message}`, { type: 'ConfigurationWarning', code: 'OPENROUTER_CONFIG' });
}
