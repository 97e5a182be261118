import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { CancelScope } from '../core/cancel-scope';
import type { ObservedRequest, RequestLog } from '../core/request-log';
import type { FrameSink } from '../core/stream-pacer';
import { type BodyReadResult, readRequestBody, writeJson } from './http-io';

/**
 * One logged request/response pair. Wire modules answer through it so the request log
 * always learns how the exchange ended, and so a client disconnect cancels every timer
 * the request started.
 */
export class HttpExchange {
  readonly cancel = new CancelScope();

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly pathname: string,
    private readonly log: RequestLog,
    private readonly entry: ObservedRequest,
    requestId: string,
  ) {
    res.setHeader('x-request-id', requestId);
    res.on('close', () => {
      this.log.settle(this.entry, 'aborted');
      this.cancel.cancel();
    });
  }

  get method(): string {
    return this.req.method ?? 'GET';
  }

  /** False once the client has gone away or the response has been ended. */
  get open(): boolean {
    return !this.cancel.cancelled && !this.res.writableEnded;
  }

  readBody(): Promise<BodyReadResult> {
    return readRequestBody(this.req);
  }

  observe(patch: Partial<Pick<ObservedRequest, 'model' | 'stream' | 'body'>>): void {
    this.log.update(this.entry, patch);
  }

  sendJson(status: number, body: unknown, headers: OutgoingHttpHeaders = {}): void {
    if (!this.open) return;
    this.log.settle(this.entry, status < 400 ? 'completed' : 'error');
    writeJson(this.res, status, body, headers);
  }

  /** A whole answer of any type (text, audio bytes), with its length. */
  send(status: number, headers: OutgoingHttpHeaders, body: string | Buffer): void {
    if (!this.open) return;
    this.log.settle(this.entry, status < 400 ? 'completed' : 'error');
    this.res.writeHead(status, { ...headers, 'content-length': Buffer.byteLength(body) });
    this.res.end(body);
  }

  startStream(headers: OutgoingHttpHeaders): FrameSink {
    this.res.writeHead(200, headers);
    return {
      write: (text) => {
        this.res.write(text);
      },
      end: (text) => {
        this.log.settle(this.entry, 'completed');
        this.res.end(text);
      },
      drop: (text) => this.dropAfter(text),
    };
  }

  /**
   * A stream of bytes through the text-based pacer: each frame string holds one byte per char
   * (latin1). Sent with chunked transfer encoding (no length), as a server that streams binary does.
   */
  startBinaryStream(headers: OutgoingHttpHeaders): FrameSink {
    const inner = this.startStream(headers);
    const bytes = (text: string): Buffer => Buffer.from(text, 'latin1');
    return {
      write: (text) => {
        this.res.write(bytes(text));
      },
      end: (text) => {
        if (text.length > 0) this.res.write(bytes(text));
        inner.end('');
      },
      drop: (text) => {
        if (text.length === 0) return inner.drop('');
        this.res.write(bytes(text), () => inner.drop(''));
      },
    };
  }

  /** Sends headers and part of a body, then kills the connection mid-response. */
  sendTruncated(status: number, headers: OutgoingHttpHeaders, fullBody: string | Buffer): void {
    if (!this.open) return;
    this.res.writeHead(status, { ...headers, 'content-length': Buffer.byteLength(fullBody) });
    this.dropAfter(fullBody.slice(0, Math.floor(fullBody.length / 2)));
  }

  /** Kills the connection without a response. */
  dropNow(): void {
    if (!this.open) return;
    this.log.settle(this.entry, 'dropped');
    this.res.destroy();
  }

  /** Never answers; resolves once the client (or server shutdown) closes the connection. */
  hang(): Promise<void> {
    return this.cancel.whenCancelled();
  }

  /** Last-resort answer for a bug in a handler. */
  fail(error: unknown): void {
    if (this.res.headersSent) {
      this.log.settle(this.entry, 'error');
      this.res.destroy();
      return;
    }
    const message = error instanceof Error ? error.message : String(error);
    this.sendJson(500, { error: { message: `simulator failure: ${message}`, type: 'server_error', param: null, code: null } });
  }

  private dropAfter(text: string | Buffer): void {
    this.log.settle(this.entry, 'dropped');
    if (text.length === 0) {
      this.res.destroy();
      return;
    }
    this.res.write(text, () => this.res.destroy());
  }
}
