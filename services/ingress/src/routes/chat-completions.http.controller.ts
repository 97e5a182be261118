import { Controller, HttpCode, Inject, Optional, Post, Req, Res, UseGuards } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { GatewayError } from '@openrouter/errors';
import { toOpenAICompletion, toOpenAIError } from '@openrouter/openai-wire';
import { ApiKeyGuard, requestContextOf } from '../auth/api-key.guard';
import { cacheStatusHeaders, originOf, sendChatHit, storableRoute } from '../cache/cache-replies';
import { completionStorable } from '../cache/cached-answer';
import { ResponseCache } from '../cache/response-cache';
import { RouterPort } from '../router.port';
import { clientChunks, openHttpChat, parseHttpChat } from './chat.service';
import { toldOnFailure } from './client-connection';
import { REQUEST_BOUNDS, type RequestBounds } from './request-bounds';
import { SseWriter } from './sse.writer';
import { UsageRecorder } from '../usage/usage-recorder';

@Controller('v1')
@UseGuards(ApiKeyGuard)
export class ChatCompletionsHttpController {
  constructor(
    private readonly router: RouterPort,
    @Inject(REQUEST_BOUNDS) private readonly bounds: RequestBounds,
    private readonly usage: UsageRecorder,
    @Optional() private readonly cache?: ResponseCache,
  ) {}

  @Post('chat/completions')
  @HttpCode(200)
  async create(@Req() req: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    const usage = this.usage.track(req, reply, 'chat');
    const parsed = parseHttpChat(this.bounds, req);
    // The response cache, when enabled: a hit is answered here, with no routing and no provider call.
    const plan = this.cache?.plan('/v1/chat/completions', requestContextOf(req), req.body, req.headers);
    if (plan && this.cache) {
      const hit = await this.cache.lookup(plan, String(req.id));
      if (hit?.completion) return sendChatHit(req, reply, parsed, { ...hit, completion: hit.completion }, usage, this.bounds.streamStallMs);
    }
    // Usage is always asked of the provider (metering needs it) and shown only when the client asked.
    const { request, opened, signal, headers, clientWantsUsage } = await openHttpChat(this.router, this.bounds, req, reply, usage, parsed);
    Object.assign(headers, cacheStatusHeaders(plan));
    const model = opened.decision.model;
    // An answer the budget capped (its output limit set by the gateway) is not the request's own, and
    // one an experiment's arm answered is not every caller's: never stored.
    const storing = plan && plan.mode !== 'bypass' && this.cache && !req.budget?.capped && storableRoute(opened.decision) ? { plan, cache: this.cache } : undefined;

    if (!request.stream) {
      const completion = opened.first.completion;
      if (!completion) throw new GatewayError('upstream_error', 'The provider streamed an answer that was asked for whole.');
      const answered = usage.completion(completion);
      await reply.headers({ ...headers, ...usage.costHeaders() }).send(usage.decorate(toOpenAICompletion(answered, model)));
      if (storing && completionStorable(answered)) storing.cache.storeCompletion(storing.plan, originOf(opened.decision, usage), { ...answered, usage: usage.tokens() }, String(req.id));
      else if (plan) this.cache?.skipped(plan);
      return;
    }

    reply.hijack();
    const sse = new SseWriter(reply.raw);
    sse.open(headers);
    const gathered = storing ? storing.cache.gathering() : undefined;
    try {
      for await (const chunk of clientChunks(opened, { usage, budget: req.budget, clientWantsUsage, observe: gathered && ((c) => gathered.add(c)) })) await sse.data(chunk);
      sse.done();
    } catch (error) {
      usage.failed(error);
      const told = toldOnFailure(error, signal);
      if (told) sse.fail(toOpenAIError(told).body);
      if (plan) this.cache?.skipped(plan);
      return;
    }
    // Stored only once the stream completed normally, every choice finished for a storable reason.
    const whole = storing && gathered && !signal.aborted ? gathered.whole(usage.tokens()) : undefined;
    if (storing && whole) storing.cache.storeCompletion(storing.plan, originOf(opened.decision, usage), whole, String(req.id));
    else if (plan) this.cache?.skipped(plan);
  }
}
