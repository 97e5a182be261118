import { status, type CallOptions, type ClientReadableStream, type ClientUnaryCall, type Metadata, type ServiceError } from '@grpc/grpc-js';
import { MAX_TIMER_MS } from '@openrouter/config';
import { GatewayError } from '@openrouter/errors';
import { ERROR_TRAILER, fromGrpcError } from './grpc-errors';
import type { StreamBatching } from './stream-batching';

/** Bounds of a call: who answers it (named in a timeout's message), and how long it may take. */
export interface CallBounds<T = unknown> {
  /** The peer, as the error names it ("router", "billing"). */
  peer?: string;
  /** Unary: the call's deadline. Stream: the time allowed until the first message (see `answers`). */
  timeoutMs?: number;
  /** Stream: which messages end the wait `timeoutMs` bounds (default: any); others, such as progress notices, do not. */
  answers?: (message: T) => boolean;
}

/**
 * The longest deadline a unary call is given (about 24.8 days; a longer one is cut to it). grpc-js
 * sends a deadline that far off in whole seconds, rounded up, and the server arms a timer with it
 * again: past MAX_TIMER_MS rounded down to a second, that timer would overflow and end the call on
 * the server's side after 1 ms.
 */
const MAX_DEADLINE_MS = Math.floor(MAX_TIMER_MS / 1_000) * 1_000;

function timedOut(peer: string | undefined, ms: number, cause: unknown): GatewayError {
  return new GatewayError('timeout', `The ${peer ?? 'gateway service'} did not answer within ${ms} ms.`, { cause });
}

/** What grpc-js reports for a call its server reset with HTTP/2 REFUSED_STREAM. */
const REFUSED_STREAM = 'Stream refused by server';

/** How many times a call the server refused unseen is started again (see `refusedUnseen`). */
const REFUSED_RETRIES = 2;

/**
 * A call its server refused before any handler saw it (HTTP/2 REFUSED_STREAM): the server had
 * just asked the connection to go away (`grpc.maxConnectionAgeMs`, a shutdown) as the call was
 * started on it. Starting it again is safe, and the new call goes on another connection. grpc-js
 * would do this itself (a transparent retry), but only with its retry layer, which the channels
 * turn off (`CHANNEL_OPTIONS`: it would buffer every message of every call).
 */
export function refusedUnseen(error: unknown): boolean {
  const e = error as Partial<ServiceError> | undefined;
  return e?.code === status.UNAVAILABLE && e.details === REFUSED_STREAM;
}

/**
 * Starts a call. grpc-js throws, rather than failing the call, when its channel has been closed
 * (a replica gone from a name, a shutdown under way): that is a peer not there, `unavailable` (so
 * the router fails over), not the gateway's internal error.
 */
function opened<C>(start: () => C): C {
  try {
    return start();
  } catch (error) {
    if (error instanceof GatewayError) throw error;
    throw new GatewayError('unavailable', 'An internal gateway service is unavailable.', { cause: error });
  }
}

/**
 * Reads a server stream as an async iterable of messages. Aborting the signal cancels the call,
 * which the server sees as a cancelled call and passes on to its own downstream work. With
 * `batching` (the call's metadata accepted it: `acceptBatches`), a batch is read as the messages
 * it carries. With `bounds.timeoutMs`, a call whose first message (the first of `bounds.answers`)
 * does not arrive in time is cancelled and fails as a timeout (a peer that hangs, rather than one
 * that is down). Given a function that starts the call, a call the server refused unseen
 * (`refusedUnseen`) is started again, up to twice.
 */
export async function* readStream<T>(start: ClientReadableStream<T> | (() => ClientReadableStream<T>), signal?: AbortSignal, batching?: StreamBatching<T>, bounds: CallBounds<T> = {}): AsyncGenerator<T> {
  // An abort that came before the call would never be heard: no call is made for a client gone.
  if (signal?.aborted) throw goneBefore();
  let call = typeof start === 'function' ? opened(start) : start;
  const onAbort = (): void => call.cancel();
  signal?.addEventListener('abort', onAbort, { once: true });
  let expired = false;
  // Node.js takes a timer longer than MAX_TIMER_MS (about 24.8 days) as 1 ms: a bound past it is cut to it.
  const firstMessageTimer =
    bounds.timeoutMs === undefined
      ? undefined
      : setTimeout(
          () => {
            expired = true;
            call.cancel();
          },
          Math.min(bounds.timeoutMs, MAX_TIMER_MS),
        );
  let ended = false;
  let restarts = 0;
  try {
    let waiting = firstMessageTimer !== undefined;
    let received = false;
    for (;;) {
      try {
        for await (const message of call as AsyncIterable<T>) {
          received = true;
          if (waiting && (bounds.answers === undefined || bounds.answers(message))) {
            clearTimeout(firstMessageTimer);
            waiting = false;
          }
          const batch = batching?.unpack(message);
          if (batch === undefined) yield message;
          else yield* batch;
        }
        break;
      } catch (error) {
        const again = typeof start === 'function' && !received && restarts < REFUSED_RETRIES && !signal?.aborted && !expired && refusedUnseen(error);
        if (!again) throw error;
        restarts += 1;
        call = opened(start);
      }
    }
    ended = true;
  } catch (error) {
    ended = true;
    if (signal?.aborted) throw new GatewayError('cancelled', 'The client went away.', { cause: error });
    if (expired) throw timedOut(bounds.peer, bounds.timeoutMs ?? 0, error);
    throw fromGrpcError(error);
  } finally {
    clearTimeout(firstMessageTimer);
    signal?.removeEventListener('abort', onAbort);
    // A reader that stops early cancels the call; one that read to the end leaves the finished
    // call alone (a cancel would cost both sides a reset frame and an abort for nothing).
    if (!ended) call.cancel();
  }
}

type UnaryMethod<Req, Res> = (request: Req, metadata: Metadata, options: Partial<CallOptions>, callback: (error: ServiceError | null, response: Res) => void) => ClientUnaryCall;

/**
 * Calls a unary method as a promise; aborting the signal cancels the call. With
 * `bounds.timeoutMs`, the call carries that deadline (the server sees it too) and fails as a
 * timeout when it passes. A call the server refused unseen (`refusedUnseen`) is made again, up to
 * twice, within the same deadline.
 */
export function callUnary<Req, Res>(method: UnaryMethod<Req, Res>, request: Req, metadata: Metadata, signal?: AbortSignal, bounds: CallBounds = {}): Promise<Res> {
  if (signal?.aborted) return Promise.reject(goneBefore());
  return new Promise<Res>((resolve, reject) => {
    const options: Partial<CallOptions> = bounds.timeoutMs === undefined ? {} : { deadline: Date.now() + Math.min(bounds.timeoutMs, MAX_DEADLINE_MS) };
    let call: ClientUnaryCall;
    const onAbort = (): void => call.cancel();
    const start = (restarts: number): void => {
      call = opened(() =>
        method(request, metadata, options, (error, response) => {
          if (error && restarts < REFUSED_RETRIES && !signal?.aborted && refusedUnseen(error)) {
            try {
              return start(restarts + 1);
            } catch (failure) {
              // The channel was closed meanwhile: thrown here, inside grpc-js's own callback, it would escape as an uncaught exception.
              signal?.removeEventListener('abort', onAbort);
              return reject(failure);
            }
          }
          signal?.removeEventListener('abort', onAbort);
          if (!error) resolve(response);
          else if (signal?.aborted) reject(new GatewayError('cancelled', 'The client went away.', { cause: error }));
          // The deadline passed here, not a timeout the peer reported (that one carries its own error).
          else if (error.code === status.DEADLINE_EXCEEDED && bounds.timeoutMs !== undefined && !error.metadata?.get(ERROR_TRAILER).length) reject(timedOut(bounds.peer, bounds.timeoutMs, error));
          else reject(fromGrpcError(error));
        }),
      );
    };
    try {
      start(0);
    } catch (failure) {
      return reject(failure);
    }
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** A call asked for under a signal aborted already: never started, as the callee would never hear the abort. */
function goneBefore(): GatewayError {
  return new GatewayError('cancelled', 'The client went away.');
}
