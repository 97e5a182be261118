import { Controller, HttpCode, Inject, Optional, Post, Req, Res, UseGuards } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { toOpenAICompletion, toOpenAIError } from '@openrouter/openai-wire';
import { ApiKeyGuard, requestContextOf } from '../auth/api-key.guard';
import { cacheStatusHeaders, sendChatHit } from '../cache/cache-replies';
import { ChatAnswerStoring } from '../cache/chat-answer-storing';
import { StoredChatCompletions, type ChatCompletionKeeping } from '../chat-store/stored-chat-completions';
import { ResponseCache, type CachePlan } from '../cache/response-cache';
import { RouterPort } from '../router.port';
import { clientChunks, openHttpChat, parseHttpChat } from './chat.service';
import { clientGone, cutWhenWholeAnswerStalls, toldOnFailure } from './client-connection';
import { REQUEST_BOUNDS, type RequestBounds } from './request-bounds';
import { SseWriter } from './sse.writer';
import { UsageRecorder, type UsageTrack } from '../usage/usage-recorder';

@Controller('v1')
@UseGuards(ApiKeyGuard)
export class ChatCompletionsHttpController {
  constructor(
    private readonly router: RouterPort,
    @Inject(REQUEST_BOUNDS) private readonly bounds: RequestBounds,
    private readonly usage: UsageRecorder,
    @Optional() private readonly cache?: ResponseCache,
    @Optional() @Inject(StoredChatCompletions) private readonly kept?: StoredChatCompletions,
  ) {}

  @Post('chat/completions')
  @HttpCode(200)
  async create(@Req() req: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    const usage = this.usage.track(req, reply, 'chat');
    const parsed = parseHttpChat(this.bounds, req);
    // `store: true` with the gateway keeping completions (docs/chat-completions-store.md); nothing more for any other request.
    const keeping = parsed.store === true && this.kept ? await this.kept.keeping(req.apiKeyRecord, requestContextOf(req), parsed, req.body) : undefined;
    // The response cache, when enabled: a hit is answered here, with no routing and no provider call.
    const plan = await this.cache?.planFor('/v1/chat/completions', requestContextOf(req), req.body, req.headers, req.apiKeyRecord);
    if (plan && this.cache) {
      // An identical request being answered now is waited for, until its client leaves.
      const hit = await this.cache.lookup(plan, String(req.id), clientGone(reply));
      if (hit?.completion) return sendChatHit(req, reply, parsed, { ...hit, completion: hit.completion }, usage, this.bounds.streamStallMs, keeping);
    }
    try {
      await this.answer(req, reply, usage, parsed, plan, keeping);
    } finally {
      // Whatever happened: requests waiting for this one's answer go on by themselves unless it is being stored.
      if (plan) this.cache?.abandon(plan);
    }
  }

  /** A fresh answer: routed, metered, sent whole or streamed, and stored when it may be. */
  private async answer(req: FastifyRequest, reply: FastifyReply, usage: UsageTrack, parsed: chatv1.ChatRequest, plan: CachePlan | undefined, keeping: ChatCompletionKeeping | undefined): Promise<void> {
    // Usage is always asked of the provider (metering needs it) and shown only when the client asked.
    const { request, opened, signal, headers, clientWantsUsage } = await openHttpChat(this.router, this.bounds, req, reply, usage, parsed);
    Object.assign(headers, cacheStatusHeaders(plan));
    const model = opened.decision.model;
    const storing = new ChatAnswerStoring(this.cache, plan, req, opened.decision, usage, request.stream);

    if (!request.stream) {
      const completion = opened.first.completion;
      if (!completion) throw new GatewayError('upstream_error', 'The provider streamed an answer that was asked for whole.');
      const answered = usage.completion(completion);
      const body = usage.decorate(toOpenAICompletion(answered, model));
      // A client that stops reading its answer is cut, so its request is recorded (as cancelled).
      cutWhenWholeAnswerStalls(reply.raw, this.bounds.streamStallMs);
      await reply.headers({ ...headers, ...usage.costHeaders() }).send(keeping ? keeping.stamp(body) : body);
      storing.whole(answered);
      keeping?.whole(body);
      return;
    }

    reply.hijack();
    const sse = new SseWriter(reply.raw);
    sse.open(headers);
    try {
      for await (const chunk of clientChunks(opened, { usage, budget: req.budget, clientWantsUsage, observe: storing.observe })) await sse.data(keeping ? keeping.chunk(chunk) : chunk);
      sse.done();
    } catch (error) {
      usage.failed(error);
      const told = toldOnFailure(error, signal);
      if (told) sse.fail(toOpenAIError(told).body);
      storing.streamEnded(false);
      keeping?.streamEnded(false, usage);
      return;
    }
    // Stored only once the stream completed normally, every choice finished for a storable reason.
    storing.streamEnded(!signal.aborted);
    keeping?.streamEnded(!signal.aborted, usage);
  }
}
