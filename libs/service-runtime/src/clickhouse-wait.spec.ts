import { createServer, type Server } from 'node:http';
import { clickhouseSchema } from '@openrouter/config';
import { createLogger } from '@openrouter/observability';
import { clickHouseOutage, probeClickHouse, waitForClickHouse } from './clickhouse-wait';

/**
 * A loopback port nothing listens on, ever: a port freed by a closed server may be taken by
 * another process of a busy test run, and a request that reached it would get a stranger's answer.
 */
const REFUSED_PORT = 1;

/** An HTTP server answering every request with `status` and `body`, recording the Authorization header. */
async function answering(status: number, body: string): Promise<{ url: string; server: Server; auth: string[] }> {
  const auth: string[] = [];
  const server = createServer((request, response) => {
    auth.push(request.headers.authorization ?? '');
    response.writeHead(status).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return { url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`, server, auth };
}

const failure = (promise: Promise<unknown>): Promise<unknown> => promise.then(() => undefined, (error: unknown) => error);

describe('probeClickHouse and clickHouseOutage', () => {
  it('take a refused connection for an outage', async () => {
    const error = await failure(probeClickHouse(clickhouseSchema.parse({ url: `http://127.0.0.1:${REFUSED_PORT}` })));
    expect(clickHouseOutage(error)).toBe(`connect ECONNREFUSED 127.0.0.1:${REFUSED_PORT}`);
  });

  it("send the credentials as the client does, and take a refused one for a configuration error, a proxy's 503 for an outage", async () => {
    const refusing = await answering(403, 'Code: 516. DB::Exception: u: Authentication failed. (AUTHENTICATION_FAILED) (version 24.8.1)\n');
    const proxy = await answering(503, '<html>no upstream</html>');
    try {
      const refused = await failure(probeClickHouse(clickhouseSchema.parse({ url: refusing.url.replace('//', '//u:p%40ss@') })));
      expect(refusing.auth).toEqual([`Basic ${Buffer.from('u:p@ss').toString('base64')}`]);
      expect(clickHouseOutage(refused)).toBeUndefined();
      expect(String((refused as Error).message)).toContain('Authentication failed');
      expect(clickHouseOutage(await failure(probeClickHouse(clickhouseSchema.parse({ url: proxy.url }))))).toBe('HTTP 503: <html>no upstream</html>');
    } finally {
      refusing.server.close();
      proxy.server.close();
    }
  });

  it("read @clickhouse/client's errors: ClickHouse's own by their type, a changed migration as a configuration error", () => {
    expect(clickHouseOutage(Object.assign(new Error('Table is in readonly mode'), { type: 'TABLE_IS_READ_ONLY' }))).toBe('Table is in readonly mode');
    expect(clickHouseOutage(Object.assign(new Error('Syntax error'), { type: 'SYNTAX_ERROR' }))).toBeUndefined();
    expect(clickHouseOutage(new Error('Timeout error.'))).toBe('no answer in time');
    expect(clickHouseOutage(new Error('ClickHouse migration 3 (usage_daily) was changed after it was applied; add a new migration instead'))).toBeUndefined();
  });
});

describe('waitForClickHouse', () => {
  it('does not prepare the store before the server answers, and stops trying when told', async () => {
    const config = clickhouseSchema.parse({ url: `http://127.0.0.1:${REFUSED_PORT}` });
    let prepared = 0;
    const wait = waitForClickHouse({
      store: { kind: 'server', location: `http://127.0.0.1:${REFUSED_PORT}/`, client: { ping: async () => ({ success: false }) } },
      config,
      what: 'the store (ClickHouse)',
      prepare: async () => ++prepared,
      logger: createLogger('spec', 'silent'),
      initialDelayMs: 10,
      maxDelayMs: 20,
    });
    const check = wait.readiness('clickhouse');
    // Polled until it has tried three times (NaN, when the details name no tries, ends it too: failed below).
    let tries = 0;
    for (let i = 0; i < 200 && tries < 3; i++) {
      tries = Number((await check.details?.())?.['tries']);
      if (tries < 3) await new Promise((done) => setTimeout(done, 10));
    }
    expect(tries).toBeGreaterThanOrEqual(3);
    expect(await check.check()).toBe(false);
    expect(prepared).toBe(0);
    wait.stop();
    await expect(wait.ready).rejects.toThrow('stopped while waiting for the store (ClickHouse)');
  });
});
