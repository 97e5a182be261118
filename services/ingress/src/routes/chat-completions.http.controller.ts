import { Controller, HttpCode, Inject, Post, Req, Res, UseGuards } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { GatewayError } from '@openrouter/errors';
import { parseChatRequest, toOpenAICompletion, toOpenAIError } from '@openrouter/openai-wire';
import { ApiKeyGuard, requestContextOf } from '../auth/api-key.guard';
import { asGatewayError } from '../openai-exception.filter';
import { RouterPort } from '../router.port';
import { applyRouteHeaders, clientChunks, openChat, routeHeaders } from './chat.service';
import { clientGone } from './client-connection';
import { checkChatBounds, REQUEST_BOUNDS, type RequestBounds } from './request-bounds';
import { SseWriter } from './sse.writer';
import { UsageRecorder } from '../usage/usage-recorder';

@Controller('v1')
@UseGuards(ApiKeyGuard)
export class ChatCompletionsHttpController {
  constructor(
    private readonly router: RouterPort,
    @Inject(REQUEST_BOUNDS) private readonly bounds: RequestBounds,
    private readonly usage: UsageRecorder,
  ) {}

  @Post('chat/completions')
  @HttpCode(200)
  async create(@Req() req: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    const usage = this.usage.track(req, reply, 'chat');
    const request = parseChatRequest(req.body);
    applyRouteHeaders(request, req.headers);
    checkChatBounds(request, this.bounds);
    const clientWantsUsage = request.streamOptions?.includeUsage === true;
    if (request.stream) {
      // Usage is always asked of the provider (metering needs it) and shown only when the client asked.
      request.streamOptions = { extraJson: '', ...request.streamOptions, includeUsage: true };
    }
    const signal = clientGone(reply);
    const opened = await usage.guard(openChat(this.router, requestContextOf(req), request, signal, usage.calling));
    usage.routed(opened.decision);
    const model = opened.decision.model;
    const headers = { ...routeHeaders(opened.decision), 'x-request-id': String(req.id) };

    if (!request.stream) {
      const completion = opened.first.completion;
      if (!completion) throw new GatewayError('upstream_error', 'The provider streamed an answer that was asked for whole.');
      usage.completion(completion);
      await reply.headers({ ...headers, ...usage.costHeaders() }).send(usage.decorate(toOpenAICompletion(completion, model)));
      return;
    }

    reply.hijack();
    const sse = new SseWriter(reply.raw);
    sse.open(headers);
    try {
      for await (const chunk of clientChunks(opened, { usage, budget: req.budget, clientWantsUsage })) await sse.data(chunk);
      sse.done();
    } catch (error) {
      usage.failed(error);
      if (signal.aborted) return;
      sse.fail(toOpenAIError(asGatewayError(error)).body);
    }
  }
}
