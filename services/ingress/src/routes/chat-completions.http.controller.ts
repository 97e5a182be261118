import { Controller, HttpCode, Inject, Post, Req, Res, UseGuards } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { GatewayError } from '@openrouter/errors';
import { toOpenAICompletion, toOpenAIError } from '@openrouter/openai-wire';
import { ApiKeyGuard } from '../auth/api-key.guard';
import { RouterPort } from '../router.port';
import { clientChunks, openHttpChat } from './chat.service';
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
  ) {}

  @Post('chat/completions')
  @HttpCode(200)
  async create(@Req() req: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    const usage = this.usage.track(req, reply, 'chat');
    // Usage is always asked of the provider (metering needs it) and shown only when the client asked.
    const { request, opened, signal, headers, clientWantsUsage } = await openHttpChat(this.router, this.bounds, req, reply, usage);
    const model = opened.decision.model;

    if (!request.stream) {
      const completion = opened.first.completion;
      if (!completion) throw new GatewayError('upstream_error', 'The provider streamed an answer that was asked for whole.');
      const answered = usage.completion(completion);
      await reply.headers({ ...headers, ...usage.costHeaders() }).send(usage.decorate(toOpenAICompletion(answered, model)));
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
      const told = toldOnFailure(error, signal);
      if (told) sse.fail(toOpenAIError(told).body);
    }
  }
}
