import type { EventEmitter } from 'node:events';

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
