import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { Readable } from 'node:stream';
import { createChdbConnection } from 'chdb/connection';
import { parseConfig } from '@openrouter/config';
import { createLogger } from '@openrouter/observability';
import { startAlerting, type AlertingHandle } from './index';

/**
 * The ClickHouse HTTP interface, as far as `@clickhouse/client` uses it, in front of chDB (the real
 * engine, in this process): the query in the body (or in `query` with the rows in the body),
 * `param_*` the parameters, the other URL parameters settings. It listens only when told to, so a
 * server that comes up after the service is a real port that starts answering.
 */
class ChdbHttpRelay {
  private readonly engine = createChdbConnection({ path: ':memory:' });
  private server: Server | undefined;

  listen(port: number): Promise<void> {
    if (this.server) return Promise.resolve();
    const server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const url = new URL(request.url ?? '/', 'http://relay');
        const body = Buffer.concat(chunks).toString('utf8');
        const params: Record<string, string> = {};
        const settings: Record<string, string | undefined> = {};
        for (const [name, value] of url.searchParams) {
          if (name.startsWith('param_')) params[name.slice('param_'.length)] = value;
          else if (!['query', 'query_id', 'database', 'session_id'].includes(name)) settings[name] = value;
        }
        const query = url.searchParams.get('query');
        const run = query !== null ? this.engine.exec({ query, values: Readable.from([body]), query_params: params, clickhouse_settings: settings }) : this.engine.query({ query: body, query_params: params, clickhouse_settings: settings });
        run.then(
          (result) => result.stream.pipe(response),
          (error: { code?: string; type?: string; message: string }) => response.writeHead(500).end(`Code: ${error.code ?? 0}. DB::Exception: ${error.message} (${error.type ?? 'UNKNOWN_EXCEPTION'}) (version chdb)`),
        );
      });
    });
    this.server = server;
    return new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  }

  async rows(query: string): Promise<Array<Record<string, unknown>>> {
    const result = await this.engine.query({ query: `${query} FORMAT JSONEachRow` });
    let text = '';
    for await (const chunk of result.stream) text += String(chunk);
    return text
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  async close(): Promise<void> {
    const server = this.server;
    if (server) await new Promise((done) => server.close(done));
    await this.engine.close();
  }
}

/** A loopback port nothing listens on (yet). */
function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createTcpServer().listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

async function waitFor<T>(condition: () => Promise<T | undefined | false>, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((done) => setTimeout(done, 50));
  }
}

interface ReadyAnswer {
  status: number;
  body: { checks: Record<string, string>; details?: Record<string, Record<string, unknown>> };
}

async function ready(port: number): Promise<ReadyAnswer | undefined> {
  const response = await fetch(`http://127.0.0.1:${port}/ready`).catch(() => undefined);
  return response ? { status: response.status, body: (await response.json()) as ReadyAnswer['body'] } : undefined;
}

describe('alerting started before its ClickHouse server', () => {
  it('is not ready while the server is away, says so once, then migrates the alert history and starts', async () => {
    const [clickhousePort, httpPort] = [await closedPort(), await closedPort()];
    const database = `late_${randomBytes(4).toString('hex')}`;
    const config = parseConfig(
      {
        version: 1,
        ingress: { http: { port: 0 }, router: '127.0.0.1:1' },
        router: { grpc: { port: 0 }, http: { port: 0 }, adapters: { default: '127.0.0.1:2' } },
        adapter: { grpc: { port: 0 }, http: { port: 0 } },
        billing: { http: { port: 0 } },
        alerting: { http: { host: '127.0.0.1', port: httpPort } },
        providers: { sim: { type: 'openai', baseUrl: 'http://127.0.0.1:9/v1', apiKey: 'k' } },
        models: [{ id: 'm', deployments: [{ provider: 'sim', model: 'up' }] }],
        usage: { clickhouse: { url: `http://alerting:s3cret-pw@127.0.0.1:${clickhousePort}`, database }, consumer: { retryInitialMs: 20, retryMaxMs: 200 } },
      },
      {},
    );
    const lines: Array<{ level: number; msg: string; err?: unknown }> = [];
    const logger = createLogger('alerting', 'info', { write: (line: string) => void lines.push(JSON.parse(line) as { level: number; msg: string }) });
    // `@clickhouse/client` logs a failed request, stack and all, on the console.
    const console = [jest.spyOn(globalThis.console, 'error'), jest.spyOn(globalThis.console, 'warn')];
    const relay = new ChdbHttpRelay();
    let alerting: AlertingHandle | undefined;
    const starting = startAlerting(config, logger).then((handle) => (alerting = handle));
    try {
      const waiting = await waitFor(async () => {
        const answer = await ready(httpPort);
        return answer && Number(answer.body.details?.['clickhouse']?.['tries']) >= 3 ? answer : undefined;
      }, 'alerting not ready after three tries');
      expect(waiting.status).toBe(503);
      expect(waiting.body.details?.['clickhouse']).toMatchObject({ dependency: 'the alert history store (ClickHouse)', location: `http://127.0.0.1:${clickhousePort}/`, state: 'waiting', setting: 'usage.clickhouse.url / CLICKHOUSE_URL' });
      expect(JSON.stringify(waiting.body)).not.toContain('s3cret');
      expect(alerting).toBeUndefined();

      await relay.listen(clickhousePort);
      await starting;
      expect((await ready(httpPort))?.status).toBe(200);
      expect(await relay.rows(`SELECT name FROM system.tables WHERE database = '${database}' AND name = 'alert_history'`)).toEqual([{ name: 'alert_history' }]);
      const told = lines.filter((l) => /ClickHouse/.test(l.msg));
      expect(told.map((l) => l.level)).toEqual([40, 30]);
      expect(told[0]?.msg).toContain('usage.clickhouse.url / CLICKHOUSE_URL');
      expect(told.some((l) => l.err !== undefined)).toBe(false);
      for (const spy of console) expect(spy).not.toHaveBeenCalled();
    } finally {
      if (!alerting) await relay.listen(clickhousePort).catch(() => undefined);
      await starting.catch(() => undefined);
      await alerting?.close();
      await relay.close();
      for (const spy of console) spy.mockRestore();
    }
  });
});
