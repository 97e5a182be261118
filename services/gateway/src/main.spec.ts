import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(__dirname, '../../..');

/** `npm start`'s program in a process of its own (the TypeScript sources compiled on load), until it exits. */
function runGateway(env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['-r', join(ROOT, 'bench/register.js'), join(ROOT, 'services/gateway/src/main.ts')], {
    cwd: ROOT,
    env: { PATH: process.env['PATH'] ?? '', OPENROUTER_DATA_DIR: mkdtempSync(join(tmpdir(), 'gateway-main-')), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
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
});
