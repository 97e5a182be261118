import type { ServerResponse } from 'node:http';

/**
 * Writes server-sent events to a raw response, respecting backpressure.
 *
 * Events written in the same turn of the event loop (a provider's burst of chunks, read at once)
 * leave in one socket write: Node's HTTP response corks its socket on a write and uncorks it on
 * the next tick.
 */
export class SseWriter {
  constructor(private readonly response: ServerResponse) {}

  open(headers: Record<string, string>): void {
    this.response.writeHead(200, {
      ...headers,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
  }

  async data(payload: unknown): Promise<void> {
    if (this.response.destroyed) return;
    if (!this.response.write(`data: ${JSON.stringify(payload)}\n\n`)) await this.drained();
  }

  /**
   * A named event (`event: <name>` before its data), as the Responses API streams them; `name` is
   * the gateway's own (a line break in it would end the event early).
   */
  async event(name: string, payload: unknown): Promise<void> {
    if (this.response.destroyed) return;
    if (!this.response.write(`event: ${name}\ndata: ${JSON.stringify(payload)}\n\n`)) await this.drained();
  }

  /** A comment line, which clients skip: it keeps a quiet stream's connection from being taken for idle by proxies. */
  async comment(text: string): Promise<void> {
    if (this.response.destroyed) return;
    if (!this.response.write(`: ${text}\n\n`)) await this.drained();
  }

  done(): void {
    if (!this.response.destroyed) this.response.end('data: [DONE]\n\n');
  }

  /** Ends the stream with no `[DONE]` sentinel (the Responses API's last event says it is over). */
  end(): void {
    if (!this.response.destroyed) this.response.end();
  }

  /** A failure after the stream started: a final error event, then the connection ends cleanly. */
  fail(body: unknown): void {
    if (this.response.destroyed) return;
    this.response.end(`data: ${JSON.stringify(body)}\n\n`);
  }

  private drained(): Promise<void> {
    return drained(this.response);
  }
}

/** Until the client has read what was written to `response`, or has gone; leaves no listener behind. */
export function drained(response: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      response.off('drain', done);
      response.off('close', done);
      resolve();
    };
    response.on('drain', done);
    response.on('close', done);
  });
}
