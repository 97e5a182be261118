import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { OwnApiClient } from './own-api';

/** A loopback server answering each request with `answer`. */
async function serve(answer: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ server: Server; port: number }> {
  const server = createServer(answer);
  await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening));
  return { server, port: (server.address() as AddressInfo).port };
}

const call = { method: 'POST' as const, url: '/v1/responses', headers: { 'content-type': 'application/json' }, payload: '{}' };

describe('OwnApiClient', () => {
  let server: Server | undefined;
  let client: OwnApiClient | undefined;
  afterEach(async () => {
    await client?.close();
    await new Promise((closed) => (server ? server.close(closed) : closed(undefined)));
    server = undefined;
  });

  it('hands a streamed answer’s events on as they arrive, whole however the body is cut, and in order', async () => {
    const events = Array.from({ length: 5 }, (_, i) => `event: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":"part ${i} ✓"}\n\n`).join('');
    const bytes = Buffer.from(events, 'utf8');
    ({ server } = await serve((_, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
      // Cut anywhere, a multi-byte character and an event's lines split across writes.
      let at = 0;
      const next = (): void => {
        if (at >= bytes.length) return void res.end();
        res.write(bytes.subarray(at, at + 7));
        at += 7;
        setImmediate(next);
      };
      next();
    }));
    client = new OwnApiClient('127.0.0.1', (server.address() as AddressInfo).port, 1);
    const got: string[] = [];
    const answer = await client.call({ ...call, events: async (data) => void got.push(...data) });
    expect(answer).toMatchObject({ statusCode: 200, body: '' });
    expect(got.map((data) => (JSON.parse(data) as { delta: string }).delta)).toEqual(['part 0 ✓', 'part 1 ✓', 'part 2 ✓', 'part 3 ✓', 'part 4 ✓']);
  });

  it('answers a refusal, or an answer that is not a stream, as its body, even when events were asked for', async () => {
    ({ server } = await serve((req, res) => {
      const refused = req.headers['x-refuse'] === 'yes';
      res.writeHead(refused ? 429 : 200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(refused ? { error: { message: 'slow down' } } : { id: 'resp_1' }));
    }));
    client = new OwnApiClient('127.0.0.1', (server.address() as AddressInfo).port, 1);
    const events = jest.fn(async () => undefined);
    expect(await client.call({ ...call, headers: { ...call.headers, 'x-refuse': 'yes' }, events })).toMatchObject({ statusCode: 429, body: '{"error":{"message":"slow down"}}' });
    expect(await client.call({ ...call, events })).toMatchObject({ statusCode: 200, body: '{"id":"resp_1"}' });
    expect(events).not.toHaveBeenCalled();
  });

  it('leaves a stream whose taker throws: the call fails, and the server sees its client go', async () => {
    let closed!: () => void;
    const left = new Promise<void>((resolve) => (closed = resolve));
    ({ server } = await serve((req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {"type":"response.created"}\n\n');
      // Never ends by itself: only the client leaving closes it.
      res.on('close', () => closed());
    }));
    client = new OwnApiClient('127.0.0.1', (server.address() as AddressInfo).port, 1);
    await expect(
      client.call({
        ...call,
        events: async () => {
          throw new Error('the store is away');
        },
      }),
    ).rejects.toThrow('the store is away');
    await left;
  });
});
