import { Controller, HttpCode, Inject, Optional, Post, Req, Res, UseGuards } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { chatv1, routerv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { addUsage, emptyUsage, inPromptTerms, parseLegacyCompletionRequest, toLegacyChunk, toLegacyCompletion, toOpenAIError, toOpenAIUsage, type LegacyCompletionRequest } from '@openrouter/openai-wire';
import { countPromptTokens } from '../access/prompt-tokens';
import { ApiKeyGuard, requestContextOf } from '../auth/api-key.guard';
import { cacheStatusHeaders, sendLegacyHit } from '../cache/cache-replies';
import { LegacyAnswerStoring } from '../cache/legacy-answer-storing';
import { ResponseCache, type CachePlan } from '../cache/response-cache';
import { RouterPort } from '../router.port';
import { applyRouteHeaders, openChat, routeHeaders, type AnswerEvent, type OpenedChat } from './chat.service';
import { callSignal, clientGone, cutWhenStalled, cutWhenWholeAnswerStalls, stopIfClientLeft, toldOnFailure } from './client-connection';
import { checkChatBounds, REQUEST_BOUNDS, type RequestBounds } from './request-bounds';
import { SseWriter } from './sse.writer';
import { UsageRecorder, type UsageTrack } from '../usage/usage-recorder';
import { budgetStopChunk, reservationAdmitsChunk } from '../budgets/budget-request';

/**
 * The legacy `/v1/completions` API, served by the chat path: each prompt becomes one user
 * message, so every provider can answer it. Cached as the chat path is (docs/caching.md), one entry
 * per request, all its prompts together.
 */
@Controller('v1')
@UseGuards(ApiKeyGuard)
export class CompletionsHttpController {
  constructor(
    private readonly router: RouterPort,
    @Inject(REQUEST_BOUNDS) private readonly bounds: RequestBounds,
    private readonly usageRecorder: UsageRecorder,
    @Optional() private readonly cache?: ResponseCache,
  ) {}

  @Post('completions')
  @HttpCode(200)
  async create(@Req() req: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    const metering = this.usageRecorder.track(req, reply, 'completion');
    const legacy = parseLegacyCompletionRequest(req.body);
    applyRouteHeaders(legacy.chat, req.headers);
    checkChatBounds(legacy.chat, this.bounds);
    if (legacy.prompts.length > this.bounds.maxMessages) throw new GatewayError('bad_request', `At most ${this.bounds.maxMessages} prompts are accepted.`, { param: 'prompt', code: 'invalid_value' });
    // The response cache, when enabled: a hit is answered here, with no routing and no provider call.
    const plan = await this.cache?.planFor('/v1/completions', requestContextOf(req), req.body, req.headers, req.apiKeyRecord);
    if (plan && this.cache) {
      // An identical request being answered now is waited for, until its client leaves.
      const hit = await this.cache.lookup(plan, String(req.id), clientGone(reply));
      if (hit?.completion) return sendLegacyHit(req, reply, legacy, { ...hit, completion: hit.completion }, metering, this.bounds.streamStallMs);
    }
    try {
      await this.answer(req, reply, metering, legacy, plan);
    } finally {
      // Whatever happened: requests waiting for this one's answer go on by themselves unless it is being stored.
      if (plan) this.cache?.abandon(plan);
    }
  }

  /** A fresh answer: every prompt routed and metered, sent whole or streamed, and stored when it may be. */
  private async answer(req: FastifyRequest, reply: FastifyReply, metering: UsageTrack, legacy: LegacyCompletionRequest, plan: CachePlan | undefined): Promise<void> {
    const context = requestContextOf(req);
    const { signal, release } = callSignal(reply, legacy.stream, this.bounds.onClientAbort);
    const choicesPerPrompt = legacy.chat.n ?? 1;
    const storing = new LegacyAnswerStoring(this.cache, plan, req, metering, legacy.stream, choicesPerPrompt);
    // Prompt p's call; its errors name the prompt, not the chat message it is sent as.
    const openPrompt = (p: number, stream: boolean, calls: AbortSignal, onCalling: (route: routerv1.RouteDecision) => void): Promise<OpenedChat> =>
      openChat(this.router, context, chatFor(legacy, legacy.prompts[p] ?? '', stream), calls, onCalling).catch((error: unknown) => {
        throw inPromptTerms(error, promptParam(legacy, p));
      });

    if (!legacy.stream) {
      // One provider call per prompt, all at once. When one fails the others are stopped (they are
      // paid for, and the client gets an error anyway), and every answer that did arrive is metered.
      const calls = new AbortController();
      const stop = (): void => calls.abort();
      let firstFailure: { error: unknown } | undefined;
      signal.addEventListener('abort', stop, { once: true });
      if (signal.aborted) stop();
      const outcomes = await metering.guard(
        Promise.allSettled(
          legacy.prompts.map((_prompt, p) =>
            openPrompt(p, false, calls.signal, metering.calling).catch((error: unknown) => {
              // The first failure is the cause; the others are the calls it stopped.
              firstFailure ??= { error };
              stop();
              throw error;
            }),
          ),
        ),
      );
      signal.removeEventListener('abort', stop);
      release();
      const opened = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
      for (const o of opened) void o.rest.return(undefined);
      const first = opened[0];
      // Each prompt's call is metered at its own decision (prompts may be served by different deployments).
      outcomes.forEach((o, p) => {
        if (o.status !== 'fulfilled') return;
        metering.routed(o.value.decision, () => promptTokens(legacy.prompts[p]));
        storing.routed(o.value.decision);
        if (o.value.first.completion) metering.completion(o.value.first.completion);
      });
      if (firstFailure) {
        metering.failed(firstFailure.error);
        throw firstFailure.error;
      }
      if (!first) throw new GatewayError('bad_request', 'The prompt is empty.', { param: 'prompt' });
      // Answers that ran on without their client (`onClientAbort: complete`) are metered, and sent to nobody.
      stopIfClientLeft(reply);
      const completions = opened.map((o) => {
        if (!o.first.completion) throw new GatewayError('upstream_error', 'The provider returned no completion.');
        return o.first.completion;
      });
      // A client that stops reading its answer is cut, so its request is recorded (as cancelled).
      cutWhenWholeAnswerStalls(reply.raw, this.bounds.streamStallMs);
      await reply
        .headers({ ...routeHeaders(first.decision), ...cacheStatusHeaders(plan), 'x-request-id': String(req.id), ...metering.costHeaders() })
        .send(metering.decorate(toLegacyCompletion(completions, first.decision.model, choicesPerPrompt)));
      storing.whole(completions);
      return;
    }

    // Streamed prompts are answered one after the other, indexes offset per prompt as OpenAI does;
    // every chunk carries the first answer's id and creation time, as one completion's would. Each
    // call is metered at its own prompt, also one the client leaves before it answered.
    const callingFor = (p: number) => (route: routerv1.RouteDecision) => metering.calling(route, () => promptTokens(legacy.prompts[p]));
    let opened = await metering.guard(openPrompt(0, true, signal, callingFor(0)));
    metering.routed(opened.decision, () => promptTokens(legacy.prompts[0]));
    storing.routed(opened.decision);
    const model = opened.decision.model;
    reply.hijack();
    cutWhenStalled(reply.raw, this.bounds.streamStallMs);
    const sse = new SseWriter(reply.raw);
    sse.open({ ...routeHeaders(opened.decision), ...cacheStatusHeaders(plan), 'x-request-id': String(req.id) });
    const usage = emptyUsage();
    const head = opened.first.chunk ?? opened.first.completion;
    const id = head?.id ?? '';
    const created = head?.created || Math.floor(Date.now() / 1000);
    // The prompt being answered: a failure is told in its terms.
    let answering = 0;
    let cut = false;
    try {
      let reported = false;
      for (let p = 0; p < legacy.prompts.length && !cut; p++) {
        answering = p;
        if (p > 0) {
          opened = await metering.guard(openPrompt(p, true, signal, callingFor(p)));
          metering.routed(opened.decision, () => promptTokens(legacy.prompts[p]));
          storing.routed(opened.decision);
        }
        // This prompt's choices seen and not finished yet: a budget cut ends each of them.
        const open = new Set<number>();
        for (let event: AnswerEvent | undefined = opened.first; event; event = (await opened.rest.next()).value as AnswerEvent | undefined) {
          const chunk = event.chunk;
          if (!chunk) continue;
          if (!reservationAdmitsChunk(req.budget, chunk)) {
            // The hard budget is reached: end this prompt's open choices with "length", stop the
            // provider, and answer no further prompt (as a chat stream is cut).
            for (const choice of chunk.choices) open.add(choice.index);
            await sse.data(toLegacyChunk({ ...budgetStopChunk(chunk, open), id, created }, model, p * choicesPerPrompt));
            void opened.rest.return(undefined);
            cut = true;
            break;
          }
          for (const choice of chunk.choices) {
            if (choice.finishReason) open.delete(choice.index);
            else open.add(choice.index);
          }
          metering.chunk(chunk);
          storing.observe(p, chunk);
          if (chunk.usage) {
            addUsage(usage, chunk.usage);
            reported = true;
          }
          if (chunk.choices.length === 0) continue;
          await sse.data(toLegacyChunk({ ...chunk, id, created }, model, p * choicesPerPrompt));
        }
      }
      if (legacy.includeUsage) {
        const last = toLegacyChunk({ id, created, model, choices: [] }, model);
        // After a budget cut the provider's usage never came, nor from a server that ignores
        // `stream_options`: the client is shown the estimate, as billing records it.
        await sse.data(metering.decorate({ ...last, usage: cut || !reported ? toOpenAIUsage(metering.tokens()) : toOpenAIUsage(usage) }));
      }
      sse.done();
      // Stored only once every prompt's stream completed: not cut at the budget, its client still there.
      storing.streamEnded(!cut && !signal.aborted);
    } catch (error) {
      storing.streamEnded(false);
      metering.failed(error);
      void opened.rest.return(undefined);
      // A later prompt refused by its provider (a prompt it cannot take) fails here, once the
      // answers before it have been sent: prompts are called one after the other.
      const told = toldOnFailure(inPromptTerms(error, promptParam(legacy, answering)), signal);
      if (told) sse.fail(toOpenAIError(told).body);
    }
  }
}

function promptParam(legacy: LegacyCompletionRequest, p: number): string {
  return legacy.promptParams[p] ?? 'prompt';
}

/** One prompt's tokens, counted as the request's were: its call's estimate should its usage never come. */
function promptTokens(prompt: string | undefined): number {
  return countPromptTokens({ prompt: prompt ?? '' });
}

function chatFor(legacy: LegacyCompletionRequest, prompt: string, stream: boolean): chatv1.ChatRequest {
  const message: chatv1.Message = { role: 'user', text: prompt, contentIsNull: false, toolCalls: [], extraJson: '' };
  return {
    ...legacy.chat,
    model: legacy.model,
    messages: [message],
    stream,
    streamOptions: stream ? { includeUsage: true, extraJson: '' } : undefined,
  };
}
