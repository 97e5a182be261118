import { accessSchema } from '@openrouter/config';
import { createRedisClient, hideCredentials, reconnectOnReadOnly, redisConnectionOptions } from './redis';

const redisConfig = (redis: object) => accessSchema.parse({ redis }).redis;

describe('redisConnectionOptions', () => {
  it('connects to the server of a URL, with its credentials, database and TLS', () => {
    expect(redisConnectionOptions(redisConfig({ url: 'redis://redis.internal' }))).toEqual({ host: 'redis.internal', port: 6379, db: 0 });
    expect(redisConnectionOptions(redisConfig({ url: 'rediss://app:p%40ss@10.0.0.5:6380/2' }))).toEqual({ host: '10.0.0.5', port: 6380, db: 2, username: 'app', password: 'p@ss', tls: {} });
  });

  it('asks the sentinels for the primary the URL names, with each side its own credentials and TLS', () => {
    const options = redisConnectionOptions(
      redisConfig({ url: 'rediss://:data-secret@gateway-primary/1', sentinel: { nodes: 's1:26379,s2:26380', username: 'watcher', password: 'sentinel-secret', tls: true } }),
    );
    expect(options).toEqual({
      sentinels: [
        { host: 's1', port: 26379 },
        { host: 's2', port: 26380 },
      ],
      name: 'gateway-primary',
      role: 'master',
      db: 1,
      password: 'data-secret',
      sentinelUsername: 'watcher',
      sentinelPassword: 'sentinel-secret',
      sentinelTLS: {},
      tls: {},
      enableTLSForSentinelMode: true,
      sentinelCommandTimeout: 2_000,
      failoverDetector: true,
    });
  });

  it('without TLS or passwords sets none, and sentinels without nodes are no Sentinel', () => {
    const options = redisConnectionOptions(redisConfig({ url: 'redis://gateway-primary', sentinel: { nodes: 's1' } }));
    expect(Object.keys(options).filter((k) => /tls|password|username/i.test(k))).toEqual([]);
    expect(redisConnectionOptions({ url: 'redis://127.0.0.1:6390', sentinel: { nodes: [], username: '', password: '', tls: false } })).toEqual({ host: '127.0.0.1', port: 6390, db: 0 });
  });

  it('refuses a URL the schema would refuse (a configuration built in code) without quoting it', () => {
    expect(() => redisConnectionOptions({ url: 'redis://:top-secret@primary:6379', sentinel: { nodes: [{ host: 's1', port: 26379 }], username: '', password: '', tls: false } })).toThrow(
      /^access\.redis\.url has a port, but with access\.redis\.sentinel\.nodes set/,
    );
    expect(() => redisConnectionOptions({ url: 'http://:top-secret@primary' })).toThrow(expect.objectContaining({ message: expect.not.stringContaining('top-secret') }));
  });
});

describe('reconnectOnReadOnly', () => {
  it('reconnects on READONLY (a demoted primary), resending only for a client that queues while away', () => {
    const readOnly = new Error("READONLY You can't write against a read only replica. script: 88c9, on @user_script:1.");
    expect(reconnectOnReadOnly(true)(readOnly)).toBe(2);
    expect(reconnectOnReadOnly(false)(readOnly)).toBe(1);
    expect(reconnectOnReadOnly(true)(new Error('NOSCRIPT No matching script. Please use EVAL.'))).toBe(false);
    expect(reconnectOnReadOnly(true)(new Error('WRONGTYPE Operation against a key holding the wrong kind of value'))).toBe(false);
  });
});

describe('hideCredentials', () => {
  it('takes the password off the error of a connection refused for its credentials, and leaves other commands be', () => {
    const refused = Object.assign(new Error('WRONGPASS invalid username-password pair or user is disabled.'), { command: { name: 'hello', args: ['3', 'AUTH', 'default', 'data-secret'] } });
    const auth = Object.assign(new Error('WRONGPASS'), { command: { name: 'auth', args: ['data-secret'] } });
    const other = Object.assign(new Error('WRONGTYPE'), { command: { name: 'get', args: ['or:key'] } });
    for (const error of [refused, auth, other, new Error('plain'), 'not an error']) hideCredentials(error);
    expect(JSON.stringify([refused, auth])).not.toContain('data-secret');
    expect(refused.command.args).toEqual(['[redacted]']);
    expect(other.command.args).toEqual(['or:key']);
  });
});

describe('createRedisClient', () => {
  it("keeps the owner's behaviour and adds where to connect and how to follow a failover", () => {
    const retryStrategy = (attempt: number): number => attempt * 100;
    const client = createRedisClient(redisConfig({ url: 'redis://gateway-primary', sentinel: { nodes: '127.0.0.1:1' } }), {
      lazyConnect: true,
      enableOfflineQueue: false,
      commandTimeout: 1_000,
      retryStrategy,
    });
    try {
      expect(client.options).toMatchObject({ lazyConnect: true, enableOfflineQueue: false, commandTimeout: 1_000, retryStrategy, name: 'gateway-primary', failoverDetector: true });
      expect(client.options.reconnectOnError?.(new Error('READONLY'))).toBe(1);
      expect(client.status).toBe('wait');
      // Credentials are taken off an error before its owner's listeners see it.
      expect(client.listeners('error')[0]).toBe(hideCredentials);
    } finally {
      client.disconnect();
    }
  });
});
