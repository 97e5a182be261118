import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(__dirname, '../../..');

interface Run {
  code: number | null;
  lines: Array<Record<string, unknown> & { level: number; msg: string }>;
  stderr: string;
}

/**
 * A service's main program in a process of its own (the TypeScript sources compiled on load):
 * `start` is the body of its start function, given `config`, `logger` and (with
 * `runStoppableServiceMain`) `stopping`. With `signal`, the process is sent it once the service
 * has started, or once its output shows `signalOn`.
 */
function runMain(start: string, env: Record<string, string>, signal?: NodeJS.Signals, options: { main?: 'runServiceMain' | 'runStoppableServiceMain'; signalOn?: string } = {}): Promise<Run> {
  const main = options.main ?? 'runServiceMain';
  const signalOn = options.signalOn ?? '"(started)"';
  const script = `
    const { ${main} } = require(${JSON.stringify(join(ROOT, 'libs/service-runtime/src/service-handle.ts'))});
    ${main}('router', async (config, logger, stopping) => {
      ${start}
      // After closeOnSignals is in place (it follows the start on the same tick).
      setTimeout(() => process.stdout.write('{"level":0,"msg":"(started)"}\\n'), 0);
      // What a service's listeners do: keep the process running until it is closed.
      const running = setInterval(() => undefined, 60000);
      // Its close takes 100 ms, and says when (performance.now()) it began and ended.
      const mark = (msg) => process.stdout.write(JSON.stringify({ level: 0, msg, at: performance.now() }) + '\\n');
      const close = () => (mark('(closing)'), new Promise((done) => setTimeout(done, 100)).then(() => (clearInterval(running), mark('(closed)'))));
      return { name: 'router', httpPort: 0, close };
    });`;
  const child = spawn(process.execPath, ['-r', join(ROOT, 'bench/register.js'), '-e', script], { cwd: ROOT, env: { PATH: process.env['PATH'] ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let signalled = false;
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    if (signal && !signalled && stdout.includes(signalOn)) signalled = child.kill(signal);
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((done) =>
    child.on('close', (code) =>
      done({
        code,
        stderr,
        lines: stdout
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .map((l) => JSON.parse(l) as Run['lines'][number]),
      }),
    ),
  );
}

function configFile(router: Record<string, unknown>): string {
  const path = join(mkdtempSync(join(tmpdir(), 'service-main-')), 'config.yaml');
  writeFileSync(
    path,
    JSON.stringify({
      version: 1,
      ingress: { http: { port: 0 }, router: '127.0.0.1:1' },
      router: { grpc: { port: 0 }, http: { port: 0 }, adapters: { default: '127.0.0.1:2' }, ...router },
      adapter: { grpc: { port: 0 }, http: { port: 0 } },
      billing: { http: { port: 0 } },
      alerting: { http: { port: 0 } },
      providers: { sim: { type: 'openai', baseUrl: 'http://127.0.0.1:9/v1', apiKey: 'k' } },
      models: [{ id: 'm', deployments: [{ provider: 'sim', model: 'up' }] }],
    }),
  );
  return path;
}

describe('runServiceMain', () => {
  it('says once which configuration it runs with, warning when it is the default one', async () => {
    const path = configFile({});
    const given = await runMain('', { OPENROUTER_CONFIG: path }, 'SIGTERM');
    expect(given.lines.filter((l) => /configuration/.test(l.msg))).toEqual([expect.objectContaining({ level: 30, msg: 'configuration loaded', configPath: path, defaultConfig: false })]);

    const fallback = await runMain('', {}, 'SIGTERM');
    expect(fallback.lines.filter((l) => /configuration/.test(l.msg))).toEqual([
      expect.objectContaining({ level: 40, configPath: join(ROOT, 'deploy/config/embedded.yaml'), defaultConfig: true, msg: "OPENROUTER_CONFIG is not set: running with the default configuration, the embedded gateway's" }),
    ]);
  }, 60_000);

  it('logs stopping with the signal and stopped with the drain time, once each, on a graceful shutdown', async () => {
    const run = await runMain('', { OPENROUTER_CONFIG: configFile({}) }, 'SIGTERM');
    expect(run.code).toBe(0);
    const shutdown = run.lines.filter((l) => l.msg === 'stopping' || l.msg === 'stopped');
    expect(shutdown).toEqual([expect.objectContaining({ level: 30, msg: 'stopping', signal: 'SIGTERM' }), expect.objectContaining({ level: 30, msg: 'stopped', signal: 'SIGTERM', drainMs: expect.any(Number) })]);
    // The drain time covers the handle's whole close, as the close itself recorded its beginning and end.
    const at = (msg: string): number => Number(run.lines.find((l) => l.msg === msg)?.['at']);
    expect(shutdown[1]?.['drainMs']).toBeGreaterThanOrEqual(Math.floor(at('(closed)') - at('(closing)')));
  }, 60_000);

  it('stops a start that waits for a dependency when a signal comes meanwhile, and exits cleanly, logged', async () => {
    const run = await runMain(
      `const { DependencyWait } = require(${JSON.stringify(join(ROOT, 'libs/service-runtime/src/dependency-wait.ts'))});
       const wait = new DependencyWait({
         what: 'the usage store (ClickHouse)', location: 'http://127.0.0.1:9', setting: 'usage.clickhouse.url',
         attempt: async () => { throw new Error('connect ECONNREFUSED 127.0.0.1:9'); }, outage: () => 'connect ECONNREFUSED 127.0.0.1:9',
         logger, initialDelayMs: 60000, maxDelayMs: 60000, signal: stopping,
       });
       await wait.ready;`,
      { OPENROUTER_CONFIG: configFile({}) },
      'SIGTERM',
      { main: 'runStoppableServiceMain', signalOn: 'is not reachable' },
    );
    expect(run.code).toBe(0);
    expect(run.stderr).toBe('');
    const shutdown = run.lines.filter((l) => l.msg === 'stopping' || l.msg === 'stopped');
    expect(shutdown).toEqual([
      expect.objectContaining({ level: 30, msg: 'stopping', signal: 'SIGTERM', duringStart: true }),
      expect.objectContaining({ level: 30, msg: 'stopped', signal: 'SIGTERM', duringStart: true, reason: 'stopped while waiting for the usage store (ClickHouse) at http://127.0.0.1:9' }),
    ]);
  }, 60_000);

  it('closes a service that a signal came for while it started, once its start is done', async () => {
    const run = await runMain(`process.stdout.write('{"level":0,"msg":"(starting)"}\\n'); await new Promise((done) => setTimeout(done, 300));`, { OPENROUTER_CONFIG: configFile({}) }, 'SIGTERM', { signalOn: '"(starting)"' });
    expect(run.code).toBe(0);
    expect(run.lines.filter((l) => l.msg === 'stopping' || l.msg === 'stopped')).toEqual([
      expect.objectContaining({ msg: 'stopping', signal: 'SIGTERM', duringStart: true }),
      expect.objectContaining({ msg: 'stopped', signal: 'SIGTERM', drainMs: expect.any(Number) }),
    ]);
  }, 60_000);

  it('exits naming the listener and its setting when a port is taken', async () => {
    const server: Server = await new Promise((done) => {
      const s = createServer().listen(0, '127.0.0.1', () => done(s));
    });
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    try {
      const run = await runMain(
        `const { GrpcServerHandle } = require(${JSON.stringify(join(ROOT, 'libs/grpc/src/index.ts'))});
         await GrpcServerHandle.start(config.router.grpc.host, config.router.grpc.port, []);`,
        { OPENROUTER_CONFIG: configFile({ grpc: { host: '127.0.0.1', port } }) },
      );
      expect(run.code).toBe(1);
      expect(run.stderr).toContain(`router: the router gRPC listener cannot listen on 127.0.0.1:${port} (router.grpc.port): address already in use\n`);
    } finally {
      await new Promise((done) => server.close(done));
    }
  }, 60_000);
});
