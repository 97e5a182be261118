import { createServer, type Server } from 'node:http';

export interface ReceivedWebhook {
  path: string;
  headers: Record<string, string>;
  body: string;
  json: unknown;
  at: number;
}

/** A local webhook receiver on 127.0.0.1 that records every POST; `failNext` answers 500s first. */
export class WebhookReceiver {
  readonly received: ReceivedWebhook[] = [];
  private failures = 0;

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(): Promise<WebhookReceiver> {
    const holder: { receiver?: WebhookReceiver } = {};
    const server = createServer((req, res) => {
      const receiver = holder.receiver;
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (!receiver) return res.writeHead(503).end();
        if (receiver.failures > 0) {
          receiver.failures--;
          res.writeHead(500).end('try again');
          return;
        }
        const body = Buffer.concat(chunks).toString('utf8');
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
        let json: unknown;
        try {
          json = JSON.parse(body);
        } catch {
          json = undefined;
        }
        receiver.received.push({ path: req.url ?? '/', headers, body, json, at: Date.now() });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    const address = server.address();
    holder.receiver = new WebhookReceiver(server, typeof address === 'object' && address ? address.port : 0);
    return holder.receiver;
  }

  url(path = '/hook'): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  /** The next `count` deliveries are answered 500. */
  failNext(count: number): void {
    this.failures = count;
  }

  on(path: string): ReceivedWebhook[] {
    return this.received.filter((r) => r.path === path);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((done) => this.server.close(() => done()));
  }
}
