import { spawn, type ChildProcess } from 'node:child_process';
import { createConnection } from 'node:net';
import { freePort } from '../ports';
import { waitFor } from './wait-for';

export interface RedisServerOptions {
  /** A configuration file, read before the settings below (a sentinel needs one it can rewrite). */
  configFile?: string;
  /** Further settings after the defaults, e.g. `['--replicaof', '127.0.0.1', '6379']` or `['--sentinel']`. */
  args?: string[];
}

/** A real `redis-server` on a loopback port, without persistence. */
export class RedisServer {
  private output = '';

  private constructor(
    readonly port: number,
    private readonly process: ChildProcess,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts a server, on `port` when given (a server started late, at an address clients already try). */
  static async start(port?: number, options: RedisServerOptions = {}): Promise<RedisServer> {
    port ??= await freePort();
    const settings = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'yes', ...(options.args ?? [])];
    const child = spawn('redis-server', options.configFile === undefined ? settings : [options.configFile, ...settings], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const server = new RedisServer(port, child);
    const keep = (d: Buffer): void => {
      server.output = (server.output + d.toString()).slice(-4000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    let spawnError: Error | undefined;
    child.once('error', (error) => (spawnError = error));
    try {
      await waitFor(
        async () => {
          if (spawnError) throw new Error(`redis-server could not start (is the redis-server package installed?): ${spawnError.message}`);
          if (child.exitCode !== null) throw new Error(`redis-server exited (${child.exitCode}): ${server.output}`);
          const reply = await ping(port);
          // A server that asks for a password answers too: it is up.
          return ['+PONG', '-NOAUTH'].some((up) => reply.startsWith(up));
        },
        { timeoutMs: 20_000, intervalMs: 50, what: `redis-server on 127.0.0.1:${port}` },
      );
    } catch (error) {
      await server.stop();
      throw error;
    }
    return server;
  }

  async stop(): Promise<void> {
    const child = this.process;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((done) => child.once('exit', () => done()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }
}

/** Sends PING over RESP and returns the first reply line, or '' when nothing answers. */
function ping(port: number): Promise<string> {
  return new Promise((done) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let reply = '';
    const finish = (value: string): void => {
      socket.destroy();
      done(value);
    };
    socket.setTimeout(1000, () => finish(''));
    socket.once('error', () => finish(''));
    socket.once('connect', () => socket.write('*1\r\n$4\r\nPING\r\n'));
    socket.on('data', (d: Buffer) => {
      reply += d.toString();
      if (reply.includes('\r\n')) finish(reply.split('\r\n')[0] ?? '');
    });
  });
}
