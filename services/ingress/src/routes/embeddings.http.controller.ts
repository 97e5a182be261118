import { Controller, HttpCode, Post, Req, Res, UseGuards } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { GatewayError } from '@openrouter/errors';
import { parseEmbeddingRequest, toOpenAIEmbeddingResponse } from '@openrouter/openai-wire';
import { ApiKeyGuard, requestContextOf } from '../auth/api-key.guard';
import { RouterPort } from '../router.port';
import { routeHeaders } from './chat.service';
import { stopIfClientLeft } from './client-connection';
import { UsageRecorder } from '../usage/usage-recorder';

@Controller('v1')
@UseGuards(ApiKeyGuard)
export class EmbeddingsHttpController {
  constructor(
    private readonly router: RouterPort,
    private readonly usage: UsageRecorder,
  ) {}

  @Post('embeddings')
  @HttpCode(200)
  async create(@Req() req: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    const usage = this.usage.track(req, reply, 'embedding');
    const { request, encodingFormat } = parseEmbeddingRequest(req.body);
    // Gone while the request was admitted: nothing has been spent yet.
    stopIfClientLeft(reply);
    // An embedding's cost is its input, billed by the provider once it has begun on it, and the
    // router names no deployment before it answers: a client that leaves does not stop the call,
    // so the request's record carries the tokens and cost the provider reports (as `cancelled`).
    const result = await usage.guard(this.router.embed({ context: requestContextOf(req), request }));
    if (!result.decision || !result.response) throw new GatewayError('upstream_error', 'The router returned no embeddings.');
    usage.routed(result.decision);
    usage.embedding(result.response.usage);
    stopIfClientLeft(reply);
    await reply
      .headers({ ...routeHeaders(result.decision), 'x-request-id': String(req.id), ...usage.costHeaders() })
      .send(usage.decorate(toOpenAIEmbeddingResponse(result.response, result.decision.model, encodingFormat)));
  }
}
