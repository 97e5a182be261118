import type { ServerResponse } from 'node:http';
import { once } from 'node:events';

/** Writes server-sent events to a raw response, respecting backpressure. */
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
    if (!this.response.write(`data: ${JSON.stringify(payload)}\n\n`)) {
      await Promise.race([once(this.response, 'drain'), once(this.response, 'close')]);
    }
  }

  done(): void {
    if (!this.response.destroyed) this.response.end('data: [DONE]\n\n');
  }

  /** A failure after the stream started: a final error event, then the connection ends cleanly. */
  fail(body: unknown): void {
    if (this.response.destroyed) return;
    this.response.end(`data: ${JSON.stringify(body)}\n\n`);
  }
}
