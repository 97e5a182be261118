import { createServer, type IncomingHttpHeaders } from 'node:http';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';

/**
 * The practical floor: the least a reverse proxy can do in Node (one undici pool, bodies streamed
 * both ways, no parsing). What the gateway costs above this is the gateway's own work.
 */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'host', 'proxy-connection', 'te', 'trailer']);

function forwardable(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
  return out;
}

const { values } = parseArgs({ options: { port: { type: 'string' }, upstream: { type: 'string' } } });
if (!values.upstream) throw new Error('--upstream is required');
const upstream = new URL(values.upstream);
const pool = new Pool(upstream.origin, { connections: 256, keepAliveTimeout: 60_000 });

const server = createServer((req, res) => {
  if (req.url === '/__floor/health') {
    res.end('ok');
    return;
  }
  pool.stream(
    { path: req.url ?? '/', method: req.method === 'POST' ? 'POST' : 'GET', headers: forwardable(req.headers), body: req.method === 'POST' ? req : null },
    ({ statusCode, headers }) => {
      res.writeHead(statusCode, forwardable(headers));
      return res;
    },
    (error) => {
      if (!error) return;
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' });
      res.end('{"error":{"message":"upstream failed","type":"api_error"}}');
    },
  );
});
server.keepAliveTimeout = 60_000;
server.listen(Number(values.port ?? 0), '127.0.0.1', () => {
  const address = server.address();
  console.log(`floor proxy on ${typeof address === 'object' && address ? address.port : '?'}`);
});
const stop = (): void => {
  server.close(() => void pool.close().then(() => process.exit(0)));
  server.closeAllConnections();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
