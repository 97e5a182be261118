import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { asksForWebSocket, handBackToHttp } from './upgrade-hand-back';

/** An HTTP server that answers with what it parsed, and gives every upgrade request back to itself. */
async function echoServer(): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => res.end(JSON.stringify({ method: req.method, url: req.url, upgrade: req.headers.upgrade ?? null, body: Buffer.concat(chunks).toString() })));
  });
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => handBackToHttp(server, req, socket, head));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

/** A raw client connection: what it wrote is exactly what the server gets; what it received, as text. */
class RawClient {
  private received = '';
  private ended = false;
  private waiters: Array<() => void> = [];

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.wake(() => (this.received += chunk.toString('latin1'))));
    socket.on('close', () => this.wake(() => (this.ended = true)));
  }

  static async open(port: number): Promise<RawClient> {
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    return new RawClient(socket);
  }

  write(text: string): void {
    this.socket.write(text);
  }

  /** The (JSON) bodies of the complete responses received so far. */
  bodies(): Array<Record<string, unknown>> {
    const bodies: Array<Record<string, unknown>> = [];
    let rest = this.received;
    for (let end = rest.indexOf('\r\n\r\n'); end !== -1; end = rest.indexOf('\r\n\r\n')) {
      const length = Number(/content-length: (\d+)/i.exec(rest.slice(0, end))?.[1] ?? 0);
      const body = rest.slice(end + 4, end + 4 + length);
      if (body.length < length) break;
      bodies.push(JSON.parse(body) as Record<string, unknown>);
      rest = rest.slice(end + 4 + length);
    }
    return bodies;
  }

  get closed(): boolean {
    return this.ended;
  }

  async until(condition: () => boolean): Promise<void> {
    while (!condition()) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  destroy(): void {
    this.socket.destroy();
  }

  private wake(change: () => void): void {
    change();
    for (const wake of this.waiters.splice(0)) wake();
  }
}

describe('handBackToHttp', () => {
  let server: Server;
  let port: number;

  beforeAll(async () => ({ server, port } = await echoServer()));
  afterAll(async () => new Promise<void>((resolve) => server.close(() => resolve())));

  it('answers an h2c upgrade offer as plain HTTP, its body (already read with the head) included, and serves the next request on the connection', async () => {
    const client = await RawClient.open(port);
    try {
      // One write: the body arrives with the head, so Node hands it over as `head`.
      client.write('POST /v1/chat?x=1 HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\nContent-Length: 11\r\n\r\n{"a":"b c"}');
      await client.until(() => client.bodies().length === 1);
      expect(client.bodies()[0]).toEqual({ method: 'POST', url: '/v1/chat?x=1', upgrade: null, body: '{"a":"b c"}' });
      // A chunked body, in parts, on the same (kept-alive) connection.
      client.write('POST /second HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade: h2c\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nwhol');
      client.write('e\r\n1\r\n!\r\n0\r\n\r\n');
      await client.until(() => client.bodies().length === 2);
      expect(client.bodies()[1]).toEqual({ method: 'POST', url: '/second', upgrade: null, body: 'whole!' });
      expect(client.closed).toBe(false);
    } finally {
      client.destroy();
    }
  });

  it('closes the connection after the response when the request asks for it', async () => {
    const client = await RawClient.open(port);
    client.write('GET /models HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, close\r\nUpgrade: websocket\r\n\r\n');
    await client.until(() => client.closed);
    expect(client.bodies()).toEqual([{ method: 'GET', url: '/models', upgrade: null, body: '' }]);
  });
});

describe('asksForWebSocket', () => {
  const request = (upgrade: string | undefined): IncomingMessage => ({ headers: upgrade === undefined ? {} : { upgrade } }) as IncomingMessage;

  it('takes `websocket` in any case, alone or among other protocols, and nothing else', () => {
    expect(asksForWebSocket(request('websocket'))).toBe(true);
    expect(asksForWebSocket(request('WebSocket'))).toBe(true);
    expect(asksForWebSocket(request('h2c, websocket'))).toBe(true);
    expect(asksForWebSocket(request('h2c'))).toBe(false);
    expect(asksForWebSocket(request(undefined))).toBe(false);
  });
});
