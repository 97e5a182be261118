import { createServer, type Server } from 'node:net';

/** Ports this process has handed out: the OS may offer a just-closed port again, and two listeners must never share one. */
const issued = new Set<number>();

/** A loopback port free at the time of asking, never one this process handed out before. */
export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  return port;
}

/** A tuple of `N` numbers, so that `const [a, b] = await freePorts(2)` types `a` and `b` as numbers. */
type Ports<N extends number, T extends number[] = []> = T['length'] extends N ? T : Ports<N, [...T, number]>;

/**
 * `count` distinct loopback ports free at the time of asking. All are held open together while they are
 * chosen, so the OS cannot offer one twice, and none repeats a port handed out earlier in this process.
 */
export async function freePorts<N extends number>(count: N): Promise<Ports<N>> {
  const held: Server[] = [];
  const ports: number[] = [];
  try {
    for (let attempts = 0; ports.length < count; attempts++) {
      if (attempts > count + 1000) throw new Error(`no ${count} free loopback ports found`);
      const server = await listen();
      held.push(server);
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      if (port > 0 && !issued.has(port)) {
        issued.add(port);
        ports.push(port);
      }
    }
  } finally {
    await Promise.all(held.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  }
  return ports as Ports<N>;
}

function listen(): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}
