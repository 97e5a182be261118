import { ConfigError } from '@openrouter/config';

/**
 * A directory a store cannot make or use at start (a path under a file, a read-only or virtual
 * file system), as a configuration error naming the setting it comes from, not a bare `EEXIST`.
 */
export function unusableDirectory(setting: string, what: string, dir: string, error: unknown): ConfigError {
  // Read by shape: Node's errors are not always of this realm's Error.
  const message = typeof error === 'object' && error !== null ? (error as { message?: unknown }).message : undefined;
  const reason = typeof message === 'string' ? message : String(error);
  return Object.assign(new ConfigError(setting, [`${what} cannot use the directory ${dir}: ${reason}`]), { cause: error });
}
