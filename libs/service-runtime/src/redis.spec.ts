import { createServer, connect as connectTcp, type AddressInfo, type Server, type Socket } from 'node:net';
import tls from 'node:tls';
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

  it('checks each side\'s certificates against its configured name: the sentinels\' and the data nodes\' (the primary the sentinels give)', () => {
    const options = redisConnectionOptions(
      redisConfig({ url: 'rediss://:data-secret@gateway-primary', tlsServername: 'redis.internal', sentinel: { nodes: '10.0.0.1,10.0.0.2', tls: true, tlsServername: 'sentinel.internal' } }),
    );
    expect(options).toMatchObject({ sentinelTLS: { servername: 'sentinel.internal' }, tls: { servername: 'redis.internal' }, enableTLSForSentinelMode: true });
    // One side named only: the other is checked against its address.
    expect(redisConnectionOptions(redisConfig({ url: 'rediss://gateway-primary', tlsServername: 'redis.internal', sentinel: { nodes: 's1', tls: true } }))).toMatchObject({ sentinelTLS: {}, tls: { servername: 'redis.internal' } });
    expect(redisConnectionOptions(redisConfig({ url: 'rediss://gateway-primary', sentinel: { nodes: 's1', tls: true, tlsServername: 'sentinel.internal' } }))).toMatchObject({ sentinelTLS: { servername: 'sentinel.internal' }, tls: {} });
    // Without Sentinel, the server's.
    expect(redisConnectionOptions(redisConfig({ url: 'rediss://10.0.0.5:6380', tlsServername: 'redis.internal' }))).toEqual({ host: '10.0.0.5', port: 6380, db: 0, tls: { servername: 'redis.internal' } });
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

/**
 * A sentinel that names `primary` as the address of every primary asked for, over plain TCP:
 * TLS is taken out of the way (see below), only what ioredis asks of it matters.
 */
async function fakeSentinel(primary: { host: string; port: number }): Promise<Server> {
  const bulk = (s: string): string => `$${Buffer.byteLength(s)}\r\n${s}\r\n`;
  const server = createServer((socket: Socket) => {
    let pending = '';
    socket.on('data', (chunk: Buffer) => {
      pending += chunk.toString('latin1');
      // One command per RESP array of bulk strings: `*<n>` then `$<len>` and the argument, each on its line.
      for (;;) {
        const lines = pending.split('\r\n');
        const count = Number(lines[0]?.slice(1));
        if (!lines[0]?.startsWith('*') || lines.length < 2 * count + 2) return;
        const args = lines.slice(1, 2 * count + 1).filter((_, i) => i % 2 === 1);
        pending = lines.slice(2 * count + 1).join('\r\n');
        const command = args.join(' ').toLowerCase();
        if (command.startsWith('hello')) socket.write("-ERR unknown command 'HELLO'\r\n");
        else if (command.startsWith('sentinel get-master-addr-by-name')) socket.write(`*2\r\n${bulk(primary.host)}${bulk(String(primary.port))}`);
        else if (command.startsWith('sentinel')) socket.write('*0\r\n');
        else socket.write('+OK\r\n');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

describe('Redis over TLS through Sentinel', () => {
  it('checks the sentinels against their name and the primary they give against the data nodes\'', async () => {
    // The primary's port: nothing listens there, so the connection to it ends at once.
    const primary = { host: '127.0.0.1', port: 1 };
    const sentinel = await fakeSentinel(primary);
    const sentinelPort = (sentinel.address() as AddressInfo).port;
    const connections: tls.ConnectionOptions[] = [];
    // Every TLS connection ioredis opens is recorded, and made in plain TCP (no certificates here).
    const connect = jest.spyOn(tls, 'connect').mockImplementation(((options: tls.ConnectionOptions) => {
      connections.push(options);
      const socket = connectTcp({ host: options.host ?? '127.0.0.1', port: options.port ?? 0 });
      socket.once('connect', () => socket.emit('secureConnect'));
      return socket;
    }) as unknown as typeof tls.connect);
    const client = createRedisClient(
      redisConfig({ url: 'rediss://gateway-primary', tlsServername: 'redis.internal', sentinel: { nodes: `127.0.0.1:${sentinelPort}`, tls: true, tlsServername: 'sentinel.internal' } }),
      { lazyConnect: true, enableOfflineQueue: false, retryStrategy: () => null },
    );
    client.on('error', () => undefined);
    try {
      await client.connect().catch(() => undefined);
      expect(connections).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ host: '127.0.0.1', port: sentinelPort, servername: 'sentinel.internal' }),
          expect.objectContaining({ host: primary.host, port: primary.port, servername: 'redis.internal' }),
        ]),
      );
      expect(connections.every((c) => c.servername === (c.port === sentinelPort ? 'sentinel.internal' : 'redis.internal'))).toBe(true);
    } finally {
      client.disconnect();
      connect.mockRestore();
      await new Promise((resolve) => sentinel.close(resolve));
    }
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
