import { readFileSync, statSync, type Stats } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { ConfigError, DEFAULT_CREDENTIAL_FILE_CHECK_INTERVAL_MS } from '@openrouter/config';
import type { CredentialFileMetrics, Logger } from '@openrouter/observability';
import type { ProviderAdapter } from './provider-adapter';

/**
 * After a refusal, a credential file is read again at most this often: a key that stays wrong
 * costs one read a second, however many calls it fails.
 */
export const REFUSAL_REREAD_MS = 1_000;

/** A secret a provider is called with: given in the configuration, or read from a file that may change. */
export interface Secret {
  /** The value a call made now starts with (and keeps, however long it runs). */
  value(): string;
  /**
   * The provider refused the secret: a file is read again now (at most once a second), so a
   * rotated secret is taken without waiting for the next check. Never rejects.
   */
  reread(): Promise<void>;
  /** Stops checking the file. */
  close(): void;
}

/** A secret given in the configuration: the same value until the adapter restarts. */
export function inlineSecret(value: string): Secret {
  return { value: () => value, reread: () => Promise.resolve(), close: () => undefined };
}

/** What the adapter shares with every credential file it watches. */
export interface CredentialFileOptions {
  logger?: Logger | undefined;
  metrics?: CredentialFileMetrics | undefined;
  /** Milliseconds, for the refusal re-read's rate limit; a spec moves it by hand. */
  now?: () => number;
}

/** One credential file of a provider: the setting that names it and how often it is checked. */
export interface CredentialFileSetting {
  provider: string;
  /** The setting's path under the provider (`apiKeyFile`, `credentials.secretAccessKeyFile`), for messages and metrics. */
  key: string;
  path: string;
  /** Default: DEFAULT_CREDENTIAL_FILE_CHECK_INTERVAL_MS. */
  checkIntervalMs?: number | undefined;
  /**
   * What makes a content (read and trimmed, not empty) unusable: each problem names a field or a
   * kind, never the content; none when it is good. A content with problems stops the adapter at
   * start-up, and later is never taken: the last good one stays in use. Unset: any content is good.
   */
  problemsOf?: ((content: string) => readonly string[]) | undefined;
}

/**
 * What identifies the content a path leads to, following symlinks: Kubernetes updates a Secret
 * volume by pointing its `..data` symlink at a new directory, so the file reached is a new one
 * (another inode) even when its size and time match; an editor's in-place rewrite changes size,
 * mtime or ctime. fs.watch would see neither reliably through the symlink swap.
 */
function identity(stats: Stats): string {
  return `${stats.dev}:${stats.ino}:${stats.size}:${stats.mtimeMs}:${stats.ctimeMs}`;
}

/** Why a read failed: the error code (ENOENT, EACCES, EISDIR), never the error's text. */
function reasonOf(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' && /^[A-Z0-9_]{1,32}$/.test(code) ? code : 'unreadable';
}

/**
 * A secret read from a file (trimmed of surrounding white space and newlines) and read again,
 * without a restart, when the file changes: its identity is checked every `checkIntervalMs`, and
 * the file is read at once when the provider refuses the secret (`reread`). A file that becomes
 * unreadable, empty or (with `problemsOf`) malformed leaves the last good secret in use, with one
 * warning per change of state and the `openrouter_provider_credential_file_ok` gauge at 0.
 * Nothing logged or thrown quotes what the file holds.
 */
export class CredentialFile implements Secret {
  private current: string;
  /** The identity of the file `current` was read from. */
  private seen: string;
  /** Why the last read failed; undefined while the file reads well. */
  private failure: string | undefined;
  /** Reads run one at a time, in order: a check never overtakes a refusal's re-read. */
  private queue: Promise<void> = Promise.resolve();
  private rereading: Promise<void> | undefined;
  private lastReread = Number.NEGATIVE_INFINITY;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly now: () => number;
  private readonly checkIntervalMs: number;

  private constructor(
    private readonly setting: CredentialFileSetting,
    private readonly options: CredentialFileOptions,
    first: { value: string; identity: string },
  ) {
    this.current = first.value;
    this.seen = first.identity;
    this.now = options.now ?? Date.now;
    this.checkIntervalMs = setting.checkIntervalMs ?? DEFAULT_CREDENTIAL_FILE_CHECK_INTERVAL_MS;
    options.metrics?.opened(setting.provider, setting.key);
    this.schedule();
  }

  /**
   * Reads the file now and starts checking it. One that cannot be read or is empty is a
   * ConfigError naming the provider's setting and the path: the adapter does not start.
   */
  static open(setting: CredentialFileSetting, options: CredentialFileOptions = {}): CredentialFile {
    const where = `providers.${setting.provider}`;
    let first: { value: string; identity: string };
    try {
      // The identity before the content: a change in between is found by the next check.
      const before = identity(statSync(setting.path));
      first = { identity: before, value: readFileSync(setting.path, 'utf8').trim() };
    } catch (error) {
      throw new ConfigError(where, [`${where}.${setting.key}: cannot read ${setting.path}: ${reasonOf(error)}`]);
    }
    if (first.value === '') throw new ConfigError(where, [`${where}.${setting.key}: ${setting.path} is empty`]);
    const problems = setting.problemsOf?.(first.value) ?? [];
    if (problems.length > 0) throw new ConfigError(where, problems.map((problem) => `${where}.${setting.key}: ${problem}`));
    return new CredentialFile(setting, options, first);
  }

  value(): string {
    return this.current;
  }

  /** One check: the file is read again when what its path leads to is not what was read last (or the last read failed). */
  check(): Promise<void> {
    return this.enqueue(() => this.load(false));
  }

  reread(): Promise<void> {
    if (this.closed) return Promise.resolve();
    // Calls refused together wait for the one read their refusals started.
    if (this.rereading !== undefined) return this.rereading;
    const now = this.now();
    if (now - this.lastReread < REFUSAL_REREAD_MS) return Promise.resolve();
    this.lastReread = now;
    const rereading = this.enqueue(() => this.load(true)).finally(() => {
      if (this.rereading === rereading) this.rereading = undefined;
    });
    this.rereading = rereading;
    return rereading;
  }

  close(): void {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** The next check, once this one has finished: a slow disk never piles checks up. */
  private schedule(): void {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      void this.check().then(() => this.schedule());
    }, this.checkIntervalMs);
    // Checking a file is no reason to keep the process alive.
    this.timer.unref();
  }

  private enqueue(read: () => Promise<void>): Promise<void> {
    const next = this.queue.then(read);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Never rejects: a failure is a state, logged and counted. `force`: read even when the file looks unchanged. */
  private async load(force: boolean): Promise<void> {
    if (this.closed) return;
    let seen: string;
    let text: string;
    try {
      seen = identity(await stat(this.setting.path));
      if (!force && this.failure === undefined && seen === this.seen) return;
      text = (await readFile(this.setting.path, 'utf8')).trim();
    } catch (error) {
      this.failed(reasonOf(error));
      return;
    }
    if (text === '') {
      this.failed('empty');
      return;
    }
    // A half-written or malformed file (an editor saving in place) never replaces a good secret.
    const problems = this.setting.problemsOf?.(text) ?? [];
    if (problems.length > 0) {
      this.failed('invalid', problems);
      return;
    }
    this.seen = seen;
    const { provider, key, path } = this.setting;
    if (this.failure !== undefined) {
      this.failure = undefined;
      this.options.metrics?.readable(provider, key);
      this.options.logger?.info({ provider, setting: key, path }, 'provider credential file readable again');
    }
    if (text !== this.current) {
      this.current = text;
      this.options.metrics?.changed(provider, key);
      this.options.logger?.info({ provider, setting: key, path }, 'provider credential file changed: the calls made from now on use its new secret');
    }
  }

  /** `problems`: what `problemsOf` found wrong with the content (`reason` is then `invalid`). */
  private failed(reason: string, problems?: readonly string[]): void {
    const { provider, key, path } = this.setting;
    this.options.metrics?.failed(provider, key);
    if (this.failure === reason) return;
    this.failure = reason;
    if (problems === undefined) {
      this.options.logger?.warn({ provider, setting: key, path, reason }, 'provider credential file cannot be read (or is empty): calls keep the secret read last');
    } else {
      this.options.logger?.warn({ provider, setting: key, path, reason, problems }, 'provider credential file does not hold a usable credential: calls keep the secret read last');
    }
  }
}

/** Opens the file `path` names for the provider's `key`, else takes `inline` as it is. */
export function secretOf(setting: Omit<CredentialFileSetting, 'path'> & { path: string | undefined }, inline: string, options: CredentialFileOptions = {}): Secret {
  return setting.path === undefined ? inlineSecret(inline) : CredentialFile.open({ ...setting, path: setting.path }, options);
}

/** `adapter`, whose `close` also stops watching the credential files among `secrets`. */
export function closingSecrets(adapter: ProviderAdapter, secrets: ReadonlyArray<Secret | undefined>): ProviderAdapter {
  const watched = secrets.filter((secret): secret is Secret => secret !== undefined);
  if (watched.length === 0) return adapter;
  const moderate = adapter.moderate?.bind(adapter);
  const generateImages = adapter.generateImages?.bind(adapter);
  const transcribe = adapter.transcribe?.bind(adapter);
  const speak = adapter.speak?.bind(adapter);
  return {
    chat: (call) => adapter.chat(call),
    embed: (call) => adapter.embed(call),
    ...(moderate && { moderate }),
    ...(generateImages && { generateImages }),
    ...(transcribe && { transcribe }),
    ...(speak && { speak }),
    async close() {
      for (const secret of watched) secret.close();
      await adapter.close();
    },
  };
}
