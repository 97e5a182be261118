import { once } from 'node:events';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createUpstreamDispatcher, discardRest, postJson, readServerSentEvents } from './http-upstream';

describe('reading a provider stream', () => {
  let server: Server;
  let url: URL;
  let connections = 0;
  const open: ServerResponse[] = [];
  const agent = createUpstreamDispatcher();

  beforeAll(async () => {
    server = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {"n":1}\n\n');
      if (req.url === '/endless') {
        open.push(res);
        return;
      }
      res.end('data: {"n":2}\n\ndata: [DONE]\n\n');
    });
    server.on('connection', () => connections++);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  });

  afterAll(async () => {
    for (const res of open) res.destroy();
    await agent.close();
    server.close();
  });

  const post = (path: string) =>
    postJson(agent, { url: new URL(path, url), headers: {}, body: '{}', timeoutMs: 5_000, signal: new AbortController().signal, provider: 'test' });

  it('leaves the body whole at the last event, so it ends on its own and the connection is reused', async () => {
    const before = connections;
    for (let i = 0; i < 10; i++) {
      const response = await post('/done');
      const data: string[] = [];
      for await (const event of readServerSentEvents(response.body, new AbortController().signal, 'test')) {
        if (event.data === '[DONE]') break;
        data.push(event.data);
      }
      expect(data).toEqual(['{"n":1}', '{"n":2}']);
      // Leaving the loop did not tear the body down (which would cost an AbortError and its stack).
      expect(response.body.destroyed).toBe(false);
      const ended = once(response.body, 'end');
      discardRest(response.body);
      await ended;
    }
    // One connection, or two when the pool dispatches the next request before it has taken the
    // first one back; a torn-down body would have cost a connection per request.
    expect(connections - before).toBeLessThanOrEqual(2);
  });

  it('lets the caller tear down a body it stops reading before the end', async () => {
    const response = await post('/endless');
    const closed = once(open[open.length - 1] ?? server, 'close');
    for await (const event of readServerSentEvents(response.body, new AbortController().signal, 'test')) {
      expect(event.data).toBe('{"n":1}');
      break;
    }
    expect(response.body.destroyed).toBe(false);
    response.body.destroy();
    await closed;
    expect(response.body.destroyed).toBe(true);
  });

  it('drops what a provider sends after its last event, and an error that ends it', async () => {
    const response = await post('/endless');
    const res = open[open.length - 1];
    for await (const event of readServerSentEvents(response.body, new AbortController().signal, 'test')) {
      expect(event.data).toBe('{"n":1}');
      break;
    }
    discardRest(response.body);
    const closed = new Promise((resolve) => response.body.once('close', resolve));
    res?.write('data: {"n":3}\n\n');
    res?.destroy();
    await closed;
    expect(response.body.destroyed).toBe(true);
  });
});
