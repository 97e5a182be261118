import { Controller, HttpCode, Inject, Injectable, Optional, Post, Req, Res, UseGuards, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { GatewayError } from '@openrouter/errors';
import { AnthropicStream, countTokensToChatBody, inMessagesTerms, messagesToChatBody, toAnthropicError, toAnthropicMessage, type AnthropicStreamEvent } from '@openrouter/openai-wire';
import { AccessService } from '../access/access.service';
import { ApiKeyGuard, KeyGuard, requestContextOf, UnmeteredApiKeyGuard } from '../auth/api-key.guard';
import { ResponseCache } from '../cache/response-cache';
import { RouterPort } from '../router.port';
import { UsageRecorder, type UsageTrack } from '../usage/usage-recorder';
import type { TranslatedApi } from './chat.service';
import { REQUEST_BOUNDS, refuseTooManyItems, type RequestBounds } from './request-bounds';
import { serveTranslatedChat } from './translated-chat.service';

/**
 * Translates a Messages request into its chat body, after `KeyGuard` checked the caller's key and
 * before `ApiKeyGuard` runs: the request context's attributes, rate limits and the budget
 * reservation read `request.body` in the chat shape (and the reservation may cap its output limit
 * there). A request that does not validate is refused here, in Anthropic's error shape, before it
 * is charged; one with more messages than the gateway takes, before it is translated.
 */
@Injectable()
export class MessagesBodyGuard implements CanActivate {
  constructor(@Inject(REQUEST_BOUNDS) private readonly bounds: RequestBounds) {}

  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    refuseTooManyItems(request.body, 'messages', this.bounds);
    request.body = messagesToChatBody(request.body);
    return true;
  }
}

/** The same for a token count: its prompt as the chat body it would be. */
@Injectable()
export class CountTokensBodyGuard implements CanActivate {
  constructor(@Inject(REQUEST_BOUNDS) private readonly bounds: RequestBounds) {}

  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    refuseTooManyItems(request.body, 'messages', this.bounds);
    request.body = countTokensToChatBody(request.body);
    return true;
  }
}

/**
 * Anthropic's Messages API, served by the chat path (docs/anthropic-messages.md): metered,
 * budgeted, routed and cached exactly as a chat completion, to whichever provider the router picks, and
 * answered as a `message` or its stream events. Usage is recorded with the chat operation. Errors
 * on these routes have Anthropic's shape (see `OpenAIExceptionFilter`).
 */
@Controller('v1/messages')
export class MessagesHttpController {
  constructor(
    private readonly router: RouterPort,
    @Inject(REQUEST_BOUNDS) private readonly bounds: RequestBounds,
    private readonly usageRecorder: UsageRecorder,
    @Inject(AccessService) private readonly access: AccessService,
    @Optional() private readonly cache?: ResponseCache,
  ) {}

  @Post()
  @HttpCode(200)
  @UseGuards(KeyGuard, MessagesBodyGuard, ApiKeyGuard)
  async create(@Req() req: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    try {
      await this.serve(req, reply);
    } catch (error) {
      throw inMessagesTerms(error);
    }
  }

  /**
   * The prompt's tokens as the gateway estimates them for rate limits and budget reservations
   * (not the serving provider's own count): authenticated, and charged to nothing.
   */
  @Post('count_tokens')
  @HttpCode(200)
  @UseGuards(KeyGuard, CountTokensBodyGuard, UnmeteredApiKeyGuard)
  async countTokens(@Req() req: FastifyRequest): Promise<{ input_tokens: number }> {
    const model = (req.body as { model: string }).model;
    // Any name the chat path would serve for the key (a retired model's, by its replacement); as it
    // answers a name it cannot route, else.
    const { models } = await this.router.listModels(requestContextOf(req), true);
    if (!models.some((m) => m.id === model)) throw new GatewayError('not_found', `The model \`${model}\` does not exist or you do not have access to it.`, { param: 'model', code: 'model_not_found' });
    return { input_tokens: this.promptTokens(req.body) };
  }

  /** The chat body's prompt as rate limits and the budget reservation count it (its images at what the model declares). */
  private promptTokens(body: unknown): number {
    return this.access.tokenDemand((body as { model: string }).model, body).prompt;
  }

  private async serve(req: FastifyRequest, reply: FastifyReply): Promise<void> {
    const usage = this.usageRecorder.track(req, reply, 'chat');
    await serveTranslatedChat({ router: this.router, bounds: this.bounds, cache: this.cache }, '/v1/messages', req, reply, usage, this.messagesApi(req, usage));
  }

  /** The Messages API's answers to a request, with the cost `usage` has. */
  private messagesApi(req: FastifyRequest, usage: UsageTrack): TranslatedApi<AnthropicStreamEvent> {
    return {
      // Anthropic's name for the request id, read by its SDKs (`_request_id`).
      headers: { 'request-id': String(req.id) },
      // Its messages were counted as sent: a system prompt and each tool result become chat messages.
      boundedBeforeTranslation: true,
      // The usage billed (the gateway's estimate when the provider reported none), as a stream's message_delta has it.
      whole: (completion, model) => toAnthropicMessage(completion, model, completion.usage),
      stream: (model) => {
        const stream = new AnthropicStream(model, this.promptTokens(req.body));
        return {
          translation: stream,
          ends: {
            // message_delta carries the final usage, and the cost with it.
            decorate: (end) => {
              for (const event of end) if (event.type === 'message_delta') usage.decorate(event);
            },
            failure: (error) => stream.fail(toAnthropicError(inMessagesTerms(error)).body),
          },
        };
      },
    };
  }
}
