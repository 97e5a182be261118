import { accessSchema } from './access.schema';

/** `access.redis.tlsServername` and `access.redis.sentinel.tlsServername`. */
describe('access.redis TLS server names', () => {
  const issues = (redis: object): string[] => {
    const result = accessSchema.safeParse({ redis });
    return result.success ? [] : result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };

  it('takes a name for each side speaking TLS: the data nodes (rediss://) and the sentinels (sentinel.tls)', () => {
    const redis = accessSchema.parse({ redis: { url: 'rediss://:secret@mymaster', tlsServername: 'redis.internal', sentinel: { nodes: '10.0.0.1', tls: 'true', tlsServername: 'sentinel.internal' } } }).redis;
    expect(redis.tlsServername).toBe('redis.internal');
    expect(redis.sentinel?.tlsServername).toBe('sentinel.internal');
    expect(issues({ url: 'rediss://10.0.0.5:6380', tlsServername: 'Redis-1.prod.example.com' })).toEqual([]);
    // Empty (an unset environment variable): no name, wherever it is.
    expect(issues({ url: 'redis://redis:6379', tlsServername: '', sentinel: { nodes: '', tlsServername: '' } })).toEqual([]);
  });

  it('refuses a name that is not a DNS name, naming the key', () => {
    for (const name of ['10.0.0.5', '::1', 'redis.internal:6380', 'rediss://redis.internal', '-redis.internal', 'redis..internal', `${'a'.repeat(64)}.internal`]) {
      expect(issues({ url: 'rediss://redis.internal', tlsServername: name })).toEqual(['redis.tlsServername: is not a DNS name: write the name the certificate carries (e.g. redis.internal), not an address']);
    }
    expect(issues({ url: 'rediss://mymaster', sentinel: { nodes: 's1', tls: true, tlsServername: '10.0.0.1' } })).toEqual([
      'redis.sentinel.tlsServername: is not a DNS name: write the name the certificate carries (e.g. redis.internal), not an address',
    ]);
  });

  it('refuses a name for a side that does not speak TLS', () => {
    expect(issues({ url: 'redis://redis.internal', tlsServername: 'redis.internal' })).toEqual(['redis.tlsServername: applies with TLS to the data nodes only (an access.redis.url starting with rediss://)']);
    expect(issues({ tlsServername: 'redis.internal' })).toEqual(['redis.tlsServername: applies with TLS to the data nodes only (an access.redis.url starting with rediss://)']);
    expect(issues({ url: 'rediss://mymaster', sentinel: { nodes: 's1', tlsServername: 'sentinel.internal' } })).toEqual(['redis.sentinel.tlsServername: applies with TLS to the sentinels only (access.redis.sentinel.tls)']);
    expect(issues({ url: 'rediss://redis.internal', sentinel: { tls: true, tlsServername: 'sentinel.internal' } })).toEqual([
      'redis.sentinel.tls: applies with access.redis.sentinel.nodes only (no sentinel is named)',
      'redis.sentinel.tlsServername: applies with access.redis.sentinel.nodes only (no sentinel is named)',
    ]);
    // A URL that is refused says why on its own.
    expect(issues({ url: 'http://redis.internal', tlsServername: 'redis.internal' })).toEqual(['redis.url: must start with redis:// or rediss:// (redis://[user:password@]host[:port][/db] (rediss:// for TLS))']);
  });
});
