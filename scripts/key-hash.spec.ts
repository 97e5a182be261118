import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { hashApiKey } from '../services/ingress/src/access/api-key';

const script = join(__dirname, 'key-hash.mjs');

describe('npm run key:hash', () => {
  it('prints the hash under which the gateway looks a key up', () => {
    const secret = 'sécret-of-the-deployment-0001';
    const key = 'sk-or-v1-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG';
    expect(execFileSync(process.execPath, [script, secret, key], { encoding: 'utf8' })).toBe(`${hashApiKey(secret, key)}\n`);
  });

  it('explains its arguments when one is missing', () => {
    const run = spawnSync(process.execPath, [script, 'only-the-secret'], { encoding: 'utf8' });
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('usage: npm run --silent key:hash -- <access.keyHashSecret> <key>');
    expect(run.stdout).toBe('');
  });
});
