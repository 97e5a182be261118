import { createServer } from 'node:net';
import { freePort, freePorts } from '../test/support/ports';

describe('freePorts (the test and benchmark harnesses choose every listener port here)', () => {
  it('gives distinct ports in one call, and none that an earlier call gave', async () => {
    const first = await freePorts(40);
    const second = await freePorts(40);
    const single = await Promise.all(Array.from({ length: 20 }, () => freePort()));
    const all = [...first, ...second, ...single];
    expect(all).toHaveLength(100);
    expect(new Set(all).size).toBe(100);
    expect(all.every((port) => Number.isInteger(port) && port > 0 && port < 65_536)).toBe(true);
  });

  it('gives ports that can be listened on', async () => {
    const ports = await freePorts(3);
    const servers = await Promise.all(
      ports.map(
        (port) =>
          new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
            const server = createServer();
            server.once('error', reject);
            server.listen(port, '127.0.0.1', () => resolve(server));
          }),
      ),
    );
    expect(servers.map((server) => (server.address() as { port: number }).port)).toEqual(ports);
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  });
});
