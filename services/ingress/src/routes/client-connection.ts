import type { ServerResponse } from 'node:http';
import type { FastifyReply } from 'fastify';
import { GatewayError } from '@openrouter/errors';
import { asGatewayError } from '../openai-exception.filter';
import { osQueuedBytes } from '../ws/ws-liveness';

/**
 * Whether the client went away before its response was written. Read from the response's own
 * state, so a close that happened while the request was still being admitted (before any
 * listener was attached) is seen too.
 */
export function clientHasLeft(reply: FastifyReply): boolean {
  return (reply.raw.destroyed || reply.raw.closed) && !reply.raw.writableFinished;
}

/**
 * Whether a response was written to its client whole, asked once it has closed. Node cannot say it
 * of an answer handed over whole (`end`) that the connection lost while the OS still held part of
 * it (a client that stopped reading cut by `cutWhenWholeAnswerStalls`, a client that reset the
 * connection): the response's socket is taken off and its buffers emptied, so it reads as
 * `writableFinished`, and it emits `finish` all the same. So its `finish` counts only when it comes
 * while its connection is still open: heard ahead of the server's own listener, which hands the
 * connection on to the next request or closes it.
 */
export function deliveredWhole(response: ServerResponse): () => boolean {
  const socket = response.socket;
  let delivered = response.writableFinished;
  if (!delivered) response.prependOnceListener('finish', () => (delivered = socket?.destroyed !== true));
  return () => delivered;
}

/**
 * Calls `listener` once the response has closed (written or abandoned). A response that closed
 * already, while awaited admission checks ran, gets its listener on the next turn of the loop:
 * its `close` event will not fire again.
 */
export function onResponseClose(reply: FastifyReply, listener: () => void): void {
  if (reply.raw.destroyed || reply.raw.closed) setImmediate(listener);
  else reply.raw.once('close', listener);
}

/**
 * A signal that aborts when the client goes away before its response has been written, or when
 * the server's shutdown grace is over: then with the `shutting_down` error as its reason, for the
 * request to end its answer with (`toldOnFailure`).
 */
export function clientGone(reply: FastifyReply): AbortSignal {
  const abort = new AbortController();
  const shutdown = reply.request.shutdownSignal;
  if (clientHasLeft(reply)) abort.abort();
  else if (shutdown.aborted) abort.abort(shutdown.reason);
  else {
    const onShutdown = (): void => abort.abort(shutdown.reason);
    shutdown.addEventListener('abort', onShutdown, { once: true });
    reply.raw.once('close', () => {
      shutdown.removeEventListener('abort', onShutdown);
      if (!reply.raw.writableFinished) abort.abort();
    });
  }
  return abort.signal;
}

/** What a client leaving does to a whole chat answer being worked on (`access.requests.onClientAbort`). */
export type OnClientAbort = 'cancel' | 'complete';

/** A chat request's provider call signal (`callSignal`), and how to let go of it once the call is over. */
export interface CallSignal {
  signal: AbortSignal;
  /**
   * The call is over (its whole answer arrived, or it failed): a whole answer's signal under
   * `complete` stops following the server's shutdown. Without this, every such request would leave
   * something on the shutdown signal, which lives as long as the server. Nothing to do otherwise.
   */
  release(): void;
}

const noRelease = (): void => undefined;

/**
 * The signal a chat request's provider call is cancelled by. A stream, or any answer under
 * `cancel`: `clientGone`. A whole answer under `complete` runs on without its client, as an
 * embedding does, so its record carries what the provider reports: its signal aborts only when
 * the server's shutdown grace is over (until `release`), or at once for a client that has already
 * left (no call is made for nobody). A stream always cancels: closing it stops the generation at
 * the provider, where running on would only spend more on an answer nobody reads.
 */
export function callSignal(reply: FastifyReply, stream: boolean, onClientAbort: OnClientAbort): CallSignal {
  if (stream || onClientAbort === 'cancel') return { signal: clientGone(reply), release: noRelease };
  if (clientHasLeft(reply)) return { signal: AbortSignal.abort(), release: noRelease };
  const shutdown = reply.request.shutdownSignal;
  if (shutdown.aborted) return { signal: AbortSignal.abort(shutdown.reason), release: noRelease };
  // A listener taken off when the call is over: `AbortSignal.any` would keep a reference on the
  // shutdown signal for every request until the server stops (Node does not drop them).
  const abort = new AbortController();
  const onShutdown = (): void => abort.abort(shutdown.reason);
  shutdown.addEventListener('abort', onShutdown, { once: true });
  return { signal: abort.signal, release: () => shutdown.removeEventListener('abort', onShutdown) };
}

/**
 * What a request that failed with `error` tells its client, given its `clientGone` signal:
 * nothing when the client has gone; the shutdown's error when the server's shutdown ended it
 * (the call was cancelled, but the client is still there to be told why); else the error.
 */
export function toldOnFailure(error: unknown, signal: AbortSignal): GatewayError | undefined {
  if (!signal.aborted) return asGatewayError(error);
  return signal.reason instanceof GatewayError ? signal.reason : undefined;
}

/** When the request arrived (epoch ms), from the time Fastify has been handling it. */
export function arrivedAtMs(reply: FastifyReply): number {
  return Math.round(Date.now() - reply.elapsedTime);
}

/** Throws `cancelled` when the client has gone, so nothing further is spent on its request. */
export function stopIfClientLeft(reply: FastifyReply): void {
  if (clientHasLeft(reply)) throw new GatewayError('cancelled', 'The client went away.');
}

/** A response's outbound state at one check of `cutWhenStalled` or `cutWhenWholeAnswerStalls`. */
interface Outbound {
  /** Whether the answer waits for the client (a stream: the response holds more than its high-water mark; a whole answer: it is not all written yet). */
  waiting: boolean;
  drains: number;
  /** Bytes Node holds for the socket, the write in flight among them. */
  socketQueued: number | undefined;
  osQueued: number | undefined;
}

/**
 * Cuts the connection of a streamed answer whose client took none of it over a whole `stallMs`
 * while the answer waited for it, as a WebSocket whose client reads nothing over a heartbeat is
 * dropped. A client that stopped reading without closing (a peer gone without a FIN, a frozen app)
 * would otherwise hold its request for good: the provider call paused behind it, its budget
 * reservation renewed, its usage never recorded. The cut closes the response, which reads as the
 * client gone: the call is cancelled down to the provider and metered as such. An answer that
 * waits for its provider (a long pause in a reasoning stream) is not waiting for its client, and is
 * never cut; a client that reads slowly shows progress (the response drained, or the OS took more
 * of the write in flight) and keeps its stream.
 */
export function cutWhenStalled(response: ServerResponse, stallMs: number): void {
  cutWithoutProgress(response, stallMs, () => response.writableNeedDrain);
}

/**
 * Cuts the connection of a whole answer (sent at once, `reply.send`) whose client took none of it
 * over a whole `stallMs` while it was being written, as `cutWhenStalled` cuts a stream's. Call it
 * just before the send: it watches only the write (the time the provider took is not the client's)
 * and is done once the answer is written. The request's usage record is written when its response
 * closes, so a client that stopped reading without closing would otherwise hold the record, and the
 * settling of its budget reservation, for as long as it stays connected (after `end` the response
 * never needs a drain, so `cutWhenStalled` would not see it wait). A client that reads slowly
 * shows progress (the OS takes more of the write in flight) and gets its whole answer. The cut
 * reads as the client gone: the request is recorded as cancelled, with what the provider reported.
 */
export function cutWhenWholeAnswerStalls(response: ServerResponse, stallMs: number): void {
  cutWithoutProgress(response, stallMs, () => response.writableEnded && !response.writableFinished);
}

/** Destroys `response` when it was `waiting` at two checks `stallMs` apart and its client took nothing between them; checks until it is written or closed. */
function cutWithoutProgress(response: ServerResponse, stallMs: number, waiting: () => boolean): void {
  if (response.destroyed || response.writableFinished) return;
  let drains = 0;
  const onDrain = (): void => void drains++;
  response.on('drain', onDrain);
  const socket = response.socket;
  const outbound = (): Outbound => ({ waiting: waiting(), drains, socketQueued: socket?.writableLength, osQueued: socket ? osQueuedBytes(socket) : undefined });
  let before = outbound();
  const timer = setInterval(() => {
    const now = outbound();
    const tookMore = now.drains > before.drains || shrank(before.socketQueued, now.socketQueued) || shrank(before.osQueued, now.osQueued);
    const stalled = before.waiting && now.waiting && !tookMore;
    before = now;
    if (stalled) response.destroy();
  }, stallMs);
  timer.unref();
  const stop = (): void => {
    clearInterval(timer);
    response.off('drain', onDrain);
    response.off('finish', stop);
    response.off('close', stop);
  };
  response.once('finish', stop);
  response.once('close', stop);
}

function shrank(before: number | undefined, now: number | undefined): boolean {
  return before !== undefined && now !== undefined && now < before;
}
