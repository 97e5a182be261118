import { withoutCredentials } from './clickhouse-client';

describe('withoutCredentials', () => {
  it('drops the user and password a ClickHouse URL may carry, for logs', () => {
    expect(withoutCredentials('http://openrouter:S3cretPassw0rd@clickhouse:8123/openrouter')).toBe('http://clickhouse:8123/openrouter');
    expect(withoutCredentials('https://clickhouse.internal:8443')).toBe('https://clickhouse.internal:8443/');
  });

  it('shows only the scheme of a URL it cannot read', () => {
    expect(withoutCredentials('http://openrouter:ab/c+d=@clickhouse:8123/openrouter')).not.toContain('ab/c');
  });
});
