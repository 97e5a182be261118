import type { IncomingHttpHeaders } from 'node:http';
import type { chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { toOpenAIChunk, toOpenAICompletion } from '@openrouter/openai-wire';
import type { ChatCompletionKeeping } from '../chat-store/stored-chat-completions';
import type { UsageTrack } from '../usage/usage-recorder';
import type { ServerFrame } from '../ws/ws-protocol';
import { cacheHitHeaders, freshCompletion } from './cache-replies';
import { replayChunks } from './cached-answer';
import { CACHE_HEADER, CACHE_TTL_HEADER, type CacheHit } from './response-cache';

/** The headers a request on a WebSocket may send of its own (a frame's `headers`): those that steer the response cache. */
const SOCKET_REQUEST_HEADERS: readonly string[] = [CACHE_HEADER, CACHE_TTL_HEADER];

/** The cache headers of a socket's upgrade: they apply to every request on the socket that sends none of its own. */
export function upgradeCacheHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const found: Record<string, string> = {};
  for (const name of SOCKET_REQUEST_HEADERS) {
    const value = headers[name];
    if (typeof value === 'string') found[name] = value;
  }
  return found;
}

/**
 * The cache headers of one request on a socket: the frame's own `headers` (names in any case) over
 * the upgrade's, header by header. A frame may send only the cache's headers: any other name is the
 * client's error (400 naming `headers`), not silently ignored, since over HTTP it would mean
 * something (routing headers are not read on a socket).
 */
export function socketRequestCacheHeaders(socket: Readonly<Record<string, string>>, frame: Readonly<Record<string, string>> | undefined): Record<string, string> {
  const headers = { ...socket };
  for (const [name, value] of Object.entries(frame ?? {})) {
    const lower = name.toLowerCase();
    if (!SOCKET_REQUEST_HEADERS.includes(lower)) {
      throw new GatewayError('bad_request', `A request's headers on a WebSocket may be ${SOCKET_REQUEST_HEADERS.join(' and ')} only; got "${name.slice(0, 64)}".`, { param: 'headers', code: 'invalid_value' });
    }
    headers[lower] = value;
  }
  return headers;
}

/**
 * The frames of a chat request on a WebSocket answered from the cache, as HTTP answers it (see
 * `sendChatHit`): whole, one `completion` frame; streamed, `start`, per choice a chunk with its
 * whole message then one with its finish, the usage chunk when the client asked for it, and
 * `done`. Every answer under a fresh id, its headers the hit's (`x-openrouter-cache: hit`, `age`,
 * the first answer's route, a cost of 0) with `headers` (the admission's, the request id). Meters
 * the hit on `usage` (a cost of 0, recorded as a hit).
 */
export function socketHitFrames(
  id: string,
  request: Pick<chatv1.ChatRequest, 'stream'>,
  clientWantsUsage: boolean,
  hit: CacheHit & { completion: chatv1.ChatCompletion },
  usage: UsageTrack,
  headers: Record<string, string> & { 'x-request-id': string },
  /** A request asking for `store: true`: its answer takes the kept id (kept by the caller once sent). */
  keeping?: ChatCompletionKeeping,
): ServerFrame[] {
  const completion = freshCompletion(hit.completion);
  usage.cacheHit(hit, completion.usage);
  const all = { ...cacheHitHeaders(headers['x-request-id'], hit, usage), ...headers };
  if (!request.stream) {
    const data = usage.decorate(toOpenAICompletion({ ...completion, usage: usage.tokens() }, hit.model));
    return [{ type: 'completion', id, data: keeping ? keeping.stamp(data) : data, headers: all }];
  }
  const chunkFrame = (data: Record<string, unknown>): ServerFrame => ({ type: 'chunk', id, data: keeping ? keeping.chunk(data) : data });
  const frames: ServerFrame[] = [{ type: 'start', id, headers: all }];
  for (const chunk of replayChunks(completion)) frames.push(chunkFrame(toOpenAIChunk(chunk, hit.model)));
  if (clientWantsUsage) {
    const last = toOpenAIChunk({ id: completion.id, created: completion.created, model: completion.model, choices: [], usage: usage.tokens() }, hit.model);
    frames.push(chunkFrame(usage.decorate(last)));
  }
  frames.push({ type: 'done', id });
  return frames;
}
