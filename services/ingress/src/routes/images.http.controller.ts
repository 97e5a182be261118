import { Controller, HttpCode, Inject, Post, Req, Res, UseGuards } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { parseImageEditRequest, parseImageGenerationRequest, toOpenAIImageGenerationResponse } from '@openrouter/openai-wire';
import { ApiKeyGuard, KeyGuard, requestContextOf } from '../auth/api-key.guard';
import { RouterPort } from '../router.port';
import { UsageRecorder } from '../usage/usage-recorder';
import { routeHeaders } from './chat.service';
import { cutWhenWholeAnswerStalls, stopIfClientLeft } from './client-connection';
import { REQUEST_BOUNDS, type RequestBounds } from './request-bounds';

/**
 * OpenAI's image generation (`POST /v1/images/generations`) and image edits (`POST
 * /v1/images/edits`, a multipart form of images and a prompt, read up to
 * `ingress.limits.imageEditBytes`). Admitted like any request (key, network lists, rate limits,
 * budget reservation: each image at its model's `budgets.maxOutputTokens`, an edit's uploaded
 * images as prompt tokens at its models' `imageTokens`), the prompt screened by the input
 * guardrails, routed to a model with the `images` capability (the one named, else `auto` over
 * those models), and metered at the provider's token usage (GPT Image models), else at the
 * prompt's estimate, and at the model's `perImage` price for each image the answer carries (DALL·E)
 * and its `perRequest` price. An edit is served as a generation with
 * images: the same route, the same answer.
 */
@Controller('v1/images')
@UseGuards(KeyGuard, ApiKeyGuard)
export class ImagesHttpController {
  constructor(
    private readonly router: RouterPort,
    private readonly usage: UsageRecorder,
    @Inject(REQUEST_BOUNDS) private readonly bounds: RequestBounds,
  ) {}

  @Post('generations')
  @HttpCode(200)
  async generate(@Req() req: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    await this.serve(req, reply, parseImageGenerationRequest);
  }

  @Post('edits')
  @HttpCode(200)
  async edit(@Req() req: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    await this.serve(req, reply, parseImageEditRequest);
  }

  private async serve(req: FastifyRequest, reply: FastifyReply, parse: (body: unknown) => chatv1.ImageGenerationRequest): Promise<void> {
    const usage = this.usage.track(req, reply, 'image');
    const request = parse(req.body);
    // Gone while the request was admitted: nothing has been spent yet.
    stopIfClientLeft(reply);
    // A provider bills images it has begun making, whether or not the client waits for them: a
    // client that leaves does not stop the call, and its record carries what it cost.
    const result = await usage.guard(this.router.generateImages({ context: requestContextOf(req), request }));
    if (!result.decision || !result.response) throw new GatewayError('upstream_error', 'The router returned no images.');
    usage.routed(result.decision);
    usage.images(result.response.usage, result.response.inputImageTokens, result.response.data.length);
    stopIfClientLeft(reply);
    const answer = toOpenAIImageGenerationResponse(result.response);
    // A client that stops reading its answer is cut, so its request is recorded (as cancelled).
    cutWhenWholeAnswerStalls(reply.raw, this.bounds.streamStallMs);
    await reply.headers({ ...routeHeaders(result.decision), 'x-request-id': String(req.id), ...usage.costHeaders() }).send(usage.decorate(answer));
  }
}
