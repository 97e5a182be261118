import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify as stringifyYaml } from 'yaml';
import { parseConfig } from './config-loader';
import { configWarnings, DEVELOPMENT_KEY_HASH_SECRET, type ConfigWarning } from './config-warnings';
import { MINIMAL_CONFIG } from './minimal-config.testing';
import { loadConfig } from './runtime-env';

const OWN_SECRET = 'a0c1e2f3a4b5c6d7e8f9a0b1c2d3e4f5';

describe('configuration warnings', () => {
  it('name the published development keyHashSecret when Redis holds sealed data, and say how to make a secret', () => {
    const warnings = configWarnings(parseConfig({ ...MINIMAL_CONFIG, access: { redis: { url: 'redis://redis:6379' } } }, {}));
    expect(warnings).toEqual([{ path: 'access.keyHashSecret', message: expect.stringContaining('anyone who can read Redis can decrypt them') }]);
    expect(warnings[0]?.message).toContain('openssl rand -hex 32');
    expect(warnings[0]?.message).not.toContain(DEVELOPMENT_KEY_HASH_SECRET);
  });

  it('say nothing of the default without Redis (nothing sealed leaves the process), or of a secret of its own', () => {
    expect(configWarnings(parseConfig(MINIMAL_CONFIG, {}))).toEqual([]);
    expect(configWarnings(parseConfig({ ...MINIMAL_CONFIG, access: { keyHashSecret: OWN_SECRET, redis: { url: 'redis://redis:6379' } } }, {}))).toEqual([]);
  });

  it('know the default the schema has', () => {
    expect(parseConfig(MINIMAL_CONFIG, {}).access.keyHashSecret).toBe(DEVELOPMENT_KEY_HASH_SECRET);
  });

  it('are given out when a service loads its configuration file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'openrouter-config-warnings-'));
    try {
      const file = join(dir, 'gateway.yaml');
      writeFileSync(file, stringifyYaml({ ...MINIMAL_CONFIG, access: { keyHashSecret: '${OPENROUTER_KEY_HASH_SECRET:-open-router-development-secret}', redis: { url: '${REDIS_URL:-}' } } }));
      const given: ConfigWarning[] = [];
      loadConfig({ configPath: file, vars: { REDIS_URL: 'redis://redis:6379' } }, (warning) => given.push(warning));
      expect(given.map((w) => w.path)).toEqual(['access.keyHashSecret']);
      given.length = 0;
      loadConfig({ configPath: file, vars: { REDIS_URL: 'redis://redis:6379', OPENROUTER_KEY_HASH_SECRET: OWN_SECRET } }, (warning) => given.push(warning));
      loadConfig({ configPath: file, vars: {} }, (warning) => given.push(warning));
      expect(given).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('are printed on standard error as a process warning by default, before any logger exists', () => {
    const dir = mkdtempSync(join(tmpdir(), 'openrouter-config-warnings-'));
    const emit = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      const file = join(dir, 'gateway.yaml');
      writeFileSync(file, stringifyYaml({ ...MINIMAL_CONFIG, access: { redis: { url: 'redis://redis:6379' } } }));
      loadConfig({ configPath: file, vars: {} });
      expect(emit).toHaveBeenCalledWith(expect.stringMatching(/^access\.keyHashSecret is the published development default while access\.redis\.url is set/), { type: 'ConfigurationWarning', code: 'OPENROUTER_CONFIG' });
    } finally {
      emit.mockRestore();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
