import { once } from 'node:events';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';

export interface ForwardProxyOptions {
  /** `user:password` the proxy asks for (Basic, `Proxy-Authorization`); unset: anyone may use it. */
  credentials?: string;
  /** Refuse every tunnel and request with this status (403: the proxy's policy forbids the host). */
  refuseWith?: number;
  /** Host names the proxy resolves itself (name → address), as a proxy with its own DNS does. */
  hosts?: Record<string, string>;
}

/** What the proxy carried: a CONNECT tunnel to `host:port`, or a request forwarded by its absolute URL. */
export interface ProxiedCall {
  kind: 'tunnel' | 'forward';
  /** `host:port` of a tunnel; the absolute URL of a forwarded request. */
  target: string;
  /** The status the proxy answered itself (200 for a tunnel it opened, 407, 403…); for a forward it carried, the upstream's. */
  status: number;
}

export interface RunningForwardProxy {
  /** `http://127.0.0.1:PORT`, with the credentials in it when the proxy asks for them. */
  readonly url: string;
  readonly port: number;
  /** Every tunnel and request, in arrival order, refused ones included. */
  readonly calls: ProxiedCall[];
  /** The calls the proxy carried (not refused). */
  carried(): ProxiedCall[];
  close(): Promise<void>;
}

/**
 * A forward proxy on loopback, as corporate networks run them: https through CONNECT tunnels,
 * http forwarded by absolute URL, and optionally Basic proxy authentication (407 without it).
 */
export async function startForwardProxy(options: ForwardProxyOptions = {}): Promise<RunningForwardProxy> {
  const calls: ProxiedCall[] = [];
  const sockets = new Set<Socket | Duplex>();
  const expected = options.credentials === undefined ? undefined : `Basic ${Buffer.from(options.credentials).toString('base64')}`;

  /** The status the proxy refuses with, or undefined when it lets the call through. */
  const refusal = (req: IncomingMessage): number | undefined => {
    if (expected !== undefined && req.headers['proxy-authorization'] !== expected) return 407;
    return options.refuseWith;
  };

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const target = req.url ?? '';
    const refused = refusal(req);
    if (refused !== undefined || !/^http:\/\//.test(target)) {
      const status = refused ?? 400;
      calls.push({ kind: 'forward', target, status });
      res.writeHead(status, status === 407 ? { 'proxy-authenticate': 'Basic realm="proxy"' } : {}).end();
      return;
    }
    const call: ProxiedCall = { kind: 'forward', target, status: 0 };
    calls.push(call);
    const headers = { ...req.headers };
    delete headers['proxy-authorization'];
    delete headers['proxy-connection'];
    const url = new URL(target);
    const address = options.hosts?.[url.hostname];
    const upstream = httpRequest({ host: address ?? url.hostname, port: url.port || 80, path: url.pathname + url.search, method: req.method, headers }, (answer) => {
      call.status = answer.statusCode ?? 0;
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => {
      call.status = 502;
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(upstream);
  });

  server.on('connect', (req: IncomingMessage, client: Duplex, head: Buffer) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => undefined);
    const target = req.url ?? '';
    const refused = refusal(req);
    if (refused !== undefined) {
      calls.push({ kind: 'tunnel', target, status: refused });
      const challenge = refused === 407 ? 'Proxy-Authenticate: Basic realm="proxy"\r\n' : '';
      client.end(`HTTP/1.1 ${refused} Refused\r\n${challenge}Content-Length: 0\r\n\r\n`);
      return;
    }
    const [host = '', port = '443'] = target.split(/:(?=\d+$)/);
    const call: ProxiedCall = { kind: 'tunnel', target, status: 0 };
    calls.push(call);
    const name = host.replace(/^\[|\]$/g, '');
    const upstream = connect(Number(port), options.hosts?.[name] ?? name, () => {
      call.status = 200;
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => {
      if (call.status === 0) {
        call.status = 502;
        client.end('HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n');
      } else client.destroy();
    });
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const [user = '', ...password] = (options.credentials ?? '').split(':');
  const auth = options.credentials === undefined ? '' : `${encodeURIComponent(user)}:${encodeURIComponent(password.join(':'))}@`;
  return {
    url: `http://${auth}127.0.0.1:${port}`,
    port,
    calls,
    carried: () => calls.filter((c) => c.status !== 407 && c.status !== options.refuseWith),
    async close() {
      for (const socket of sockets) socket.destroy();
      server.close();
      await once(server, 'close').catch(() => undefined);
    },
  };
}
