import type { FastifyReply, FastifyRequest } from 'fastify';
import type { chatv1, routerv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { parseChatRequest, toOpenAIChunk } from '@openrouter/openai-wire';
import { requestContextOf } from '../auth/api-key.guard';
import { budgetStopChunk, reservationAdmitsChunk } from '../budgets/budget-request';
import type { BudgetReservation } from '../budgets/budget.service';
import type { RouterPort } from '../router.port';
import type { UsageTrack } from '../usage/usage-recorder';
import { callSignal, clientHasLeft, cutWhenStalled, toldOnFailure } from './client-connection';
import { checkChatBounds, type RequestBounds } from './request-bounds';
import { SseWriter } from './sse.writer';

export type AnswerEvent = { chunk: chatv1.ChatChunk; completion?: undefined } | { completion: chatv1.ChatCompletion; chunk?: undefined };

/** A routed chat call whose deployment is decided and whose first answer event has arrived. */
export interface OpenedChat {
  decision: routerv1.RouteDecision;
  first: AnswerEvent;
  rest: AsyncGenerator<AnswerEvent>;
}

/** A chat request from an HTTP body, opened and routed, with what its answer is sent with. */
export interface OpenedHttpChat {
  request: chatv1.ChatRequest;
  opened: OpenedChat;
  /** What the provider call is cancelled by (`callSignal`): for a stream, the client leaving or the server's shutdown grace ending (`clientGone`). */
  signal: AbortSignal;
  /** Route and request-id headers of the answer. */
  headers: Record<string, string>;
  /** Whether the client asked for a stream's usage chunk itself (it is always asked of the provider). */
  clientWantsUsage: boolean;
}

/**
 * The chat body of an HTTP request (`/v1/chat/completions`, or `/v1/responses` translated)
 * parsed, steered by the route headers, bounded and opened: the one way both endpoints start.
 * A stream always asks the provider for usage, since metering needs it.
 */
export async function openHttpChat(
  router: RouterPort,
  bounds: RequestBounds,
  req: FastifyRequest,
  reply: FastifyReply,
  usage: UsageTrack,
  request: chatv1.ChatRequest = parseHttpChat(bounds, req),
): Promise<OpenedHttpChat> {
  const clientWantsUsage = request.streamOptions?.includeUsage === true;
  if (request.stream) request.streamOptions = { extraJson: '', ...request.streamOptions, includeUsage: true };
  const { signal, release } = callSignal(reply, request.stream, bounds.onClientAbort);
  // A streamed answer whose client stops reading is cut after a heartbeat without progress, as a WebSocket's is.
  if (request.stream) cutWhenStalled(reply.raw, bounds.streamStallMs);
  // A whole answer's call is over once its answer (or failure) is here; a stream's signal is kept.
  const opened = await usage.guard(openChat(router, requestContextOf(req), request, signal, usage.calling)).finally(release);
  usage.routed(opened.decision);
  if (!request.stream && clientHasLeft(reply)) {
    // A whole answer that ran on without its client (`onClientAbort: complete`): metered at what
    // the provider reports, and sent to nobody.
    if (opened.first.completion) usage.completion(opened.first.completion);
    throw new GatewayError('cancelled', 'The client went away.');
  }
  return { request, opened, signal, headers: { ...routeHeaders(opened.decision), 'x-request-id': String(req.id) }, clientWantsUsage };
}

/**
 * The chat body of an HTTP request parsed, steered by the route headers and bounded (`openHttpChat`'s
 * first step); `translated`: another API's body whose own list was bounded (see `checkChatBounds`).
 */
export function parseHttpChat(bounds: RequestBounds, req: FastifyRequest, translated = false): chatv1.ChatRequest {
  const request = parseChatRequest(req.body);
  applyRouteHeaders(request, req.headers);
  checkChatBounds(request, bounds, translated);
  return request;
}

/**
 * Opens a chat call through the router and waits for its first answer event, so every failure
 * before the answer starts can still be told to the client as a proper HTTP error. `onCalling`
 * hears of each deployment the router calls before one answers (see `UsageTrack.calling`).
 */
export async function openChat(
  router: RouterPort,
  context: routerv1.RequestContext,
  request: chatv1.ChatRequest,
  signal: AbortSignal,
  onCalling?: (calling: routerv1.RouteDecision) => void,
): Promise<OpenedChat> {
  // A client that is gone already gets no provider call (nothing would be read or paid for it).
  if (signal.aborted) throw new GatewayError('cancelled', 'The client went away.');
  const events = answerEvents(router.chat({ context, request }, signal));
  let head = await events.next();
  for (; !head.done && 'calling' in head.value; head = await events.next()) onCalling?.(head.value.calling);
  if (head.done || !('decision' in head.value)) throw new GatewayError('upstream_error', 'The router answered without a routing decision.');
  const first = await events.next();
  if (first.done || !isAnswer(first.value)) throw new GatewayError('upstream_error', 'The provider returned an empty answer.');
  return { decision: head.value.decision, first: first.value, rest: events as AsyncGenerator<AnswerEvent> };
}

type RouterEvent = AnswerEvent | { decision: routerv1.RouteDecision } | { calling: routerv1.RouteDecision };

function isAnswer(event: RouterEvent): event is AnswerEvent {
  return !('decision' in event) && !('calling' in event);
}

async function* answerEvents(stream: AsyncGenerator<routerv1.ChatResponse>): AsyncGenerator<RouterEvent> {
  for await (const event of stream) {
    if (event.calling) yield { calling: event.calling };
    else if (event.routed) {
      // The decision with the first answer event: as if they had come one after the other.
      const { decision, chunk, completion } = event.routed;
      if (decision) yield { decision };
      if (chunk) yield { chunk };
      else if (completion) yield { completion };
    } else if (event.decision) yield { decision: event.decision };
    else if (event.chunk) yield { chunk: event.chunk };
    else if (event.completion) yield { completion: event.completion };
  }
}

/** Response headers that explain which deployment served the request. */
export function routeHeaders(decision: routerv1.RouteDecision): Record<string, string> {
  const headers: Record<string, string> = {
    'x-openrouter-model': decision.model,
    'x-openrouter-provider': decision.provider,
    'x-openrouter-deployment': decision.deployment,
    'x-openrouter-attempts': String(decision.attempts),
  };
  if (decision.taskType) headers['x-openrouter-task-type'] = decision.taskType;
  if (decision.reason) headers['x-openrouter-route-reason'] = decision.reason;
  if (decision.experiment) headers['x-openrouter-experiment'] = `${decision.experiment}/${decision.experimentArm}`;
  if (decision.replacedModel) headers['x-openrouter-model-replaced'] = decision.replacedModel;
  // The named model's lifecycle: RFC 9745 `Deprecation` (a Unix-seconds date) and RFC 8594 `Sunset` (an HTTP-date).
  const deprecation = decision.deprecation;
  if (deprecation) {
    if (deprecation.deprecatedAt > 0) headers['deprecation'] = `@${deprecation.deprecatedAt}`;
    if (deprecation.retiresAt > 0) headers['sunset'] = new Date(deprecation.retiresAt * 1000).toUTCString();
    if (deprecation.replacement) headers['x-openrouter-model-replacement'] = deprecation.replacement;
  }
  return headers;
}

/**
 * Routing controls for clients that cannot add body fields: `x-openrouter-route` (the `route`
 * object as JSON) and `x-openrouter-models` (comma-separated fallback list) go into the request's
 * extra fields, where the router reads them. Fields in the body win.
 */
export function applyRouteHeaders(request: chatv1.ChatRequest, headers: Readonly<Record<string, string | string[] | undefined>>): void {
  const route = headers['x-openrouter-route'];
  const models = headers['x-openrouter-models'];
  if (typeof route !== 'string' && typeof models !== 'string') return;
  const extra = request.extraJson ? (JSON.parse(request.extraJson) as Record<string, unknown>) : {};
  if (typeof route === 'string' && extra['route'] === undefined) extra['route'] = routeObject(route);
  if (typeof models === 'string' && extra['models'] === undefined) extra['models'] = models.split(',').map((m) => m.trim()).filter(Boolean);
  request.extraJson = JSON.stringify(extra);
}

/** The `x-openrouter-route` header's object; anything else (not JSON, or JSON that is no object: `null`, `1e999`, a list) is the client's error. */
function routeObject(header: string): Record<string, unknown> {
  let route: unknown;
  try {
    route = JSON.parse(header);
  } catch {
    route = undefined;
  }
  if (typeof route !== 'object' || route === null || Array.isArray(route)) {
    throw new GatewayError('bad_request', 'The x-openrouter-route header must be a JSON object.', { param: 'x-openrouter-route', code: 'invalid_value' });
  }
  return route as Record<string, unknown>;
}

/** What a streamed answer is checked and metered against on its way to the client. */
export interface StreamAccounting {
  usage: UsageTrack;
  budget: BudgetReservation | undefined;
  /** Whether the client asked for the usage chunk (the provider is always asked, for metering). */
  clientWantsUsage: boolean;
  /** Sees every chunk the provider sent, as it came, before the client's view of it (the response cache gathers the answer). */
  observe?: (chunk: chatv1.ChatChunk) => void;
}

/**
 * The chunks a client is sent, in OpenAI's shape, whatever carries them (SSE or WebSocket):
 * metered, the usage chunk shown only when asked, and the answer ended cleanly with finish reason
 * "length" when a hard budget is reached. A client that asked for usage always gets the usage
 * chunk OpenAI promises: the provider's, else the gateway's estimate (a compatible server that
 * ignores `stream_options` sends none).
 */
export async function* clientChunks(opened: OpenedChat, accounting: StreamAccounting): AsyncGenerator<unknown> {
  const { usage, budget, clientWantsUsage } = accounting;
  const model = opened.decision.model;
  // Choices seen and not finished yet: a cut ends each of them.
  const open = new Set<number>();
  let last: chatv1.ChatChunk | undefined;
  let usageSent = false;
  const thinking = new HeldThinking();
  for (let event: AnswerEvent | undefined = opened.first; event; event = (await opened.rest.next()).value as AnswerEvent | undefined) {
    const chunk = event.chunk;
    if (!chunk) continue;
    last = chunk;
    if (!reservationAdmitsChunk(budget, chunk)) {
      // The hard budget is reached: end every open choice cleanly, stop the provider, and give a
      // client that asked for usage the (estimated) usage so far, as any stream ends.
      for (const choice of chunk.choices) open.add(choice.index);
      thinking.hold(chunk);
      yield toOpenAIChunk(thinking.hold(budgetStopChunk(chunk, open)), model);
      void opened.rest.return(undefined);
      if (clientWantsUsage) yield estimatedUsageChunk(chunk, usage, model);
      return;
    }
    for (const choice of chunk.choices) {
      if (choice.finishReason) open.delete(choice.index);
      else open.add(choice.index);
    }
    usage.chunk(chunk);
    accounting.observe?.(chunk);
    if (!clientWantsUsage) {
      if (chunk.choices.length === 0 && chunk.usage) continue;
      chunk.usage = undefined;
    }
    usageSent ||= chunk.usage !== undefined;
    yield usage.decorate(toOpenAIChunk(thinking.hold(chunk), model));
  }
  if (clientWantsUsage && !usageSent && last) yield estimatedUsageChunk(last, usage, model);
}

/**
 * Claude's thinking blocks, held back from a chat stream and sent once, whole, on the chunk that
 * finishes their choice. The Claude adapters send, at each block's end, every block so far; a
 * client appending the deltas' lists would repeat blocks, and the `openai` Python SDK's stream
 * helper raises on a list field that comes twice without an `index`. One delta holding them all
 * suits every reader, and a client needs them only once the answer is whole, to hand it back.
 */
class HeldThinking {
  private readonly blocks = new Map<number, unknown>();

  /** The chunk with its `thinking_blocks` taken out, and the held ones put on each choice it finishes. */
  hold(chunk: chatv1.ChatChunk): chatv1.ChatChunk {
    for (const choice of chunk.choices) {
      const delta = choice.delta;
      if (!delta) continue;
      if (delta.extraJson.includes('"thinking_blocks"')) {
        const { thinking_blocks: blocks, ...rest } = JSON.parse(delta.extraJson) as Record<string, unknown>;
        if (blocks !== undefined) this.blocks.set(choice.index, blocks);
        delta.extraJson = Object.keys(rest).length > 0 ? JSON.stringify(rest) : '';
      }
      const held = choice.finishReason ? this.blocks.get(choice.index) : undefined;
      if (held !== undefined) {
        delta.extraJson = JSON.stringify({ ...(delta.extraJson ? (JSON.parse(delta.extraJson) as Record<string, unknown>) : {}), thinking_blocks: held });
        this.blocks.delete(choice.index);
      }
    }
    return chunk;
  }
}

/** The usage chunk of a stream whose provider's usage never came: the gateway's estimate so far, with its cost. */
function estimatedUsageChunk(after: chatv1.ChatChunk, usage: UsageTrack, model: string): unknown {
  return usage.decorate(toOpenAIChunk({ id: after.id, created: after.created, model: after.model, choices: [], usage: usage.tokens() }, model));
}

/** A chat stream translated into another API's events (the Responses API, Anthropic's Messages). */
export interface StreamTranslation<E extends { type: string }> {
  start(): E[];
  chunk(chunk: chatv1.ChatChunk): E[];
  /** The closing events, with the request's usage. */
  complete(usage: chatv1.Usage): E[];
}

/** What only the API knows: which closing event carries the cost (and what it does before they are sent), and how a failure reads. */
export interface TranslatedStreamEnds<E> {
  decorate(end: E[]): void | Promise<void>;
  failure(error: GatewayError): E[];
}

/**
 * An API served by the chat path (the Responses API, Anthropic's Messages): how it answers from a
 * chat answer, whole or streamed, whether the answer is fresh or comes from the response cache.
 */
export interface TranslatedApi<E extends { type: string }> {
  /** Headers of the API's own on every answer (Anthropic's `request-id`). */
  readonly headers: Record<string, string>;
  /**
   * The body's own list was bounded by `access.requests.maxMessages` before translation, and the
   * translation's messages are not counted again (see `checkChatBounds`). Unset: they are (the
   * Responses API's, which include the conversation continued).
   */
  readonly boundedBeforeTranslation?: boolean;
  /** The API's whole answer for a chat completion that carries the request's usage, under the public model id (once the API has done what it does before answering). */
  whole(completion: chatv1.ChatCompletion, model: string): unknown;
  /** A new translation of a stream into the API's events, with its ends. */
  stream(model: string): { translation: StreamTranslation<E>; ends: TranslatedStreamEnds<E> };
}

/**
 * Sends an opened chat's stream as another API's SSE events: metered, ended as cut at its length
 * where a hard budget is reached (the provider is stopped, and the usage so far is the estimate),
 * closed with the usage and cost, and a failure after the stream opened sent as that API's error
 * events (a stream the server's shutdown ends, its `shutting_down` error). A client gone is sent
 * nothing more. `observe` sees every chunk the provider sent, as `StreamAccounting.observe` does.
 * Resolves to whether the stream completed normally: not cut at the budget, not failed, its client
 * still there (what the response cache stores).
 */
export async function sendTranslatedStream<E extends { type: string }>(
  req: FastifyRequest,
  reply: FastifyReply,
  chat: Pick<OpenedHttpChat, 'opened' | 'signal'>,
  usage: UsageTrack,
  headers: Record<string, string>,
  translation: StreamTranslation<E>,
  ends: TranslatedStreamEnds<E>,
  observe?: (chunk: chatv1.ChatChunk) => void,
): Promise<boolean> {
  const { opened, signal } = chat;
  reply.hijack();
  const sse = new SseWriter(reply.raw);
  sse.open(headers);
  const send = async (events: E[]): Promise<void> => {
    for (const event of events) await sse.event(event.type, event);
  };
  let cut = false;
  try {
    await send(translation.start());
    for (let event: AnswerEvent | undefined = opened.first; event; event = (await opened.rest.next()).value as AnswerEvent | undefined) {
      const chunk = event.chunk;
      if (!chunk) continue;
      if (!reservationAdmitsChunk(req.budget, chunk)) {
        cut = true;
        await send(translation.chunk(budgetStopChunk(chunk, [0])));
        void opened.rest.return(undefined);
        break;
      }
      usage.chunk(chunk);
      observe?.(chunk);
      await send(translation.chunk(chunk));
    }
    const end = translation.complete(usage.tokens());
    await ends.decorate(end);
    await send(end);
    sse.end();
    return !cut && !signal.aborted;
  } catch (error) {
    usage.failed(error);
    const told = toldOnFailure(error, signal);
    if (!told) return false;
    await send(ends.failure(told));
    sse.end();
    return false;
  }
}
