import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const REPO_ROOT = resolve(__dirname, '../..');

/** A process the bench started, with the tail of its output for error messages. */
export class BenchProcess {
  /**
   * Where every process started from now on also writes its whole output, as `<name>.log`
   * (`--process-logs`): for what the processes print themselves, such as `--trace-gc`.
   */
  static logDir: string | undefined;
  private output = '';

  private constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    const keep = (d: Buffer): void => {
      this.output = (this.output + d.toString()).slice(-4000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    if (BenchProcess.logDir !== undefined) {
      mkdirSync(BenchProcess.logDir, { recursive: true });
      const log = createWriteStream(join(BenchProcess.logDir, `${name}.log`), { flags: 'a' });
      child.stdout?.pipe(log, { end: false });
      child.stderr?.pipe(log, { end: false });
      child.once('close', () => log.end());
    }
  }

  /** Starts `node [nodeArgs] script [args]` from the repository root. */
  static node(name: string, script: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; nodeArgs?: readonly string[] } = {}): BenchProcess {
    const child = spawn(process.execPath, [...(options.nodeArgs ?? []), resolve(REPO_ROOT, script), ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return new BenchProcess(name, child);
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new Error(`${this.name} did not start`);
    return this.child.pid;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  get tail(): string {
    return this.output;
  }

  /** Polls `url` until it answers 2xx; fails at once when the process exits. */
  async waitHealthy(url: string, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!this.running) throw new Error(`${this.name} exited (${this.child.exitCode ?? this.child.signalCode}) before ${url} answered:\n${this.output}`);
      try {
        const response = await fetch(url);
        await response.arrayBuffer();
        if (response.ok) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`${this.name}: ${url} did not become healthy in ${timeoutMs} ms:\n${this.output}`);
      await new Promise((done) => setTimeout(done, 100));
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`. Resolves on exit. */
  async stop(graceMs = 10_000): Promise<void> {
    if (!this.running) return;
    const exited = once(this.child, 'exit');
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }
}
