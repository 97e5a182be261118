import type { EventEmitter } from 'node:events';
import type { sendUnaryData, ServerUnaryCall, ServerWritableStream } from '@grpc/grpc-js';
import { toGrpcStatus } from './grpc-errors';
import { acceptsBatches, MAX_STREAM_BATCH, type StreamBatching } from './stream-batching';

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
 * Writes a stream's messages, sending those that become ready while a write is in flight as one
 * batch when the write completes (see {@link StreamBatching}). Messages that cannot be batched
 * flush what is held and go alone, so the order is kept. `write` says, as a stream's does, whether
 * the call has room for more: at most `MAX_STREAM_BATCH` messages are held beside what it queued.
 */
class BatchingWriter<T> {
  private inFlight = 0;
  private held: T[] = [];

  constructor(
    private readonly call: { write(message: T, written: () => void): boolean },
    private readonly batching: StreamBatching<T>,
  ) {}

  write(message: T): boolean {
    if (!this.batching.batchable(message)) {
      this.flush();
      return this.send(message);
    }
    if (this.inFlight === 0 && this.held.length === 0) return this.send(message);
    this.held.push(message);
    return this.held.length < MAX_STREAM_BATCH || this.flush();
  }

  /** Sends what is held now: before the stream ends or fails. */
  flush(): boolean {
    const held = this.held;
    if (held.length === 0) return true;
    this.held = [];
    return this.send(held.length === 1 ? (held[0] as T) : this.batching.pack(held));
  }

  private send(message: T): boolean {
    this.inFlight += 1;
    return this.call.write(message, () => {
      this.inFlight -= 1;
      if (this.inFlight === 0) this.flush();
    });
  }
}

/**
 * Serves a server-streaming call: writes what `work` yields, then ends the call, or answers its
 * error as a gRPC status (after `onError`, for logging) once the messages before it are written.
 * A client cancellation aborts `work`'s signal, and nothing more is written. With `batching`,
 * messages ready together go as one to a caller that accepts batches. `work` is read no faster
 * than the caller reads: once the call holds as many messages as its stream buffers (grpc-js's
 * 16, beyond what HTTP/2's flow-control window lets through), the next is taken only when they
 * have gone, so a slow caller slows the work down (a provider's stream with it) instead of having
 * the whole answer queued in memory.
 */
export function serveStream<Req, Res>(
  call: ServerWritableStream<Req, Res>,
  work: (signal: AbortSignal) => AsyncIterable<Res>,
  onError: (error: unknown) => void,
  batching?: StreamBatching<Res>,
): void {
  const cancellation = new ServerCallCancellation(call);
  const { signal } = cancellation;
  const batches = batching !== undefined && acceptsBatches(call.metadata, batching) ? new BatchingWriter(call, batching) : undefined;
  void (async () => {
    try {
      for await (const event of work(signal)) {
        if (signal.aborted) return;
        const room = batches ? batches.write(event) : call.write(event);
        if (!room) await drained(call, signal);
      }
      batches?.flush();
      cancellation.answered();
      call.end();
    } catch (error) {
      if (signal.aborted) return;
      batches?.flush();
      cancellation.answered();
      onError(error);
      call.emit('error', toGrpcStatus(error));
    }
  })();
}

/** Until the call has sent what it holds, or is cancelled or closed; leaves no listener behind. */
function drained(call: EventEmitter, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      call.off('drain', done);
      call.off('close', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    if (signal.aborted) return resolve();
    call.on('drain', done);
    call.on('close', done);
    signal.addEventListener('abort', done, { once: true });
  });
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
