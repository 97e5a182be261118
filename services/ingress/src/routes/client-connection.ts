import type { FastifyReply } from 'fastify';

/** A signal that aborts when the client goes away before its response has been written. */
export function clientGone(reply: FastifyReply): AbortSignal {
  const abort = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) abort.abort();
  });
  return abort.signal;
}
