import { get } from 'node:http';
import type { ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import { responsesSchema } from '@openrouter/config';
import { createLogger } from '@openrouter/observability';
import { until } from '../redis.testing';
import { MemoryBackgroundStore } from './background-store';
import { MemoryResponseStore } from './memory-response-store';
import { MemoryResponseEventLog } from './response-event-log';
import { serveResponseStream } from './response-stream';
import { NEW_CONVERSATION, StoredResponses } from './stored-responses';

const OWNER = 'acme/search';
/** 16 MiB of output events: more than the OS buffers of a loopback connection hold for a client that reads none of it. */
const EVENTS = 32;
const EVENT_CHARS = 512 * 1024;

/** The event log, counting the readers watching it. */
class WatchedLog extends MemoryResponseEventLog {
  watching = 0;

  override watch(id: string, listener: () => void): () => void {
    this.watching++;
    const unwatch = super.watch(id, listener);
    return () => {
      this.watching--;
      unwatch();
    };
  }
}

describe('serveResponseStream: the readers of a background response', () => {
  let app: FastifyInstance;
  let grace: AbortController;
  let log: WatchedLog;
  let stored: StoredResponses;
  let id: string;
  let client: Socket | undefined;
  /** The response being served, and whether serving it is over. */
  let serving: { raw: ServerResponse | undefined; over: boolean };

  async function start(stallMs: number): Promise<number> {
    app = Fastify();
    app.decorateRequest('shutdownSignal', { getter: () => grace.signal });
    app.get('/v1/responses/:id', async (request, reply) => {
      // This test's: a reading left over from an earlier test does not mark this one's over.
      const mine = serving;
      mine.raw = reply.raw;
      try {
        await serveResponseStream(reply, stored, OWNER, (request.params as { id: string }).id, -1, stallMs);
      } finally {
        mine.over = true;
      }
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const address = app.server.address();
    if (typeof address !== 'object' || !address) throw new Error('not listening');
    return address.port;
  }

  /** A client that asks for the stream, then reads nothing and never closes. */
  function stalledReader(port: number): void {
    client = connect(port, '127.0.0.1');
    client.write(`GET /v1/responses/${id}?stream=true HTTP/1.1\r\nhost: gateway\r\n\r\n`);
    client.pause();
  }

  beforeEach(async () => {
    grace = new AbortController();
    log = new WatchedLog();
    serving = { raw: undefined, over: false };
    stored = new StoredResponses(new MemoryResponseStore({ maxResponses: 10, maxBytes: 1_000_000 }), responsesSchema.parse({}), createLogger('ingress', 'silent'), undefined, Date.now, new MemoryBackgroundStore(), log);
    const record = await stored.queue({
      owner: OWNER,
      keyId: 'search-1',
      model: 'gpt-4o-mini',
      request: { model: 'gpt-4o-mini', input: 'Write a long report.', stream: true },
      headers: {},
      conversation: NEW_CONVERSATION,
    });
    id = record.id;
  });

  afterEach(async () => {
    client?.destroy();
    client = undefined;
    await app.close();
  });

  /** The run's output so far: more events than a client that stops reading takes. */
  async function longOutput(): Promise<void> {
    const delta = 'x'.repeat(EVENT_CHARS);
    const events = Array.from({ length: EVENTS }, () => ({ type: 'response.output_text.delta', item_id: 'msg_1', output_index: 0, content_index: 0, delta }));
    await log.append(id, 2, events, Date.now() + 3_600_000);
  }

  it('cuts a reader that stops reading without closing, and lets go of its watch', async () => {
    await longOutput();
    stalledReader(await start(50));
    await until(() => serving.over, 'the stalled reader to be cut');
    expect(serving.raw?.destroyed).toBe(true);
    expect(log.watching).toBe(0);
  });

  it('ends, at shutdown, the reading of a reader that stopped reading, however long the stall bound', async () => {
    await longOutput();
    stalledReader(await start(3_600_000));
    await until(() => serving.raw?.writableNeedDrain === true, 'the stream to wait for its reader');
    grace.abort();
    await until(() => serving.over, 'the reading to end at shutdown');
    expect(log.watching).toBe(0);
  });

  it('ends the stream of a reader that keeps up cleanly at shutdown, with the events added so far', async () => {
    const port = await start(3_600_000);
    const body = new Promise<string>((resolve, reject) => {
      get({ host: '127.0.0.1', port, path: `/v1/responses/${id}?stream=true` }, (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (part: string) => {
          text += part;
          // Both queued events read: the reader now waits for the run's.
          if (text.includes('response.queued')) grace.abort();
        });
        response.on('end', () => resolve(text));
        response.on('error', reject);
      }).on('error', reject);
    });
    const events = (await body).split('\n').filter((line) => line.startsWith('event: '));
    expect(events).toEqual(['event: response.created', 'event: response.queued']);
    await until(() => serving.over, 'the reading to end');
    expect(log.watching).toBe(0);
  });
});
