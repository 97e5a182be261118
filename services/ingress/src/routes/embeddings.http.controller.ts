import { Controller, HttpCode, Post, Req, Res, UseGuards } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { GatewayError } from '@openrouter/errors';
import { parseEmbeddingRequest, toOpenAIEmbeddingResponse } from '@openrouter/openai-wire';
import { ApiKeyGuard, requestContextOf } from '../auth/api-key.guard';
import { RouterClient } from '../router.client';
import { routeHeaders } from './chat.service';
import { clientGone } from './client-connection';

@Controller('v1')
@UseGuards(ApiKeyGuard)
export class EmbeddingsHttpController {
  constructor(private readonly router: RouterClient) {}

  @Post('embeddings')
  @HttpCode(200)
  async create(@Req() req: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    const { request, encodingFormat } = parseEmbeddingRequest(req.body);
    const result = await this.router.embed({ context: requestContextOf(req), request }, clientGone(reply));
    if (!result.decision || !result.response) throw new GatewayError('upstream_error', 'The router returned no embeddings.');
    await reply
      .headers({ ...routeHeaders(result.decision), 'x-request-id': String(req.id) })
      .send(toOpenAIEmbeddingResponse(result.response, result.decision.model, encodingFormat));
    void req.admission?.settle(result.response.usage?.totalTokens ?? 0);
  }
}
