import { randomBytes } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { chatv1, routerv1 } from '@openrouter/contracts';
import { toLegacyChunk, toLegacyCompletion, toOpenAIChunk, toOpenAICompletion, toOpenAIEmbeddingResponse, toOpenAIUsage, type EmbeddingEncoding } from '@openrouter/openai-wire';
import type { TranslatedApi } from '../routes/chat.service';
import type { ChatCompletionKeeping } from '../chat-store/stored-chat-completions';
import { clientHasLeft, cutWhenStalled, cutWhenWholeAnswerStalls } from '../routes/client-connection';
import { SseWriter } from '../routes/sse.writer';
import type { UsageTrack } from '../usage/usage-recorder';
import { replayChunks } from './cached-answer';
import { CACHE_HEADER, type CacheHit, type CachedOrigin, type CachePlan } from './response-cache';

/** `x-openrouter-cache` of an answer that did not come from the cache: `miss` (a `use` request), `refresh` or `bypass`. */
export function cacheStatusHeaders(plan: CachePlan | undefined): Record<string, string> {
  if (!plan) return {};
  return { [CACHE_HEADER]: plan.mode === 'use' ? 'miss' : plan.mode };
}

/**
 * Whether an answer of this route may be stored: not when an A/B experiment or a gray release chose
 * its model. Which arm answers depends on who asks (the end user, the key), which the entry's scope
 * does not tell apart: another caller would be answered by an arm it is not on, and a rolled-back
 * canary's answers would outlive the rollback.
 */
export function storableRoute(decision: routerv1.RouteDecision): boolean {
  // An experiment arm's answer is its arm's; an answer a guardrail could not screen (its
  // moderation model down, fail mode open) would be served again to later requests without any.
  return !decision.experiment && !decision.unscreened;
}

/** The route that served a fresh answer and what it cost, as its entry keeps them. */
export function originOf(decision: routerv1.RouteDecision, usage: UsageTrack): CachedOrigin {
  return { model: decision.model, provider: decision.provider, deployment: decision.deployment, upstreamModel: decision.upstreamModel, cost: usage.cost() };
}

/** Headers of an answer from the cache: the first answer's route, its age, and a cost of 0 (`usage` has taken the hit). */
export function cacheHitHeaders(requestId: string, hit: CacheHit, usage: UsageTrack): Record<string, string> {
  return {
    [CACHE_HEADER]: 'hit',
    age: String(hit.ageSeconds),
    'x-openrouter-model': hit.model,
    'x-openrouter-provider': hit.provider,
    'x-openrouter-deployment': hit.deployment,
    'x-request-id': requestId,
    ...usage.costHeaders(),
  };
}

function hitHeaders(req: FastifyRequest, hit: CacheHit, usage: UsageTrack): Record<string, string> {
  return cacheHitHeaders(String(req.id), hit, usage);
}

/**
 * A chat request answered from the cache, whole or as a stream (`request.stream`) whatever the
 * entry came from: a stream replays the answer as OpenAI's chunks (each choice's message, then
 * its finish), the usage chunk when the client asked for it, and `[DONE]`; cut, whole or streamed,
 * as a provider's answer is, when its client stops reading for `stallMs` (`REQUEST_BOUNDS.streamStallMs`).
 */
export async function sendChatHit(
  req: FastifyRequest,
  reply: FastifyReply,
  request: chatv1.ChatRequest,
  hit: CacheHit & { completion: chatv1.ChatCompletion },
  usage: UsageTrack,
  stallMs: number,
  keeping?: ChatCompletionKeeping,
): Promise<void> {
  const completion = freshCompletion(hit.completion);
  usage.cacheHit(hit, completion.usage);
  const headers = hitHeaders(req, hit, usage);
  if (!request.stream) {
    const body = usage.decorate(toOpenAICompletion({ ...completion, usage: usage.tokens() }, hit.model));
    cutWhenWholeAnswerStalls(reply.raw, stallMs);
    await reply.headers(headers).send(keeping ? keeping.stamp(body) : body);
    // A request asking for `store: true` keeps its answer, a hit as any (docs/chat-completions-store.md).
    keeping?.whole(body);
    return;
  }
  // A client that stops reading is cut after a heartbeat without progress, as on a provider's stream:
  // otherwise the replay waits on it for ever, holding the request and its budget reservation.
  cutWhenStalled(reply.raw, stallMs);
  reply.hijack();
  const sse = new SseWriter(reply.raw);
  sse.open(headers);
  const send = (chunk: Record<string, unknown>): Promise<void> => sse.data(keeping ? keeping.chunk(chunk) : chunk);
  for (const chunk of replayChunks(completion)) await send(toOpenAIChunk(chunk, hit.model));
  if (request.streamOptions?.includeUsage === true) {
    await send(usage.decorate(toOpenAIChunk({ id: completion.id, created: completion.created, model: completion.model, choices: [], usage: usage.tokens() }, hit.model)));
  }
  sse.done();
  keeping?.streamEnded(!clientHasLeft(reply), usage);
}

/**
 * A hit is an answer of its own: a fresh id and creation time (clients that key messages on the
 * id, as LangChain's message reducers do, would otherwise merge two answers into one); `age`
 * tells how old the stored answer is.
 */
export function freshCompletion(completion: chatv1.ChatCompletion): chatv1.ChatCompletion {
  return { ...completion, id: `chatcmpl-${randomBytes(15).toString('base64url')}`, created: Math.floor(Date.now() / 1000) };
}

/**
 * A request of an API served by the chat path (the Responses API, Anthropic's Messages) answered
 * from the cache through that API's own translation: whole, its answer built from the stored chat
 * completion; streamed, the completion replayed as chunks (`replayChunks`) through the API's
 * stream translation, closed with the usage and a cost of 0, and cut when its client stops reading
 * for `stallMs`, as a provider's stream is. The API's answers carry ids of their own, fresh for each.
 */
export async function sendTranslatedHit<E extends { type: string }>(
  req: FastifyRequest,
  reply: FastifyReply,
  stream: boolean,
  hit: CacheHit & { completion: chatv1.ChatCompletion },
  usage: UsageTrack,
  stallMs: number,
  api: TranslatedApi<E>,
): Promise<void> {
  const completion = freshCompletion(hit.completion);
  usage.cacheHit(hit, completion.usage);
  const headers = { ...hitHeaders(req, hit, usage), ...api.headers };
  if (!stream) {
    cutWhenWholeAnswerStalls(reply.raw, stallMs);
    await reply.headers(headers).send(usage.decorate(await api.whole({ ...completion, usage: usage.tokens() }, hit.model)));
    return;
  }
  cutWhenStalled(reply.raw, stallMs);
  reply.hijack();
  const sse = new SseWriter(reply.raw);
  sse.open(headers);
  const { translation, ends } = api.stream(hit.model);
  const send = async (events: E[]): Promise<void> => {
    for (const event of events) await sse.event(event.type, event);
  };
  await send(translation.start());
  for (const chunk of replayChunks(completion)) await send(translation.chunk(chunk));
  const end = translation.complete(usage.tokens());
  await ends.decorate(end);
  await send(end);
  sse.end();
}

/**
 * A legacy completion (`/v1/completions`) answered from the cache, whole or streamed (`stream`)
 * whatever the entry came from. The entry holds every prompt's choices as one completion, numbered
 * across prompts as the legacy answer numbers them: whole, one `text_completion`; streamed, its
 * chunks as a chat hit's are (each choice's text, then its finish), the usage chunk when the client
 * asked for it (`includeUsage`), and `[DONE]`; cut, as a provider's stream is, when its client stops
 * reading for `stallMs`. A fresh `cmpl-` id, as any hit has.
 */
export async function sendLegacyHit(
  req: FastifyRequest,
  reply: FastifyReply,
  stream: { stream: boolean; includeUsage: boolean },
  hit: CacheHit & { completion: chatv1.ChatCompletion },
  usage: UsageTrack,
  stallMs: number,
): Promise<void> {
  const completion = freshCompletion(hit.completion);
  usage.cacheHit(hit, completion.usage);
  const headers = hitHeaders(req, hit, usage);
  if (!stream.stream) {
    // Its choices' indexes run across prompts already: one "prompt" of one choice each keeps them.
    cutWhenWholeAnswerStalls(reply.raw, stallMs);
    await reply.headers(headers).send(usage.decorate(toLegacyCompletion([{ ...completion, usage: usage.tokens() }], hit.model, 1)));
    return;
  }
  cutWhenStalled(reply.raw, stallMs);
  reply.hijack();
  const sse = new SseWriter(reply.raw);
  sse.open(headers);
  for (const chunk of replayChunks(completion)) await sse.data(toLegacyChunk(chunk, hit.model));
  if (stream.includeUsage) {
    const last = toLegacyChunk({ id: completion.id, created: completion.created, model: completion.model, choices: [] }, hit.model);
    await sse.data(usage.decorate({ ...last, usage: toOpenAIUsage(usage.tokens()) }));
  }
  sse.done();
}

/** An embeddings hit, cut as a provider's answer is when its client stops reading for `stallMs`. */
export async function sendEmbeddingHit(
  req: FastifyRequest,
  reply: FastifyReply,
  hit: CacheHit & { embedding: chatv1.EmbeddingResponse },
  encodingFormat: EmbeddingEncoding,
  usage: UsageTrack,
  stallMs: number,
): Promise<void> {
  usage.cacheHit(hit, hit.embedding.usage);
  cutWhenWholeAnswerStalls(reply.raw, stallMs);
  await reply.headers(hitHeaders(req, hit, usage)).send(usage.decorate(toOpenAIEmbeddingResponse(hit.embedding, hit.model, encodingFormat)));
}
