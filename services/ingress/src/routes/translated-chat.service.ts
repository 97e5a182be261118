import type { FastifyReply, FastifyRequest } from 'fastify';
import { GatewayError } from '@openrouter/errors';
import { requestContextOf } from '../auth/api-key.guard';
import { cacheStatusHeaders, sendTranslatedHit } from '../cache/cache-replies';
import type { CacheEndpoint } from '../cache/cache-key';
import { ChatAnswerStoring } from '../cache/chat-answer-storing';
import type { CachePlan, ResponseCache } from '../cache/response-cache';
import type { RouterPort } from '../router.port';
import type { UsageTrack } from '../usage/usage-recorder';
import type { chatv1 } from '@openrouter/contracts';
import { openHttpChat, parseHttpChat, sendTranslatedStream, type TranslatedApi } from './chat.service';
import { clientGone, cutWhenWholeAnswerStalls } from './client-connection';
import type { RequestBounds } from './request-bounds';

/** What serving a translated API's request takes: the router, the request bounds and the response cache (when enabled). */
export interface TranslatedChatDeps {
  router: RouterPort;
  bounds: RequestBounds;
  cache: ResponseCache | undefined;
}

/**
 * Serves a request of an API the chat path answers (the Responses API, Anthropic's Messages),
 * whose `req.body` is already its chat translation: through the response cache as a chat
 * completion is (docs/caching.md), keyed on that translation under the API's own `endpoint`, so an
 * entry is only ever replayed in its own API's format. A hit is answered with no routing and no
 * provider call; a fresh answer is routed, metered, sent in the API's format and stored when it may be.
 */
export async function serveTranslatedChat<E extends { type: string }>(
  deps: TranslatedChatDeps,
  endpoint: CacheEndpoint,
  req: FastifyRequest,
  reply: FastifyReply,
  usage: UsageTrack,
  api: TranslatedApi<E>,
): Promise<void> {
  const { bounds, cache } = deps;
  const parsed = parseHttpChat(bounds, req, api.boundedBeforeTranslation === true);
  const plan = await cache?.planFor(endpoint, requestContextOf(req), req.body, req.headers, req.apiKeyRecord);
  if (plan && cache) {
    // An identical request being answered now is waited for, until its client leaves.
    const hit = await cache.lookup(plan, String(req.id), clientGone(reply));
    if (hit?.completion) return sendTranslatedHit(req, reply, parsed.stream, { ...hit, completion: hit.completion }, usage, bounds.streamStallMs, api);
  }
  try {
    await answerTranslatedChat(deps, plan, req, reply, usage, api, parsed);
  } finally {
    // Whatever happened: requests waiting for this one's answer go on by themselves unless it is being stored.
    if (plan) cache?.abandon(plan);
  }
}

/** A fresh answer of `serveTranslatedChat`: routed, metered, sent in the API's format and stored when it may be. */
async function answerTranslatedChat<E extends { type: string }>(
  deps: TranslatedChatDeps,
  plan: CachePlan | undefined,
  req: FastifyRequest,
  reply: FastifyReply,
  usage: UsageTrack,
  api: TranslatedApi<E>,
  parsed: chatv1.ChatRequest,
): Promise<void> {
  const { router, bounds, cache } = deps;
  // A stream's usage is always asked of the provider: metering needs it, and the API's closing events carry it.
  const { request, opened, signal, headers } = await openHttpChat(router, bounds, req, reply, usage, parsed);
  Object.assign(headers, cacheStatusHeaders(plan), api.headers);
  const model = opened.decision.model;
  const storing = new ChatAnswerStoring(cache, plan, req, opened.decision, usage, request.stream);

  if (!request.stream) {
    const completion = opened.first.completion;
    if (!completion) throw new GatewayError('upstream_error', 'The provider streamed an answer that was asked for whole.');
    // With the usage billed (the gateway's estimate when the provider reported none), as a stream's end has it.
    const answered = usage.completion(completion);
    const body = usage.decorate(await api.whole(answered, model));
    // A client that stops reading its answer is cut, so its request is recorded (as cancelled).
    cutWhenWholeAnswerStalls(reply.raw, bounds.streamStallMs);
    await reply.headers({ ...headers, ...usage.costHeaders() }).send(body);
    storing.whole(answered);
    return;
  }

  const { translation, ends } = api.stream(model);
  storing.streamEnded(await sendTranslatedStream(req, reply, { opened, signal }, usage, headers, translation, ends, storing.observe));
}
