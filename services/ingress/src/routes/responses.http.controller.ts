import { Controller, HttpCode, Inject, Injectable, Optional, Post, Req, Res, UseGuards, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { GatewayError } from '@openrouter/errors';
import { conversationIdOf, responseView, ResponsesStream, responsesToChatBody, toOpenAIError, toResponse, toResponsesParam, withParamRenamed, type ResponsesStreamEvent } from '@openrouter/openai-wire';
import { AccessService } from '../access/access.service';
import { Conversations } from '../conversations/conversations';
import { ApiKeyGuard, KeyGuard, requestContextOf, UnmeteredApiKeyGuard } from '../auth/api-key.guard';
import { INTERNAL_CALL_HEADER } from '../access/internal-call';
import { ownerOf } from '../access/owner';
import { BACKGROUND_RUN_HEADER } from '../responses/background-runner';
import { ResponseCache } from '../cache/response-cache';
import { orStoreUnavailable, type ResponseJson } from '../responses/response-store';
import { serveResponseStream } from '../responses/response-stream';
import { NEW_CONVERSATION, queuedEvents, StoredResponses, type Conversation } from '../responses/stored-responses';
import { RouterPort } from '../router.port';
import { UsageRecorder, type UsageTrack } from '../usage/usage-recorder';
import type { TranslatedApi } from './chat.service';
import { REQUEST_BOUNDS, refuseTooManyItems, type RequestBounds } from './request-bounds';
import { serveTranslatedChat } from './translated-chat.service';

/** Where a Responses request stands in stored conversations. */
export interface ResponsesTurn {
  /** Its project (`ownerOf`): the owner of the response it continues and of the one it makes. */
  owner: string;
  /** Whether its response is stored: asked for (`store`, true unless sent false), `responses.store` on, and no policy of its key or tenants says `storeResponses: false`. */
  store: boolean;
  /** The conversation it continues (none: `NEW_CONVERSATION`): the responses before the one it makes, oldest first, and their size. */
  conversation: Omit<Conversation, 'history'>;
  /** `background: true`: the request is queued, not served (docs/responses-api.md#background-responses). */
  background: boolean;
  /** The conversation of the Conversations API it adds its input and output items to, once answered. */
  conversationId?: string | undefined;
  /** The ids of the items that conversation held when the request read it. */
  conversationItemIds?: ReadonlySet<string> | undefined;
  /** The background response this request runs (an internal call of the runner's): its response takes its id and creation time, and says `background: true`. */
  runs?: { id: string; createdAt: number } | undefined;
}

/** The headers of a request queued in the background that its run is sent with. */
const STEERING_HEADERS = ['x-openrouter-tags', 'x-openrouter-app', 'x-openrouter-user', 'x-openrouter-route', 'x-openrouter-models', 'x-openrouter-cache', 'x-openrouter-cache-ttl'] as const;

const RESPONSE_ID = /^resp_[0-9a-f]{48}$/;

declare module 'fastify' {
  interface FastifyRequest {
    /** A Responses API request as the client sent it; `body` then holds its chat translation. */
    responsesBody?: unknown;
    responsesTurn?: ResponsesTurn;
  }
}

/** A `previous_response_id` as sent, when it is a string (anything else fails validation). */
function previousResponseIdOf(body: unknown): string | undefined {
  const id = typeof body === 'object' && body !== null ? (body as Record<string, unknown>)['previous_response_id'] : undefined;
  return typeof id === 'string' ? id : undefined;
}

/** The background response an internal call runs: only the runner's calls (made with this process's internal credential, which `KeyGuard` checked) name one. */
function backgroundRunOf(request: FastifyRequest): string | undefined {
  const id = request.headers[BACKGROUND_RUN_HEADER];
  return request.headers[INTERNAL_CALL_HEADER] !== undefined && request.apiKeyRecord && typeof id === 'string' && RESPONSE_ID.test(id) ? id : undefined;
}

/**
 * Admits a Responses request: one that is served as any chat request (`ApiKeyGuard`: rate limits,
 * token limits, the budget's reservation); one queued in the background as a request that spends
 * nothing yet (`UnmeteredApiKeyGuard`), since its run is admitted and metered when it runs.
 */
@Injectable()
export class ResponsesAdmissionGuard implements CanActivate {
  constructor(
    @Inject(ApiKeyGuard) private readonly metered: ApiKeyGuard,
    @Inject(UnmeteredApiKeyGuard) private readonly unmetered: UnmeteredApiKeyGuard,
  ) {}

  canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    return (request.responsesTurn?.background ? this.unmetered : this.metered).canActivate(context);
  }
}

/**
 * Translates a Responses request into its chat body, after `KeyGuard` checked the caller's key and
 * before `ApiKeyGuard` runs: the request context's attributes, rate limits and the budget
 * reservation read `request.body` in the chat shape (and the reservation may cap its output limit
 * there), which holds the whole conversation when the request continues a stored response. A
 * request that does not validate, or continues a response its project cannot read, is refused
 * here, in OpenAI's error shape, before it is charged; one with more input items than the gateway
 * takes messages, before it is read further.
 */
@Injectable()
export class ResponsesBodyGuard implements CanActivate {
  constructor(
    @Inject(REQUEST_BOUNDS) private readonly bounds: RequestBounds,
    @Inject(AccessService) private readonly access: AccessService,
    @Optional() @Inject(StoredResponses) private readonly stored?: StoredResponses,
    @Optional() @Inject(Conversations) private readonly conversations?: Conversations,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    refuseTooManyItems(request.body, 'input', this.bounds);
    const key = request.apiKeyRecord;
    const owner = key ? ownerOf({ orgId: key.orgId, projectId: key.projectId, keyId: key.id }) : '';
    // A tenant's policy may keep its requests from being stored at all.
    const unstoredBy = this.stored && key ? await this.access.responsesUnstoredBy(key) : undefined;
    const previous = previousResponseIdOf(request.body);
    if (previous !== undefined && unstoredBy) {
      throw new GatewayError('bad_request', `'previous_response_id' is not supported for this key: the policy of its ${unstoredBy} keeps its responses from being stored (store_responses false); send the whole conversation in 'input'.`, {
        param: 'previous_response_id',
        code: 'unsupported_parameter',
      });
    }
    const conversationId = conversationIdOf(request.body);
    if (conversationId !== undefined && unstoredBy) {
      throw new GatewayError('bad_request', `'conversation' is not supported for this key: the policy of its ${unstoredBy} keeps its responses from being stored (store_responses false); send the whole conversation in 'input'.`, {
        param: 'conversation',
        code: 'unsupported_parameter',
      });
    }
    // Read before the body is validated (a body that is no object is refused as such below).
    if (unstoredBy && typeof request.body === 'object' && request.body !== null && (request.body as Record<string, unknown>)['background'] === true) {
      throw new GatewayError('bad_request', `'background' is not supported for this key: the policy of its ${unstoredBy} keeps its responses from being stored (store_responses false), and a background response is stored.`, {
        param: 'background',
        code: 'unsupported_parameter',
      });
    }
    // Without stored responses, the translation refuses previous_response_id and conversation by
    // name; with both, it refuses the pair.
    const single = previous === undefined || conversationId === undefined;
    const conversation = previous !== undefined && single && this.stored ? await this.stored.conversation(owner, previous) : undefined;
    const items = conversationId !== undefined && single && this.conversations ? await this.conversations.history(owner, conversationId, request.body) : undefined;
    const canQueue = this.stored?.pending !== undefined && unstoredBy === undefined;
    const chat = responsesToChatBody(request.body, { history: conversation?.history ?? items, conversations: this.conversations !== undefined, background: canQueue });
    // The conversation continued and this input are one chat request, held to the messages one
    // request may have: past them, the conversation is what is too long (this input alone was
    // counted above), and no later turn of it can be served.
    const messages = Array.isArray(chat['messages']) ? chat['messages'].length : 0;
    if ((conversation || items) && messages > this.bounds.maxMessages) {
      const param = conversation ? 'previous_response_id' : 'conversation';
      throw new GatewayError(
        'bad_request',
        `The conversation continued and this input make ${messages} messages; one request may have at most ${this.bounds.maxMessages} (access.requests.maxMessages). Start a new conversation.`,
        { param, code: 'conversation_too_long' },
      );
    }
    const body = request.body as Record<string, unknown>;
    const asked = body['store'] !== false;
    const background = body['background'] === true;
    if (background && !asked) {
      throw new GatewayError('bad_request', "A background response is stored while it runs and after: 'background' true needs 'store' true (the default).", { param: 'background', code: 'invalid_value' });
    }
    if (background && body['stream'] === true) this.stored?.eventLog();
    request.responsesTurn = {
      owner,
      store: asked && this.stored !== undefined && unstoredBy === undefined,
      conversation: conversation ? { ancestors: conversation.ancestors, bytes: conversation.bytes } : NEW_CONVERSATION,
      background,
      conversationId: items ? conversationId : undefined,
      conversationItemIds: items ? new Set(items.map((item) => String(item['id']))) : undefined,
      runs: await this.runOf(request),
    };
    request.responsesBody = request.body;
    request.body = chat;
    return true;
  }

  /** The background response an internal call of the runner's runs, as it was queued; 409 when it is no longer pending. */
  private async runOf(request: FastifyRequest): Promise<{ id: string; createdAt: number } | undefined> {
    const id = backgroundRunOf(request);
    if (id === undefined || !this.stored?.pending) return undefined;
    const pending = await orStoreUnavailable(this.stored.pending.byId(id));
    if (!pending) throw new GatewayError('conflict', `Background response '${id}' is no longer pending.`, { code: 'response_not_pending' });
    return { id, createdAt: pending.job.record.createdAt };
  }
}

/**
 * OpenAI's Responses API, served by the chat path (docs/responses-api.md): metered, budgeted,
 * routed and cached exactly as a chat completion, answered as a `response` object or its stream
 * events, and stored for its project unless the request says `store: false` (or
 * `responses.store` is off). Usage is recorded with the chat operation.
 */
@Controller('v1')
export class ResponsesHttpController {
  constructor(
    private readonly router: RouterPort,
    @Inject(REQUEST_BOUNDS) private readonly bounds: RequestBounds,
    @Inject(AccessService) private readonly access: AccessService,
    private readonly usageRecorder: UsageRecorder,
    @Optional() private readonly cache?: ResponseCache,
    @Optional() @Inject(StoredResponses) private readonly stored?: StoredResponses,
    @Optional() @Inject(Conversations) private readonly conversations?: Conversations,
  ) {}

  @Post('responses')
  @HttpCode(200)
  @UseGuards(KeyGuard, ResponsesBodyGuard, ResponsesAdmissionGuard)
  async create(@Req() req: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    try {
      if (req.responsesTurn?.background) await this.queue(req, reply);
      else await this.serve(req, reply);
    } catch (error) {
      throw inResponsesTerms(error);
    }
  }

  /**
   * `POST /v1/responses/input_tokens`: the gateway's count of the input a Responses request would
   * send, as rate limits and budgets count it (the conversation of its `previous_response_id`
   * included, its images at what the model declares). Calls no provider; charged to the key's
   * request limits, not metered.
   */
  @Post('responses/input_tokens')
  @HttpCode(200)
  @UseGuards(KeyGuard, ResponsesBodyGuard, UnmeteredApiKeyGuard)
  async countInputTokens(@Req() req: FastifyRequest): Promise<{ object: 'response.input_tokens'; input_tokens: number }> {
    try {
      const model = await this.knownModel(req);
      return { object: 'response.input_tokens', input_tokens: this.access.tokenDemand(model, req.body).prompt };
    } catch (error) {
      throw inResponsesTerms(error);
    }
  }

  /** The model the request names, when the key may use it; else 404 `model_not_found`, as the chat path answers a model it cannot route for the key. */
  private async knownModel(req: FastifyRequest): Promise<string> {
    const model = (req.body as { model: string }).model;
    // Any name a response would be served under (a retired model's, by its replacement).
    const { models } = await this.router.listModels(requestContextOf(req), true);
    if (!models.some((m) => m.id === model)) throw new GatewayError('not_found', `The model \`${model}\` does not exist or you do not have access to it.`, { param: 'model', code: 'model_not_found' });
    return model;
  }

  /**
   * Queues a background response (docs/responses-api.md#background-responses) and answers it
   * `queued`: a replica runs it later as this request without `background`, as the same key.
   */
  private async queue(req: FastifyRequest, reply: FastifyReply): Promise<void> {
    const key = req.apiKeyRecord;
    const turn = req.responsesTurn;
    if (!this.stored || !key || !turn) throw new GatewayError('internal', 'A background response was admitted without its key or turn.');
    const model = await this.knownModel(req);
    const { background: _background, ...request } = req.responsesBody as Record<string, unknown>;
    const headers: Record<string, string> = {};
    for (const name of STEERING_HEADERS) {
      const value = req.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    const record = await this.stored.queue({ owner: turn.owner, keyId: key.id, model, request, headers, conversation: turn.conversation });
    // Streamed: its events as they are added, from its `response.created` on (docs/responses-api.md#streaming-a-background-response).
    if (request['stream'] === true) await serveResponseStream(reply, this.stored, turn.owner, record.id, -1, this.bounds.streamStallMs, queuedEvents(record, request));
    else await reply.status(200).send(responseView(record.response, req.responsesBody));
  }

  private async serve(req: FastifyRequest, reply: FastifyReply): Promise<void> {
    const usage = this.usageRecorder.track(req, reply, 'chat');
    const turn = req.responsesTurn;
    // Kept before it is answered, so that the client's next turn finds it (on any replica).
    const stored = turn?.store === true && this.stored !== undefined;
    const keep = turn && (stored || turn.conversationId) ? keeper(stored ? this.stored : undefined, this.conversations, turn, req.responsesBody) : undefined;
    await serveTranslatedChat({ router: this.router, bounds: this.bounds, cache: this.cache }, '/v1/responses', req, reply, usage, responsesApi(req.responsesBody, usage, { stored, keep, runs: turn?.runs }));
  }
}

/** Keeps a response the client is about to be answered; one the store failed to keep says `store: false`. */
type Keep = (response: ResponseJson) => Promise<void>;

/** Keeps the response (when it is stored), and adds its input and output items to its conversation (when it has one). */
function keeper(stored: StoredResponses | undefined, conversations: Conversations | undefined, turn: ResponsesTurn, original: unknown): Keep {
  return async (response) => {
    if (stored && !(await stored.keep(turn.owner, response, original, turn.conversation))) response['store'] = false;
    if (conversations && turn.conversationId !== undefined) {
      const output = Array.isArray(response['output']) ? (response['output'] as unknown[]).filter((item): item is ResponseJson => typeof item === 'object' && item !== null) : [];
      await conversations.record(turn.owner, turn.conversationId, original, output, turn.conversationItemIds);
    }
  };
}

/** How a Responses request's answer is kept: `stored` (it says so, and keeps its reasoning for the next turn), by `keep`; `runs`, the background response it is the run of. */
interface Keeping {
  stored: boolean;
  keep: Keep | undefined;
  runs: ResponsesTurn['runs'];
}

/**
 * The Responses API's answers to `original` (the request as the client sent it, for the fields a
 * response echoes), with the cost `usage` has; kept by `keep` (with the cost) when it is stored;
 * under the id `runs` when it is the run of a background response.
 */
function responsesApi(original: unknown, usage: UsageTrack, { stored, keep, runs }: Keeping): TranslatedApi<ResponsesStreamEvent> {
  return {
    headers: {},
    whole: async (completion, model) => {
      const response = usage.decorate(toResponse(completion, model, original, stored));
      // A background response's run: the response queued under this id, answered at last.
      if (runs !== undefined) Object.assign(response, { id: runs.id, created_at: runs.createdAt, background: true });
      await keep?.(response);
      return responseView(response, original);
    },
    stream: (model) => {
      const stream = new ResponsesStream(model, original, stored, runs);
      return {
        translation: stream,
        ends: {
          // The completed (or incomplete) response closes the stream and carries the cost.
          decorate: async (end) => {
            const last = end.at(-1);
            if (last) usage.decorate(last['response']);
            const whole = stream.response;
            if (!keep || !whole || !last) return;
            await keep(usage.decorate(whole));
            (last['response'] as ResponseJson)['store'] = whole['store'];
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
