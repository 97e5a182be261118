import { GatewayError } from '@openrouter/errors';
import { fromGrpcError, toGrpcStatus } from './grpc-errors';

/**
 * A failure as the caller of a gRPC method would see it: the error crosses the same mapping (kind,
 * message, retryable, retry-after, param, code, provider) as over the wire, and nothing else.
 */
function asRemoteError(error: unknown, signal: AbortSignal | undefined): GatewayError {
  if (signal?.aborted) return new GatewayError('cancelled', 'The client went away.', { cause: error });
  return fromGrpcError(toGrpcStatus(error));
}

/** Messages a callee called in process may have waiting for its reader before it is paused. */
export const IN_PROCESS_STREAM_AHEAD = 16;

/**
 * A server-streaming method called in process, with the semantics of `readStream` over gRPC. The
 * callee runs ahead of the reader, as a gRPC server does (its messages are queued), so a stream
 * whose last message has been read has also finished: its end is recorded as a success even when
 * the reader stops without asking for more. It runs at most `IN_PROCESS_STREAM_AHEAD` messages
 * ahead, as a gRPC server waits for its flow-control window: a slow reader slows the callee down
 * (down to the provider's connection) instead of having the whole answer queued in memory. The
 * callee works under its own signal, aborted when the caller's is, or when the reader stops while
 * the callee is still producing (as a cancelled call would be). Errors arrive as they would over
 * the wire, after the messages sent before them.
 */
export async function* callStreamInProcess<T>(open: (signal: AbortSignal) => AsyncIterable<T>, signal?: AbortSignal): AsyncGenerator<T> {
  // An abort that came before the call would never be heard: the callee is not run for a client gone.
  if (signal?.aborted) throw new GatewayError('cancelled', 'The client went away.');
  const callee = new AbortController();
  // Set while the callee is paused because its reader has not taken what is queued.
  let room: (() => void) | undefined;
  // A callee paused for room runs on when aborted, to see its abort and end.
  const onAbort = (): void => {
    callee.abort();
    room?.();
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  const queue: T[] = [];
  let ended = false;
  let failure: { error: unknown } | undefined;
  let wake: (() => void) | undefined;
  const pump = async (): Promise<void> => {
    try {
      for await (const message of open(callee.signal)) {
        queue.push(message);
        wake?.();
        if (queue.length >= IN_PROCESS_STREAM_AHEAD && !callee.signal.aborted) await new Promise<void>((resume) => (room = resume));
      }
    } catch (error) {
      failure = { error };
    } finally {
      ended = true;
      wake?.();
    }
  };
  void pump();
  try {
    for (;;) {
      const message = queue.shift();
      if (message !== undefined) {
        room?.();
        room = undefined;
        yield message;
        continue;
      }
      if (failure) throw asRemoteError(failure.error, signal);
      if (ended) return;
      await new Promise<void>((done) => (wake = done));
      wake = undefined;
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    if (!ended) onAbort();
  }
}

/** A unary method called in process, with the semantics of `callUnary` over gRPC. */
export async function callUnaryInProcess<T>(run: (signal: AbortSignal) => T | Promise<T>, signal?: AbortSignal): Promise<T> {
  // An abort that came before the call would never be heard: the callee is not run for a client gone.
  if (signal?.aborted) throw new GatewayError('cancelled', 'The client went away.');
  const callee = new AbortController();
  const onAbort = (): void => callee.abort();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await run(callee.signal);
  } catch (error) {
    throw asRemoteError(error, signal);
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}
