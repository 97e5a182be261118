import type { EventEmitter } from 'node:events';
import type { sendUnaryData, ServerUnaryCall, ServerWritableStream } from '@grpc/grpc-js';
import { toGrpcStatus } from './grpc-errors';

/**
 * The abort signal of a gRPC server call: aborted when the client cancels the call. grpc-js also
 * emits 'cancelled' on every call after its status was sent, as its own clean-up; once the handler
 * has answered ({@link answered}), that is no cancellation and aborts nothing. (An abort creates a
 * DOMException and runs every listener below the call: on every request, that was measurable.)
 */
export class ServerCallCancellation {
  private readonly controller = new AbortController();
  private done = false;

  constructor(call: EventEmitter) {
    call.once('cancelled', () => {
      if (!this.done) this.controller.abort();
    });
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** The handler is answering (status, last message or error): a later 'cancelled' is clean-up. */
  answered(): void {
    this.done = true;
  }
}

/**
 * Serves a server-streaming call: writes what `work` yields, then ends the call, or answers its
 * error as a gRPC status (after `onError`, for logging). A client cancellation aborts `work`'s
 * signal, and nothing more is written.
 */
export function serveStream<Req, Res>(call: ServerWritableStream<Req, Res>, work: (signal: AbortSignal) => AsyncIterable<Res>, onError: (error: unknown) => void): void {
  const cancellation = new ServerCallCancellation(call);
  const { signal } = cancellation;
  void (async () => {
    try {
      for await (const event of work(signal)) {
        if (signal.aborted) return;
        call.write(event);
      }
      cancellation.answered();
      call.end();
    } catch (error) {
      if (signal.aborted) return;
      cancellation.answered();
      onError(error);
      call.emit('error', toGrpcStatus(error));
    }
  })();
}

/** Serves a unary call with `work`'s answer or its error as a gRPC status; a client cancellation aborts `work`'s signal. */
export function serveUnary<Req, Res>(call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>, work: (signal: AbortSignal) => Promise<Res>): void {
  const cancellation = new ServerCallCancellation(call);
  work(cancellation.signal).then(
    (response) => {
      cancellation.answered();
      callback(null, response);
    },
    (error: unknown) => {
      cancellation.answered();
      callback(toGrpcStatus(error));
    },
  );
}
