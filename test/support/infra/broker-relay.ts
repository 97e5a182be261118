import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { readyAnswer } from './ready-probe';
import { waitFor } from './wait-for';

/**
 * A TCP relay to the shared broker, listening only once asked: the broker a service is configured
 * with is not reachable until then, as a Kafka still starting (or restarting) during a rollout.
 */
export class BrokerRelay {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  /** Connections taken so far. */
  accepted = 0;

  constructor(private readonly broker: string) {}

  listen(port: number): Promise<void> {
    if (this.server) return Promise.resolve();
    const [host = '127.0.0.1', target = '0'] = this.broker.split(':');
    const server = createServer((client) => {
      this.accepted++;
      const upstream = createConnection({ host, port: Number(target) });
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
        socket.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    this.server = server;
    return new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  }

  /** Whether no connection through the relay is open. */
  get idle(): boolean {
    return this.sockets.size === 0;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((done) => (this.server ? this.server.close(() => done()) : done()));
  }
}

/** `/ready` of `service` once its wait for Kafka has failed `tries` times, the start still under way (it throws what the start failed with). */
export async function waitingForKafka(service: string, httpPort: number, tries: number, failure: () => unknown): Promise<NonNullable<Awaited<ReturnType<typeof readyAnswer>>>> {
  return waitFor(async () => {
    if (failure() !== undefined) throw failure();
    const answer = await readyAnswer(httpPort);
    return answer && Number(answer.body.details?.['kafka']?.['tries']) >= tries ? answer : undefined;
  }, { timeoutMs: 60_000, what: `${service} not ready after ${tries} tries to reach Kafka` });
}
