import { isIPv6 } from 'node:net';
import { createParser } from 'eventsource-parser';
import { Agent, request } from 'undici';

/** A request to this replica's own API (over loopback HTTP, as any client), and its answer. */
export interface OwnApiRequest {
  method: 'POST';
  url: string;
  headers: Record<string, string>;
  payload: string;
  /** Aborting it leaves the request, as a client that goes away: the gateway cancels what it started. */
  signal?: AbortSignal | undefined;
  /**
   * Takes a streamed answer (2xx, `text/event-stream`) as it arrives: the data of the events each
   * read of the body brought, awaited before the next read (the answer's `body` is then empty).
   * Throwing leaves the request, as aborting does.
   */
  events?: ((data: string[]) => Promise<void>) | undefined;
}
export interface OwnApiResponse {
  statusCode: number;
  headers: Record<string, string | string[] | number | undefined>;
  body: string;
}
export type OwnApi = (request: OwnApiRequest) => Promise<OwnApiResponse>;

/** A line may take as long as its provider: the gateway's own timeouts end it, this only a call that would hang for ever. */
const CALL_TIMEOUT_MS = 600_000;

/**
 * Calls this replica's own API over loopback HTTP, as any client would, so a batch's line is
 * served, limited, metered and cancelled exactly as the same request sent by its key.
 */
export class OwnApiClient {
  private readonly origin: string;
  private readonly agent: Agent;
  private closing: Promise<void> | undefined;

  constructor(host: string, port: number, connections: number) {
    const local = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '::1' : host;
    this.origin = `http://${isIPv6(local) ? `[${local}]` : local}:${port}`;
    this.agent = new Agent({ connections, headersTimeout: CALL_TIMEOUT_MS, bodyTimeout: CALL_TIMEOUT_MS });
  }

  async call(call: OwnApiRequest): Promise<OwnApiResponse> {
    const response = await request(`${this.origin}${call.url}`, { method: call.method, headers: call.headers, body: call.payload, dispatcher: this.agent, signal: call.signal });
    const streamed = call.events && response.statusCode < 300 && String(response.headers['content-type'] ?? '').startsWith('text/event-stream');
    if (!call.events || !streamed) return { statusCode: response.statusCode, headers: response.headers, body: await response.body.text() };
    let read: string[] = [];
    const parser = createParser({ onEvent: (event) => read.push(event.data) });
    const decoder = new TextDecoder();
    for await (const chunk of response.body) {
      parser.feed(decoder.decode(chunk as Buffer, { stream: true }));
      if (read.length === 0) continue;
      const data = read;
      read = [];
      await call.events(data);
    }
    parser.feed(decoder.decode());
    if (read.length > 0) await call.events(read);
    return { statusCode: response.statusCode, headers: response.headers, body: '' };
  }

  /** Lets its connections go once the calls in flight end; again, the same. */
  close(): Promise<void> {
    return (this.closing ??= this.agent.close());
  }
}
