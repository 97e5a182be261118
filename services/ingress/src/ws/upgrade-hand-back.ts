import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';

/** Whether the request asks to become a WebSocket (`Upgrade: websocket`, any case, possibly among others). */
export function asksForWebSocket(req: IncomingMessage): boolean {
  const upgrade = req.headers.upgrade;
  return typeof upgrade === 'string' && upgrade.split(',').some((protocol) => protocol.trim().toLowerCase() === 'websocket');
}

/**
 * Gives an upgrade request the gateway does not take (`Upgrade: h2c` from `curl --http2`, a
 * WebSocket on another path) back to the server's HTTP pipeline, to be answered as though it had
 * not asked to upgrade, which a server may always do.
 *
 * Once anything listens for 'upgrade', Node hands it every request carrying `Upgrade:`, with the
 * HTTP parser detached from the socket and the body unread (in `head` and the socket). Emitting a
 * 'request' for it would leave that body unread and the connection without a parser for the next
 * request. Instead, the request's head is written out again without its `Upgrade` header, put back
 * in front of the unread bytes, and the socket injected as a new connection (which 'connection' is
 * documented to allow): the server parses the request afresh, its body, keep-alive and timeouts
 * included.
 */
export function handBackToHttp(server: Server, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  socket.unshift(Buffer.concat([headWithoutUpgrade(req), head]));
  server.emit('connection', socket);
}

/**
 * The request line and headers as received (Node kept their bytes as latin1 strings, already
 * validated by its parser), minus `Upgrade`: without it Node's parser takes the request as plain
 * HTTP.
 */
function headWithoutUpgrade(req: IncomingMessage): Buffer {
  const lines = [`${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/${req.httpVersion}`];
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i] ?? '';
    if (name.toLowerCase() !== 'upgrade') lines.push(`${name}: ${req.rawHeaders[i + 1] ?? ''}`);
  }
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
}
