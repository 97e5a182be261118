import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { Readable } from 'node:stream';
import { createChdbConnection } from 'chdb/connection';

/**
 * The ClickHouse HTTP interface, as far as `@clickhouse/client` uses it, in front of chDB (the real
 * engine, in this process): the query in the body (or in `query` with the rows in the body),
 * `param_*` the parameters, the other URL parameters settings. It listens only when told to, so a
 * server that comes up after the service is a real port that starts answering.
 */
export class ChdbHttpRelay {
  private readonly engine = createChdbConnection({ path: ':memory:' });
  private server: Server | undefined;

  listen(port: number): Promise<void> {
    if (this.server) return Promise.resolve();
    // ClickHouse takes URLs up to 1 MiB (`http_max_uri_size`); Node's default of 16 KiB would refuse
    // billing's look-up of a large batch's event ids, whose parameters ride in the URL.
    const server = createServer({ maxHeaderSize: 1 << 20 }, (request, response) => {
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
export function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createTcpServer().listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}
