import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(__dirname, '../../..');

/**
 * `npm start`'s program in a process of its own (the TypeScript sources compiled on load), until it
 * exits. With `signal`, it is sent that signal once its output shows `signalOn`.
 */
function runGateway(env: Record<string, string>, signal?: { signal: NodeJS.Signals; signalOn: string }): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['-r', join(ROOT, 'bench/register.js'), join(ROOT, 'services/gateway/src/main.ts')], {
    cwd: ROOT,
    env: { PATH: process.env['PATH'] ?? '', OPENROUTER_DATA_DIR: mkdtempSync(join(tmpdir(), 'gateway-main-')), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let signalled = false;
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    if (signal && !signalled && stdout.includes(signal.signalOn)) signalled = child.kill(signal.signal);
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((done) => child.on('close', (code) => done({ code, stdout, stderr })));
}

function hold(): Promise<{ server: Server; port: number }> {
  return new Promise((done) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => done({ server, port: (server.address() as { port: number }).port }));
  });
}

describe('the embedded gateway as the main program', () => {
  it('names the listener and its setting when its port is taken, says which configuration it loaded, and exits 1', async () => {
    const taken = await hold();
    try {
      const run = await runGateway({ OPENROUTER_SIMULATOR_PORT: String(taken.port), PORT: '0' });
      expect(run.code).toBe(1);
      expect(run.stderr.trim()).toBe(`the simulated provider cannot listen on 127.0.0.1:${taken.port} (gateway.simulator.port): address already in use`);
      expect(run.stdout).toContain('"configPath":"' + join(ROOT, 'deploy/config/embedded.yaml') + '","defaultConfig":true,"msg":"configuration loaded"');
    } finally {
      taken.server.close();
    }
  }, 60_000);

  it('lists every problem of its configuration with its path, quoting no secret, and exits 1 without a stack trace', async () => {
    const config = join(mkdtempSync(join(tmpdir(), 'gateway-config-')), 'config.yaml');
    writeFileSync(
      config,
      [
        'version: 1',
        'ingress: { http: { port: 8080 }, internalHttp: { port: 8080 }, router: "127.0.0.1:1" }',
        'router: { grpc: { port: 1 }, http: { port: 0 }, adapters: { default: "127.0.0.1:2" } }',
        'adapter: { grpc: { port: 2 }, http: { port: 0 } }',
        'billing: { http: { port: 0 } }',
        'alerting: { http: { port: 0 } }',
        'providers: { sim: { type: openai, baseUrl: "http://127.0.0.1:9/v1", apiKey: "${SIM_KEY}" } }',
        'models: [{ id: m, deployments: [{ provider: sim, model: up }] }]',
        'budgets: { list: [{ id: b, scope: { org: acme }, period: daily, amount: "${BUDGET_AMOUNT}" }] }',
        '',
      ].join('\n'),
    );
    const run = await runGateway({ OPENROUTER_CONFIG: config, BUDGET_AMOUNT: '2,500.00' });
    expect(run.code).toBe(1);
    expect(run.stderr.trim()).toBe(
      [
        `invalid configuration (${config}):`,
        '  - providers.sim.apiKey: environment variable SIM_KEY is not set',
        '  - budgets.list[0].amount: must be a non-negative decimal number, e.g. "0.15"',
        '  - ingress.internalHttp.port: 8080 is the port of ingress.http too: each listener of the ingress needs a port of its own',
      ].join('\n'),
    );
    // A value YAML reads as a tag (a password starting with "!") is refused, never printed, not even in a warning.
    writeFileSync(config, 'version: 1\nproviders: { sim: { type: openai, baseUrl: "http://127.0.0.1:9/v1", apiKey: !s3cr3t-key } }\n');
    const tagged = await runGateway({ OPENROUTER_CONFIG: config });
    expect(tagged.code).toBe(1);
    expect(tagged.stderr.trim()).toBe(`invalid configuration (${config}):\n  - not valid YAML at line 2, column 77: an unknown tag, or one that does not fit its value (a plain value starting with "!" is a tag in YAML: quote the value)`);
  }, 60_000);

  it('stops gracefully on a signal that comes while it starts: it closes once started, logged, and exits 0', async () => {
    const run = await runGateway({ OPENROUTER_SIMULATOR_PORT: '0', PORT: '0' }, { signal: 'SIGTERM', signalOn: '"msg":"configuration loaded"' });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const shutdown = run.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l['service'] === 'gateway' && (l['msg'] === 'stopping' || l['msg'] === 'stopped'));
    expect(shutdown).toEqual([
      expect.objectContaining({ msg: 'stopping', signal: 'SIGTERM', duringStart: true }),
      expect.objectContaining({ msg: 'stopped', signal: 'SIGTERM', drainMs: expect.any(Number) }),
    ]);
  }, 60_000);
});
