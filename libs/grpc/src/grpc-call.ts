import type { ClientReadableStream, ClientUnaryCall, Metadata, ServiceError } from '@grpc/grpc-js';
import { GatewayError } from '@openrouter/errors';
import { fromGrpcError } from './grpc-errors';
import type { StreamBatching } from './stream-batching';

/**
 * Reads a server stream as an async iterable of messages. Aborting the signal cancels the call,
 * which the server sees as a cancelled call and passes on to its own downstream work. With
 * `batching` (the call's metadata accepted it: `acceptBatches`), a batch is read as the messages
 * it carries.
 */
export async function* readStream<T>(call: ClientReadableStream<T>, signal?: AbortSignal, batching?: StreamBatching<T>): AsyncGenerator<T> {
  const onAbort = (): void => call.cancel();
  signal?.addEventListener('abort', onAbort, { once: true });
  let ended = false;
  try {
    for await (const message of call as AsyncIterable<T>) {
      const batch = batching?.unpack(message);
      if (batch === undefined) yield message;
      else yield* batch;
    }
    ended = true;
  } catch (error) {
    ended = true;
    if (signal?.aborted) throw new GatewayError('cancelled', 'The client went away.', { cause: error });
    throw fromGrpcError(error);
  } finally {
    signal?.removeEventListener('abort', onAbort);
    // A reader that stops early cancels the call; one that read to the end leaves the finished
    // call alone (a cancel would cost both sides a reset frame and an abort for nothing).
    if (!ended) call.cancel();
  }
}

type UnaryMethod<Req, Res> = (request: Req, metadata: Metadata, callback: (error: ServiceError | null, response: Res) => void) => ClientUnaryCall;

/** Calls a unary method as a promise; aborting the signal cancels the call. */
export function callUnary<Req, Res>(method: UnaryMethod<Req, Res>, request: Req, metadata: Metadata, signal?: AbortSignal): Promise<Res> {
  return new Promise<Res>((resolve, reject) => {
    const call = method(request, metadata, (error, response) => {
      signal?.removeEventListener('abort', onAbort);
      if (error) reject(signal?.aborted ? new GatewayError('cancelled', 'The client went away.', { cause: error }) : fromGrpcError(error));
      else resolve(response);
    });
    const onAbort = (): void => call.cancel();
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
