import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clickhouseSchema } from '@openrouter/config';
import { createLogger } from '@openrouter/observability';
import { createClickHouse, withoutCredentials } from './clickhouse-client';

/**
 * A loopback port nothing listens on, ever: a port freed by a closed server may be taken by
 * another process of a busy test run, and a request that reached it would get a stranger's answer.
 */
const REFUSED_PORT = 1;

describe('withoutCredentials', () => {
  it('drops the user and password a ClickHouse URL may carry, for logs', () => {
    expect(withoutCredentials('http://openrouter:S3cretPassw0rd@clickhouse:8123/openrouter')).toBe('http://clickhouse:8123/openrouter');
    expect(withoutCredentials('https://clickhouse.internal:8443')).toBe('https://clickhouse.internal:8443/');
  });

  it('drops the query string, where ClickHouse also takes a password and headers', () => {
    expect(withoutCredentials('http://clickhouse:8123/?user=openrouter&password=S3cret&http_header_x=token')).toBe('http://clickhouse:8123/');
  });

  it('shows only the scheme of a URL it cannot read', () => {
    expect(withoutCredentials('http://openrouter:ab/c+d=@clickhouse:8123/openrouter')).not.toContain('ab/c');
  });
});

describe('createClickHouse against a server that is not there', () => {
  const config = (url: string) => clickhouseSchema.parse({ url, database: 'openrouter', requestTimeoutMs: 2_000 });

  it("keeps the client's own error dump off the console: the caller gets the error, the service's log has it at debug", async () => {
    const lines: Array<Record<string, unknown>> = [];
    const logger = createLogger('billing', 'debug', { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    const printed = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    const target = createClickHouse(config(`http://127.0.0.1:${REFUSED_PORT}`), '.', logger);
    try {
      await expect(target.client.query({ query: 'SELECT 1' })).rejects.toThrow(/ECONNREFUSED/);
      expect(printed).not.toHaveBeenCalled();
      expect(lines.some((l) => l['component'] === 'clickhouse-client' && l['level'] === 20)).toBe(true);
      expect(lines.filter((l) => (l['level'] as number) >= 40)).toEqual([]);
    } finally {
      printed.mockRestore();
      await target.client.close();
    }
  });

  it('is silent without a logger', async () => {
    const printed = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    const target = createClickHouse(config(`http://127.0.0.1:${REFUSED_PORT}`), '.');
    try {
      await expect(target.client.query({ query: 'SELECT 1' })).rejects.toThrow(/ECONNREFUSED/);
      expect(printed).not.toHaveBeenCalled();
    } finally {
      printed.mockRestore();
      await target.client.close();
    }
  });
});

describe('createClickHouse with an embedded data directory it cannot make', () => {
  it('refuses with a configuration error naming the setting, not a bare ENOTDIR', () => {
    const dir = mkdtempSync(join(tmpdir(), 'chdb-dir-spec-'));
    try {
      const file = join(dir, 'a-file');
      writeFileSync(file, 'x');
      const config = clickhouseSchema.parse({ embedded: { path: join(file, 'clickhouse') } });
      expect(() => createClickHouse(config, dir)).toThrow(expect.objectContaining({ name: 'ConfigError', source: expect.stringContaining('usage.clickhouse.embedded.path') as string }) as Error);
      expect(() => createClickHouse(config, dir)).toThrow(`the embedded ClickHouse cannot use the directory ${join(file, 'clickhouse')}: ENOTDIR`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
