import { Controller, HttpCode, Inject, Post, Req, Res, UseGuards } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { GatewayError } from '@openrouter/errors';
import { parseModerationRequest, toOpenAIModerationResponse } from '@openrouter/openai-wire';
import { ApiKeyGuard, KeyGuard, requestContextOf } from '../auth/api-key.guard';
import { RouterPort } from '../router.port';
import { UsageRecorder } from '../usage/usage-recorder';
import { routeHeaders } from './chat.service';
import { cutWhenWholeAnswerStalls, stopIfClientLeft } from './client-connection';
import { REQUEST_BOUNDS, type RequestBounds } from './request-bounds';

/**
 * OpenAI's Moderations API. The request is admitted like any other (key, network lists, rate
 * limits, budget reservation), screened by the input guardrails and routed, in the router, to a
 * model with the `moderation` capability: the one it names, or, as OpenAI's SDK may name none,
 * `auto` over those models. Providers report no usage for a moderation: the record carries the
 * adapter's estimate of the input's tokens, priced at the model's input price (usually 0).
 */
@Controller('v1')
@UseGuards(KeyGuard, ApiKeyGuard)
export class ModerationsHttpController {
  constructor(
    private readonly router: RouterPort,
    private readonly usage: UsageRecorder,
    @Inject(REQUEST_BOUNDS) private readonly bounds: RequestBounds,
  ) {}

  @Post('moderations')
  @HttpCode(200)
  async create(@Req() req: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    const usage = this.usage.track(req, reply, 'moderation');
    const request = parseModerationRequest(req.body);
    // Gone while the request was admitted: nothing has been spent yet.
    stopIfClientLeft(reply);
    // As an embedding's, a moderation's cost is its input, and the provider has it once the call
    // began: a client that leaves does not stop the call, so its record carries what it cost.
    const result = await usage.guard(this.router.moderate({ context: requestContextOf(req), request }));
    if (!result.decision || !result.response) throw new GatewayError('upstream_error', 'The router returned no moderation results.');
    usage.routed(result.decision);
    usage.embedding(result.response.usage);
    stopIfClientLeft(reply);
    // A client that stops reading its answer is cut, so its request is recorded (as cancelled).
    cutWhenWholeAnswerStalls(reply.raw, this.bounds.streamStallMs);
    await reply
      .headers({ ...routeHeaders(result.decision), 'x-request-id': String(req.id), ...usage.costHeaders() })
      .send(usage.decorate(toOpenAIModerationResponse(result.response, result.decision.model)));
  }
}
