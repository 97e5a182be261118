import { Controller, HttpCode, Inject, Injectable, Optional, Post, Req, Res, UseGuards, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { GatewayError } from '@openrouter/errors';
import { ResponsesStream, responsesToChatBody, toOpenAIError, toResponse, toResponsesParam, withParamRenamed, type ResponsesStreamEvent } from '@openrouter/openai-wire';
import { ApiKeyGuard, KeyGuard } from '../auth/api-key.guard';
import { ResponseCache } from '../cache/response-cache';
import { RouterPort } from '../router.port';
import { UsageRecorder, type UsageTrack } from '../usage/usage-recorder';
import type { TranslatedApi } from './chat.service';
import { REQUEST_BOUNDS, refuseTooManyItems, type RequestBounds } from './request-bounds';
import { serveTranslatedChat } from './translated-chat.service';

declare module 'fastify' {
  interface FastifyRequest {
    /** A Responses API request as the client sent it; `body` then holds its chat translation. */
    responsesBody?: unknown;
  }
}

/**
 * Translates a Responses request into its chat body, after `KeyGuard` checked the caller's key and
 * before `ApiKeyGuard` runs: the request context's attributes, rate limits and the budget
 * reservation read `request.body` in the chat shape (and the reservation may cap its output limit
 * there). A request that does not validate is refused here, in OpenAI's error shape, before it is
 * charged; one with more input items than the gateway takes messages, before it is translated.
 */
@Injectable()
export class ResponsesBodyGuard implements CanActivate {
  constructor(@Inject(REQUEST_BOUNDS) private readonly bounds: RequestBounds) {}

  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    refuseTooManyItems(request.body, 'input', this.bounds);
    const chat = responsesToChatBody(request.body);
    request.responsesBody = request.body;
    request.body = chat;
    return true;
  }
}

/**
 * OpenAI's Responses API, stateless, served by the chat path (docs/responses-api.md): metered,
 * budgeted, routed and cached exactly as a chat completion, answered as a `response` object or its
 * stream events. Usage is recorded with the chat operation.
 */
@Controller('v1')
@UseGuards(KeyGuard, ResponsesBodyGuard, ApiKeyGuard)
export class ResponsesHttpController {
  constructor(
    private readonly router: RouterPort,
    @Inject(REQUEST_BOUNDS) private readonly bounds: RequestBounds,
    private readonly usageRecorder: UsageRecorder,
    @Optional() private readonly cache?: ResponseCache,
  ) {}

  @Post('responses')
  @HttpCode(200)
  async create(@Req() req: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    try {
      await this.serve(req, reply);
    } catch (error) {
      throw inResponsesTerms(error);
    }
  }

  private async serve(req: FastifyRequest, reply: FastifyReply): Promise<void> {
    const usage = this.usageRecorder.track(req, reply, 'chat');
    await serveTranslatedChat({ router: this.router, bounds: this.bounds, cache: this.cache }, '/v1/responses', req, reply, usage, responsesApi(req.responsesBody, usage));
  }
}

/** The Responses API's answers to `original` (the request as the client sent it, for the fields a response echoes), with the cost `usage` has. */
function responsesApi(original: unknown, usage: UsageTrack): TranslatedApi<ResponsesStreamEvent> {
  return {
    headers: {},
    whole: (completion, model) => toResponse(completion, model, original),
    stream: (model) => {
      const stream = new ResponsesStream(model, original);
      return {
        translation: stream,
        ends: {
          // The completed (or incomplete) response closes the stream and carries the cost.
          decorate: (end) => {
            const last = end.at(-1);
            if (last) usage.decorate(last['response']);
          },
          failure: (error) => {
            const { error: body } = toOpenAIError(inResponsesTerms(error)).body;
            return stream.fail({ code: body.code, message: body.message, param: body.param });
          },
        },
      };
    },
  };
}

/**
 * An error of the chat path (raised after the body was translated) in the words of the
 * Responses request the client sent: `max_completion_tokens` is its `max_output_tokens`.
 */
function inResponsesTerms<E>(error: E): E | GatewayError {
  return withParamRenamed(error, toResponsesParam);
}
