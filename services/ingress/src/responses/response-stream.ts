import type { FastifyReply } from 'fastify';
import { GatewayError } from '@openrouter/errors';
import { SseWriter } from '../routes/sse.writer';
import { clientHasLeft, cutWhenStalled } from '../routes/client-connection';
import { END_EVENTS, streamProgress, type StreamEvent } from './response-event-log';
import { orStoreUnavailable } from './response-store';
import type { StoredResponses } from './stored-responses';

/** Events read from the log at a time. */
const PAGE = 256;
/** After this long without writing, a comment keeps the connection from being taken for idle. */
const KEEPALIVE_MS = 15_000;
/**
 * After this long without an event, the reader asks whether the response ended without its end
 * event (its run stopped between storing it and adding the end), and adds it; and whether the
 * response is gone (deleted, or it expired while queued).
 */
const END_CHECK_MS = 5_000;

const notStreamable = (id: string): GatewayError =>
  new GatewayError(
    'bad_request',
    `Response '${id}' has no stream to read: only a background response created with 'stream' true can be streamed, for responses.background.streamRetentionHours after it was created. Retrieve it without 'stream'.`,
    { param: 'stream', code: 'response_not_streamable' },
  );

/**
 * Serves the stream of the owner's background response `id`, created with `stream: true`
 * (docs/responses-api.md#streaming-a-background-response): its events numbered above `after`
 * (all of them from -1) as server-sent events, those already there at once, then each as its run
 * adds it, on whichever replica, until the end event (`response.completed`, `.incomplete` or
 * `.failed`). A client that leaves stops only its reading: the response runs on, and the client
 * reads on with `starting_after`. 404 for a response the owner cannot read; 400
 * `response_not_streamable` for one with no stream (not created streamed, or its events expired).
 * Read after its end event, it is empty. A client that stops reading without closing is cut after
 * `stallMs` (`access.requests.streamStallMs`), as any stream is. `queued`: the first events of a
 * response just queued (its creation's own stream), sent without reading the store first.
 */
export async function serveResponseStream(reply: FastifyReply, stored: StoredResponses, owner: string, id: string, after: number, stallMs: number, queued?: StreamEvent[]): Promise<void> {
  const log = stored.events;
  let events: StreamEvent[];
  let ended = false;
  if (queued && log) {
    // Just queued (`queued`: its first events, as its stream holds them): nothing read before they are sent, so a store failing now cannot answer an error to a response that exists.
    events = queued.filter((event) => event.sequence_number > after);
  } else {
    await stored.get(owner, id);
    if (!log) throw notStreamable(id);
    events = await orStoreUnavailable(log.read(id, after, PAGE));
    // Nothing after `after`: no stream at all, or one that ended at or before it (answered at once, empty).
    if (events.length === 0) {
      const progress = await orStoreUnavailable(streamProgress(log, id));
      if (!progress) throw notStreamable(id);
      ended = progress.ended;
    }
  }

  reply.hijack();
  const sse = new SseWriter(reply.raw);
  sse.open({ 'x-request-id': String(reply.request.id) });
  // A client that stops reading without closing would otherwise hold its watch, the socket and the
  // events written to it until the server stops: cut, it reads as the client gone.
  cutWhenStalled(reply.raw, stallMs);
  let woken = false;
  let wake: (() => void) | undefined;
  const notify = (): void => {
    woken = true;
    wake?.();
  };
  let stopped = false;
  const stop = (): void => {
    stopped = true;
    notify();
  };
  const unwatch = log.watch(id, notify);
  reply.raw.once('close', stop);
  // The server stopping ends the reading (the client resumes on another replica), not the response.
  // A write its client has not taken is not waited for: the connection is cut rather than held
  // until the server cuts every connection left.
  const shutdown = reply.request.shutdownSignal;
  const onShutdown = (): void => {
    if (reply.raw.writableNeedDrain) reply.raw.destroy();
    stop();
  };
  shutdown.addEventListener('abort', onShutdown, { once: true });
  // Left (or stopping) while the stream was looked up: its `close` (or `abort`) has come and gone.
  if (ended || clientHasLeft(reply)) stop();
  if (shutdown.aborted) onShutdown();
  let last = after;
  let eventAt = Date.now();
  let wroteAt = Date.now();
  let checkedAt = Date.now();
  try {
    for (;;) {
      for (const event of events) {
        // Stopped: nothing more is written (the client reads on with `starting_after`).
        if (stopped) return;
        await sse.event(event.type, event);
        last = event.sequence_number;
        if (END_EVENTS.has(event.type)) return;
      }
      const now = Date.now();
      if (events.length > 0) eventAt = wroteAt = now;
      if (stopped) return;
      if (events.length < PAGE && !woken) await sleepUntilWoken((resolve) => (wake = resolve), END_CHECK_MS);
      wake = undefined;
      woken = false;
      if (stopped) return;
      events = await orStoreUnavailable(log.read(id, last, PAGE));
      if (events.length > 0) continue;
      if (Date.now() - wroteAt >= KEEPALIVE_MS) {
        await sse.comment('keepalive');
        wroteAt = Date.now();
      }
      if (Date.now() - Math.max(eventAt, checkedAt) < END_CHECK_MS) continue;
      checkedAt = Date.now();
      const state = await stored.endStream(owner, id);
      if (state === 'gone') {
        await sse.event('error', { type: 'error', sequence_number: last, code: 'response_not_found', message: `Response '${id}' was deleted, or has expired, before its stream ended.`, param: null });
        return;
      }
      if (state === 'ended') {
        // Its end event, added here or before: read at once, or, read already (`after` past it), nothing more.
        events = await orStoreUnavailable(log.read(id, last, PAGE));
        if (events.length === 0) return;
      }
    }
  } catch (error) {
    // Numbered as the last event read (none of the log's own numbers is skipped by a client that reads on after it).
    const message = `The stream of response '${id}' could not be read on (${error instanceof GatewayError ? error.message : 'the store failed'}); read it again with starting_after=${last}.`;
    await sse.event('error', { type: 'error', sequence_number: last, code: 'stream_interrupted', message, param: null });
  } finally {
    unwatch();
    reply.raw.off('close', stop);
    shutdown.removeEventListener('abort', onShutdown);
    sse.end();
  }
}

/** Until `wake` is called (given to `register`), or `ms` have passed. */
function sleepUntilWoken(register: (wake: () => void) => void, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      resolve();
    }
    register(done);
  });
}
