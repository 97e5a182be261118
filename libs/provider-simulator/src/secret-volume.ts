import { mkdirSync, mkdtempSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A directory laid out and updated as the kubelet does a Secret volume (the stand-in for a mounted
 * Kubernetes Secret that tests rotate a provider's credential files with): each version in its own
 * hidden directory, `..data` a symlink to the current one, swapped atomically (a new symlink
 * renamed over it), and every key a symlink `key -> ..data/key`. The files themselves are never
 * rewritten in place.
 */
export class SecretVolume {
  readonly dir = mkdtempSync(join(tmpdir(), 'secret-volume-'));
  private version = 0;

  constructor(files: Record<string, string>) {
    this.write(files);
  }

  /** The path a provider is configured with: the key's symlink. */
  path(key: string): string {
    return join(this.dir, key);
  }

  /** A new version of the Secret with exactly these keys; a key left out leaves its symlink dangling, as after a key is removed. */
  write(files: Record<string, string>): void {
    const previous = this.version === 0 ? undefined : readlinkSync(join(this.dir, '..data'));
    const versionDir = `..v${++this.version}`;
    mkdirSync(join(this.dir, versionDir));
    for (const [key, content] of Object.entries(files)) writeFileSync(join(this.dir, versionDir, key), content);
    symlinkSync(versionDir, join(this.dir, '..data_tmp'));
    renameSync(join(this.dir, '..data_tmp'), join(this.dir, '..data'));
    for (const key of Object.keys(files)) {
      try {
        symlinkSync(join('..data', key), join(this.dir, key));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
    }
    if (previous !== undefined) rmSync(join(this.dir, previous), { recursive: true, force: true });
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
