import type { FastifyReply } from 'fastify';
import { GatewayError } from '@openrouter/errors';

/**
 * Whether the client went away before its response was written. Read from the response's own
 * state, so a close that happened while the request was still being admitted (before any
 * listener was attached) is seen too.
 */
export function clientHasLeft(reply: FastifyReply): boolean {
  return (reply.raw.destroyed || reply.raw.closed) && !reply.raw.writableFinished;
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

/** A signal that aborts when the client goes away before its response has been written. */
export function clientGone(reply: FastifyReply): AbortSignal {
  const abort = new AbortController();
  if (clientHasLeft(reply)) abort.abort();
  else
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) abort.abort();
    });
  return abort.signal;
}

/** When the request arrived (epoch ms), from the time Fastify has been handling it. */
export function arrivedAtMs(reply: FastifyReply): number {
  return Math.round(Date.now() - reply.elapsedTime);
}

/** Throws `cancelled` when the client has gone, so nothing further is spent on its request. */
export function stopIfClientLeft(reply: FastifyReply): void {
  if (clientHasLeft(reply)) throw new GatewayError('cancelled', 'The client went away.');
}
