import type { Redis } from 'ioredis';

/** What a store sent to and read from Redis through a probed connection. */
export interface RedisProbe {
  /** The connection, to give the store. */
  redis: Redis;
  /** The largest write to the socket (a command, or a transaction's commands), in bytes. */
  largestWrite(): number;
  /** The largest value in any reply (a bulk string, or one of an array's or a transaction's), in bytes. */
  largestReply(): number;
  /** How many times each command method was called on the connection. */
  calls(name: string): number;
}

/** The size of the largest bulk string in a reply. */
function largest(value: unknown): number {
  if (Buffer.isBuffer(value) || typeof value === 'string') return value.length;
  if (Array.isArray(value)) return value.reduce((most: number, item: unknown) => Math.max(most, largest(item)), 0);
  return 0;
}

/**
 * Watches `connection` (connected): every write to its socket, and every reply to a command called
 * on it, a transaction's included. `before` runs before each call of a command method, with its
 * arguments, awaited (to look at Redis from another connection while a store is halfway through).
 */
export async function probeRedis(connection: Redis, before: (name: string, args: readonly unknown[]) => Promise<void> = async () => undefined): Promise<RedisProbe> {
  await connection.ping();
  let write = 0;
  let reply = 0;
  const counts = new Map<string, number>();
  const stream = connection.stream;
  const send = stream.write.bind(stream) as (chunk: unknown, ...rest: unknown[]) => boolean;
  stream.write = ((chunk: unknown, ...rest: unknown[]): boolean => {
    write = Math.max(write, largest(chunk));
    return send(chunk, ...rest);
  }) as typeof stream.write;
  const seen = <T>(result: T): T => {
    reply = Math.max(reply, largest(result));
    return result;
  };
  const redis = new Proxy(connection, {
    get(target, name, receiver) {
      const value: unknown = Reflect.get(target, name, receiver);
      if (typeof name !== 'string' || typeof value !== 'function') return value;
      if (name === 'multi' || name === 'pipeline') {
        return (...args: unknown[]) => {
          const pipeline = (value as (...a: unknown[]) => { exec: () => Promise<unknown> }).apply(target, args);
          const exec = pipeline.exec.bind(pipeline);
          pipeline.exec = async () => seen(await exec());
          return pipeline;
        };
      }
      return async (...args: unknown[]) => {
        counts.set(name, (counts.get(name) ?? 0) + 1);
        await before(name, args);
        return seen(await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args));
      };
    },
  });
  return { redis, largestWrite: () => write, largestReply: () => reply, calls: (name) => counts.get(name) ?? 0 };
}
