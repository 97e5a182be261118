import { Controller, HttpCode, Inject, Injectable, Optional, Post, Req, Res, UseGuards, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { routerv1, type chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { parseEmbeddingRequest, toOpenAIEmbeddingResponse, type EmbeddingEncoding } from '@openrouter/openai-wire';
import { ApiKeyGuard, KeyGuard, requestContextOf } from '../auth/api-key.guard';
import { cacheStatusHeaders, originOf, sendEmbeddingHit, storableRoute } from '../cache/cache-replies';
import { ResponseCache, type CachePlan } from '../cache/response-cache';
import { RouterPort } from '../router.port';
import { routeHeaders } from './chat.service';
import { clientGone, cutWhenWholeAnswerStalls, stopIfClientLeft } from './client-connection';
import { REQUEST_BOUNDS, type RequestBounds } from './request-bounds';
import { UsageRecorder, type UsageTrack } from '../usage/usage-recorder';
import { EMBEDDING_INPUT_LIMITS, type EmbeddingInputLimits } from './embedding-input-limit';

/**
 * Refuses an input longer than the model takes, once `ApiKeyGuard` has admitted the request: the
 * inputs are tokenized only for a caller whose key is valid and whose rate limits take one more
 * request, so a caller over its limits costs no tokenizing at all. What the admission held for a
 * refused request (its token estimate, its budget reservation) is given back when it is answered,
 * as for any request refused before it was metered; the request itself counts against the key's
 * request limit.
 */
@Injectable()
export class EmbeddingInputGuard implements CanActivate {
  constructor(@Optional() @Inject(EMBEDDING_INPUT_LIMITS) private readonly limits?: EmbeddingInputLimits) {}

  canActivate(context: ExecutionContext): boolean {
    if (this.limits) this.limits.check(parseEmbeddingRequest(context.switchToHttp().getRequest<FastifyRequest>().body).request);
    return true;
  }
}

@Controller('v1')
@UseGuards(KeyGuard, ApiKeyGuard, EmbeddingInputGuard)
export class EmbeddingsHttpController {
  constructor(
    private readonly router: RouterPort,
    private readonly usage: UsageRecorder,
    @Inject(REQUEST_BOUNDS) private readonly bounds: RequestBounds,
    @Optional() private readonly cache?: ResponseCache,
  ) {}

  @Post('embeddings')
  @HttpCode(200)
  async create(@Req() req: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    const usage = this.usage.track(req, reply, 'embedding');
    const { request, encodingFormat } = parseEmbeddingRequest(req.body);
    // Gone while the request was admitted: nothing has been spent yet.
    stopIfClientLeft(reply);
    // The response cache, when enabled: a hit is answered here, with no routing and no provider call.
    const plan = await this.cache?.planFor('/v1/embeddings', requestContextOf(req), req.body, req.headers, req.apiKeyRecord);
    if (plan && this.cache) {
      // An identical request being answered now is waited for, until its client leaves.
      const hit = await this.cache.lookup(plan, String(req.id), clientGone(reply));
      if (hit?.embedding) return sendEmbeddingHit(req, reply, { ...hit, embedding: hit.embedding }, encodingFormat, usage, this.bounds.streamStallMs);
    }
    try {
      // Gone while the cache was consulted: its record is written already, so no call is made for it.
      stopIfClientLeft(reply);
      await this.answer(req, reply, usage, request, encodingFormat, plan);
    } finally {
      // Whatever happened: requests waiting for this one's answer go on by themselves unless it is being stored.
      if (plan) this.cache?.abandon(plan);
    }
  }

  /** A fresh answer: routed, metered, sent, and stored when it may be. */
  private async answer(req: FastifyRequest, reply: FastifyReply, usage: UsageTrack, request: chatv1.EmbeddingRequest, encodingFormat: EmbeddingEncoding, plan: CachePlan | undefined): Promise<void> {
    // An embedding's cost is its input, billed by the provider once it has begun on it, and the
    // router names no deployment before it answers: a client that leaves does not stop the call,
    // so the request's record carries the tokens and cost the provider reports (as `cancelled`).
    const result = await usage.guard(
      this.router.embed({ context: requestContextOf(req), request }).catch((error: unknown) => {
        recordBilled(usage, error);
        throw error;
      }),
    );
    if (!result.decision || !result.response) throw new GatewayError('upstream_error', 'The router returned no embeddings.');
    usage.routed(result.decision);
    usage.embedding(result.response.usage);
    // Stored even when the client has gone: the answer is whole, and paid for (not one an experiment's arm answered).
    if (plan && plan.mode !== 'bypass' && storableRoute(result.decision)) this.cache?.storeEmbedding(plan, originOf(result.decision, usage), result.response, String(req.id));
    else if (plan) this.cache?.skipped(plan);
    stopIfClientLeft(reply);
    // A client that stops reading its answer is cut, so its request is recorded (as cancelled).
    cutWhenWholeAnswerStalls(reply.raw, this.bounds.streamStallMs);
    await reply
      .headers({ ...routeHeaders(result.decision), ...cacheStatusHeaders(plan), 'x-request-id': String(req.id), ...usage.costHeaders() })
      .send(usage.decorate(toOpenAIEmbeddingResponse(result.response, result.decision.model, encodingFormat)));
  }
}

/**
 * A request split over several provider calls that failed after some of them answered: the
 * provider billed those, so its record (with the request's error) carries their input tokens at
 * the route that served them.
 */
function recordBilled(usage: UsageTrack, error: unknown): void {
  const billed = error instanceof GatewayError ? error.billed : undefined;
  if (!billed?.model || !billed.deployment) return;
  usage.routed(routerv1.RouteDecision.fromPartial({ model: billed.model, provider: error instanceof GatewayError ? (error.provider ?? '') : '', deployment: billed.deployment, upstreamModel: billed.upstreamModel ?? '', attempts: 1 }));
  const tokens = billed.promptTokens;
  usage.embedding({ promptTokens: tokens, completionTokens: 0, totalTokens: tokens, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, estimated: billed.estimated });
}
