import { Metadata } from '@grpc/grpc-js';
import { AUTO_MODEL, type Capability } from '@openrouter/config';
import type { adapterv1, chatv1, routerv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { acceptBatches, callUnary, chatChunkBatching, readStream } from '@openrouter/grpc';
import { carriesAnswer } from '@openrouter/openai-wire';
import type { AdapterClients } from './adapter-clients';
import type { CatalogModel } from './catalog/model-catalog';
import { assignedDecision, callingDecision, decisionFor } from './explain/route-decision';
import { explainPlan } from './explain/route-explanation';
import { providersHealth } from './explain/providers-health';
import type { RecordedCall } from './experiments/gray-release';
import { Guardrails, type ModerationCall } from './guardrails/guardrails';
import { serveWithFailover, type AnswerFailureListener, type AttemptListener, type AttemptOpener, type Served } from './resilience/failover';
import { capacityTokens, chatRequestTraits, speechRequestTraits, transcriptionRequestTraits, type Candidate, type PlanRequest, type RoutePlan } from './routing/route-planner';
import { takeRequestControls } from './routing/route-settings';
import type { RoutingEngine } from './routing/routing-engine';

/**
 * The adapter calls the router makes; a port so routing can be tested without gRPC. `deployment` is
 * the id of the deployment called, which the request (provider and upstream model) does not tell
 * apart from another deployment of the same model on the same provider.
 */
export interface AdapterPort {
  chat(request: adapterv1.ChatRequest, signal: AbortSignal, deployment: string): AsyncIterator<adapterv1.ChatResponse>;
  embed(request: adapterv1.EmbedRequest, signal: AbortSignal, deployment: string): Promise<adapterv1.EmbedResponse>;
  moderate(request: adapterv1.ModerateRequest, signal: AbortSignal, deployment: string): Promise<adapterv1.ModerateResponse>;
  generateImages(request: adapterv1.GenerateImagesRequest, signal: AbortSignal, deployment: string): Promise<adapterv1.GenerateImagesResponse>;
  transcribe(request: adapterv1.TranscribeRequest, signal: AbortSignal, deployment: string): Promise<adapterv1.TranscribeResponse>;
  /** Speech in pieces as the provider sends its audio (see `chatv1.SpeechResponse`). */
  speak(request: adapterv1.SpeakRequest, signal: AbortSignal, deployment: string): AsyncIterator<adapterv1.SpeakResponse>;
}

const ADAPTER_CHUNKS = chatChunkBatching<adapterv1.ChatResponse>();

/** AdapterPort over the adapters' gRPC clients; streamed chunks may arrive in batches. */
export function grpcAdapters(clients: AdapterClients): AdapterPort {
  return {
    chat: (request, signal) => readStream(() => clients.for(request.provider).chat(request, acceptBatches(ADAPTER_CHUNKS)), signal, ADAPTER_CHUNKS),
    embed: (request, signal) => {
      const client = clients.for(request.provider);
      return callUnary<adapterv1.EmbedRequest, adapterv1.EmbedResponse>(client.embed.bind(client), request, new Metadata(), signal);
    },
    moderate: (request, signal) => {
      const client = clients.for(request.provider);
      return callUnary<adapterv1.ModerateRequest, adapterv1.ModerateResponse>(client.moderate.bind(client), request, new Metadata(), signal);
    },
    generateImages: (request, signal) => {
      const client = clients.for(request.provider);
      return callUnary<adapterv1.GenerateImagesRequest, adapterv1.GenerateImagesResponse>(client.generateImages.bind(client), request, new Metadata(), signal);
    },
    transcribe: (request, signal) => {
      const client = clients.for(request.provider);
      return callUnary<adapterv1.TranscribeRequest, adapterv1.TranscribeResponse>(client.transcribe.bind(client), request, new Metadata(), signal);
    },
    speak: (request, signal) => readStream(() => clients.for(request.provider).speak(request), signal),
  };
}

/** What a request in a gray release tells the release, over failover and after it (see `RouterService.grayReleaseWatch`). */
interface GrayReleaseWatch {
  onAttempt: AttemptListener;
  onAnswerFailed: AnswerFailureListener;
  /** False for the canary's deployments once the release rolled back: failover calls them no more. */
  eligible: (candidate: Candidate) => boolean;
  /** Failover is over, served or failed. */
  settled(): void;
}

interface PreparedChat {
  planRequest: PlanRequest;
  /** The request as the adapter gets it: routing controls taken out. */
  upstream: chatv1.ChatRequest;
}

/**
 * Serves routed calls: plans the candidates for a request (`plan`), calls them with failover, and
 * emits the decision once a deployment produced its first answer event, so the decision names
 * the deployment that actually serves and every attempt made.
 */
export class RouterService {
  constructor(
    private readonly engine: RoutingEngine,
    private readonly adapters: AdapterPort,
    /** Input guardrails, applied to what every entry path sends a provider (none by default). */
    private readonly guardrails: Guardrails = new Guardrails(),
    /** Told of every request naming a deprecated or retired model (served, replaced or refused), by that model's id. */
    private readonly onDeprecatedModel: (model: string) => void = () => undefined,
  ) {}

  /** The ordered candidates for a chat request, without calling anything. */
  plan(context: routerv1.RequestContext, request: chatv1.ChatRequest, explain = false): RoutePlan {
    return this.engine.planner.plan(this.prepareChat(context, request).planRequest, explain);
  }

  /**
   * Serves a chat request. With `routeCalls` (a caller that understands them), each deployment is
   * named before it is called (`calling`) and the decision travels with the first answer event
   * (`routed`); otherwise the decision, then the answer events, as older callers expect.
   */
  async *chat(input: routerv1.ChatRequest, signal: AbortSignal, routeCalls = true): AsyncGenerator<routerv1.ChatResponse> {
    const { context, request: asked } = requiredRequest(input);
    // Before anything is planned: a refused request takes no route, and no provider sees unscreened text.
    const request = this.guardrails.screenChat(context, asked);
    // Moderation rules read the request as screened (redactions applied), before any chat route is planned.
    const { unscreened } = await this.guardrails.moderateChat(context, request, this.guardrailModeration(context, signal));
    const prepared = this.prepareChat(context, request);
    const plan = this.planned(prepared.planRequest);
    const open: AttemptOpener<adapterv1.ChatResponse> = (candidate, callSignal) =>
      this.adapters.chat({ requestId: context.requestId, provider: candidate.deployment.provider, upstreamModel: candidate.deployment.model, request: prepared.upstream, timeoutMs: 0 }, callSignal, candidate.deployment.id);
    // Each call is announced before it is made, and each failed one after it, while failover goes on.
    const notices = new Notices<routerv1.ChatResponse>();
    const announce = (route: routerv1.RouteDecision): void => notices.push({ calling: route });
    const gray = this.grayReleaseWatch(plan, prepared.planRequest.capability);
    let called = false;
    const serving = serveWithFailover(plan, open, signal, this.engine.failover, {
      stream: request.stream,
      // Images count at the first candidate's model's `imageTokens`: failover charges every
      // attempt one figure, and the first candidate is the one expected to serve.
      tokens: capacityTokens(prepared.planRequest, plan.candidates[0]?.model),
      onAttempt: routeCalls ? this.progressListener(plan, gray?.onAttempt, announce) : gray?.onAttempt,
      onAnswerFailed: gray?.onAnswerFailed,
      eligible: gray?.eligible,
      onCall: routeCalls
        ? (candidate, earlier) => {
            called = true;
            announce(callingDecision(plan, candidate, earlier));
          }
        : undefined,
      commits: carriesAnswer,
    })
      .finally(() => gray?.settled())
      .catch((error: unknown) => {
        // A request refused before any call (every candidate's breaker open) still belongs to its
        // arm: the caller records the arm from the route it was told, so experiment reports count it.
        if (routeCalls && plan.assignment && !called) announce(assignedDecision(plan));
        throw error;
      });
    let served: Served<adapterv1.ChatResponse> | undefined;
    try {
      served = yield* notices.until(serving);
    } finally {
      // The reader left at an announcement: a call that answers (or did already) is ended here.
      if (!served) void serving.then((late) => abandon(late), () => undefined);
    }
    let failure: unknown;
    // The answer screened by the `output` guardrails that apply, if any: as the client may get it.
    const screen = this.guardrails.answerScreen(context, request);
    const screened = (event: routerv1.ChatResponse): routerv1.ChatResponse => {
      if (!screen) return event;
      if (event.chunk) return { chunk: screen.chunk(event.chunk) };
      if (event.completion) return { completion: screen.completion(event.completion) };
      return event;
    };
    try {
      const decision = decisionFor(plan, served.candidate, served.attempts);
      if (unscreened) decision.unscreened = true;
      const first = screened(answerEvent(served.first));
      if (routeCalls) yield { routed: { decision, chunk: first.chunk, completion: first.completion } };
      else {
        yield { decision };
        yield first;
      }
      // Once a guardrail cut every choice, the rest of the provider's answer is not read (nor made).
      for (let next = screen?.done ? undefined : await served.rest.next(); next && !next.done; next = screen?.done ? undefined : await served.rest.next()) yield screened(answerEvent(next.value));
      const held = screen?.flush();
      if (held) yield { chunk: held };
    } catch (error) {
      failure = error;
      throw error;
    } finally {
      await endServed(served, failure, signal);
    }
  }

  async embed(input: routerv1.EmbedRequest, signal: AbortSignal): Promise<routerv1.EmbedResponse> {
    const { context, request: asked } = requiredRequest(input);
    const request = this.guardrails.screenEmbeddings(context, asked);
    const { unscreened } = await this.guardrails.moderateEmbeddings(context, request, this.guardrailModeration(context, signal));
    const open: AttemptOpener<adapterv1.EmbedResponse> = (candidate, callSignal) =>
      once(
        this.adapters.embed({ requestId: context.requestId, provider: candidate.deployment.provider, upstreamModel: candidate.deployment.model, request, timeoutMs: 0 }, callSignal, candidate.deployment.id).catch((error: unknown) => {
          // Calls of a split request that answered before another failed were billed: the usage record prices them at this route.
          const failure = GatewayError.from(error);
          if (!failure.billed) throw failure;
          throw failure.with({ billed: { ...failure.billed, model: candidate.model.id, deployment: candidate.deployment.id, upstreamModel: candidate.deployment.model } });
        }),
      );
    const { decision, answer } = await this.serveWhole({ context, capability: 'embeddings', model: request.model, needs: [], user: request.user }, open, signal, unscreened);
    if (!answer.response) throw new GatewayError('upstream_error', 'The adapter returned no embeddings.');
    return { decision, response: answer.response };
  }

  async moderate(input: routerv1.ModerateRequest, signal: AbortSignal): Promise<routerv1.ModerateResponse> {
    const { context, request: asked } = requiredRequest(input);
    const request = this.guardrails.screenModeration(context, asked);
    return this.routeModeration(context, request, signal);
  }

  /**
   * An image generation request: its prompt screened by the input guardrails (redacted, refused,
   * or judged by a moderation rule's model), then routed with failover like an embedding to a model
   * with the `images` capability (the one named, else `auto` over those models). Its attempt gets
   * `completionTimeoutMs`, as a non-streamed chat's: image models take long.
   */
  async generateImages(input: routerv1.GenerateImagesRequest, signal: AbortSignal): Promise<routerv1.GenerateImagesResponse> {
    const { context, request: asked } = requiredRequest(input);
    const request = this.guardrails.screenImages(context, asked);
    const { unscreened } = await this.guardrails.moderateImages(context, request, this.guardrailModeration(context, signal));
    const open: AttemptOpener<adapterv1.GenerateImagesResponse> = (candidate, callSignal) =>
      once(this.adapters.generateImages({ requestId: context.requestId, provider: candidate.deployment.provider, upstreamModel: candidate.deployment.model, request, timeoutMs: 0 }, callSignal, candidate.deployment.id));
    const { decision, answer } = await this.serveWhole({ context, capability: 'images', model: request.model || AUTO_MODEL, needs: [], user: request.user, imagesMade: request.n || 1 }, open, signal, unscreened);
    if (!answer.response) throw new GatewayError('upstream_error', 'The adapter returned no images.');
    return { decision, response: answer.response };
  }

  /**
   * A transcription or translation request (`translate`): its `prompt`, when it has one, screened
   * by the input guardrails as an image prompt is (the audio cannot be read, and the transcript is
   * not screened), then routed with failover to a model with the `transcription` capability (the
   * one named, else `auto` over those models), its attempt given `completionTimeoutMs`. It counts
   * for a deployment's `tpm` with its prompt's tokens and, when the gateway read the audio's length,
   * the audio's at `budgets.audio.tokensPerSecond`.
   */
  async transcribe(input: routerv1.TranscribeRequest, signal: AbortSignal): Promise<routerv1.TranscribeResponse> {
    const { context, request: asked } = requiredRequest(input);
    const request = this.guardrails.screenTranscription(context, asked);
    const { unscreened } = await this.guardrails.moderateTranscription(context, request, this.guardrailModeration(context, signal));
    const open: AttemptOpener<adapterv1.TranscribeResponse> = (candidate, callSignal) =>
      once(this.adapters.transcribe({ requestId: context.requestId, provider: candidate.deployment.provider, upstreamModel: candidate.deployment.model, request, timeoutMs: 0 }, callSignal, candidate.deployment.id));
    const traits = transcriptionRequestTraits(request, this.engine.config.budgets.audio.tokensPerSecond);
    const { decision, answer } = await this.serveWhole({ context, capability: 'transcription', model: request.model || AUTO_MODEL, needs: [], user: '', ...traits }, open, signal, unscreened);
    if (!answer.response) throw new GatewayError('upstream_error', 'The adapter returned no transcription.');
    return { decision, response: answer.response };
  }

  /**
   * A speech request: its `input` screened by the input guardrails (redacted, refused, or judged by
   * a moderation rule's model) before any voice says it, then routed with failover to a model with
   * the `speech` capability (the one named, else `auto` over those models). It counts for a
   * deployment's `tpm` with its input's tokens. The audio is streamed as the provider sends it, as
   * a chat stream is: the decision first (with the first piece), then every piece. Failover goes on
   * until a piece with audio arrives (each attempt given `attemptTimeoutMs` to it); after that, a
   * failure ends the stream with its error, after the pieces already sent.
   */
  async *speak(input: routerv1.SpeakRequest, signal: AbortSignal): AsyncGenerator<routerv1.SpeakResponse> {
    const { context, request: asked } = requiredRequest(input);
    const request = this.guardrails.screenSpeech(context, asked);
    const { unscreened } = await this.guardrails.moderateSpeech(context, request, this.guardrailModeration(context, signal));
    const open: AttemptOpener<adapterv1.SpeakResponse> = (candidate, callSignal) =>
      this.adapters.speak({ requestId: context.requestId, provider: candidate.deployment.provider, upstreamModel: candidate.deployment.model, request, timeoutMs: 0 }, callSignal, candidate.deployment.id);
    const planRequest = wholePlanRequest({ context, capability: 'speech', model: request.model || AUTO_MODEL, needs: [], user: request.user, ...speechRequestTraits(request) }, true);
    const plan = this.planned(planRequest);
    const gray = this.grayReleaseWatch(plan, planRequest.capability);
    const served = await serveWithFailover(plan, open, signal, this.engine.failover, {
      stream: true,
      tokens: capacityTokens(planRequest),
      onAttempt: gray?.onAttempt,
      onAnswerFailed: gray?.onAnswerFailed,
      eligible: gray?.eligible,
      commits: carriesAudio,
    }).finally(() => gray?.settled());
    let failure: unknown;
    try {
      const decision = decisionFor(plan, served.candidate, served.attempts);
      if (unscreened) decision.unscreened = true;
      yield { decision, response: speechPiece(served.first) };
      for (let next = await served.rest.next(); !next.done; next = await served.rest.next()) yield { response: speechPiece(next.value) };
    } catch (error) {
      failure = error;
      throw error;
    } finally {
      await endServed(served, failure, signal);
    }
  }

  /**
   * A moderation request routed and served with failover: the path of `/v1/moderations` and of
   * the guardrails' moderation rules alike. OpenAI's SDK may leave the model out (OpenAI then uses
   * its latest moderation model): the request goes to `auto`, the models with the moderation
   * capability, ranked by the strategy.
   */
  private async routeModeration(
    context: routerv1.RequestContext,
    request: chatv1.ModerationRequest,
    signal: AbortSignal,
    /**
     * Set for a guardrail's call: its whole budget, failover included (unset: as any whole answer),
     * and planned as the operator's call, under `routing.defaults` (see `guardrailModeration`).
     */
    guardrail?: { timeoutMs: number },
  ): Promise<{ decision: routerv1.RouteDecision; response: chatv1.ModerationResponse }> {
    const open: AttemptOpener<adapterv1.ModerateResponse> = (candidate, callSignal) =>
      once(this.adapters.moderate({ requestId: context.requestId, provider: candidate.deployment.provider, upstreamModel: candidate.deployment.model, request, timeoutMs: 0 }, callSignal, candidate.deployment.id));
    const needs: Capability[] = request.parts.some((p) => p.imageUrl !== undefined) ? ['vision'] : [];
    const { decision, answer } = await this.serveWhole({ context, capability: 'moderation', model: request.model || AUTO_MODEL, needs, user: '', operatorCall: guardrail !== undefined }, open, signal, false, guardrail?.timeoutMs);
    if (!answer.response) throw new GatewayError('upstream_error', 'The adapter returned no moderation results.');
    return { decision, response: answer.response };
  }

  /**
   * A request answered whole by one call (an embedding, a moderation, images, a transcription): planned for
   * its capability (no task type, context window or output to fit; a prompt estimate only where
   * the request gives one, for the deployments' `tpm`), served with failover and the gray
   * release's watch, its route marked `unscreened` when a guardrail let it through unjudged.
   */
  private async serveWhole<T>(
    asked: PlannedCall,
    open: AttemptOpener<T>,
    signal: AbortSignal,
    unscreened: boolean,
    /** The whole failover's budget (see `serveWithFailover`); unset: each attempt gets `completionTimeoutMs`. */
    timeoutMs?: number,
  ): Promise<{ decision: routerv1.RouteDecision; answer: T }> {
    const planRequest = wholePlanRequest(asked, false);
    const plan = this.planned(planRequest);
    const gray = this.grayReleaseWatch(plan, planRequest.capability);
    const served = await serveWithFailover(plan, open, signal, this.engine.failover, { stream: false, tokens: capacityTokens(planRequest), onAttempt: gray?.onAttempt, eligible: gray?.eligible, timeoutMs }).finally(() => gray?.settled());
    served.finish();
    const decision = decisionFor(plan, served.candidate, served.attempts);
    if (unscreened) decision.unscreened = true;
    return { decision, answer: served.first };
  }

  /**
   * How the guardrails ask a moderation rule's model about a request's texts: routed as a
   * moderation request under the request's context, so its tenant's provider and residency
   * policies (`context.policy`, where the tenant's text may be sent) apply to the call too. Not
   * the key's allowed models, nor the route settings of the tenant's `routing.policies` entry
   * (`routing.defaults` apply): the operator chose the model and its screening, not the client,
   * and a tenant's preferred providers, price or quality must not leave its requests unscreened
   * (failing open) or refused (failing closed). Its usage is not recorded: the model is free (checked at start-up).
   * The call is bounded as a whole by `timeoutMs` (`guardrails.moderationTimeoutMs`), not given a
   * whole answer's `completionTimeoutMs`: the request waits on it before its own route is even
   * planned, and the caller's wait for a first answer does not cover a model that hangs for minutes.
   */
  private guardrailModeration(context: routerv1.RequestContext, signal: AbortSignal): ModerationCall {
    // Made when a rule asks (most requests meet no moderation rule).
    return async (model, texts, timeoutMs) => (await this.routeModeration({ ...context, allowedModels: [] }, { model, texts, parts: [], extraJson: '' }, signal, { timeoutMs })).response;
  }

  listModels(context: routerv1.RequestContext | undefined, includeRetired = false): routerv1.ListModelsResponse {
    const allowed = context?.allowedModels ?? [];
    const { catalog, planner } = this.engine;
    const now = catalog.now();
    // A model none of whose deployments the tenant's policy permits cannot serve the caller: not
    // listed. Nor is a retired model, unless asked for (its id still works, served by its replacement).
    const permitted = new Set(catalog.live(now).filter((m) => m.deployments.some((d) => planner.permits(d, context?.policy))));
    const info = (m: CatalogModel): routerv1.ModelInfo => {
      const notice = catalog.notice(m.id, now);
      return { id: m.id, created: m.created, ownedBy: m.ownedBy, capabilities: m.capabilities, contextWindow: m.contextWindow, deprecatedAt: notice?.deprecatedAt ?? 0, retiresAt: notice?.retiresAt ?? 0, replacement: notice?.replacement ?? '' };
    };
    const models: routerv1.ModelInfo[] = [...permitted].filter((m) => allowed.length === 0 || allowed.includes(m.id)).map(info);
    if (includeRetired) {
      // As routing serves them: by the replacement, under the retired name's own permission.
      for (const m of catalog.list()) {
        const successor = catalog.retired(m.id, now) ? catalog.serving(m.id, now) : undefined;
        if (successor && permitted.has(successor) && (allowed.length === 0 || allowed.includes(m.id))) models.push({ ...info(m), capabilities: successor.capabilities, contextWindow: successor.contextWindow });
      }
    }
    // `auto` is callable like an alias, so it is listed like one (once, if an alias is called `auto`).
    // Listed with what its chat models can do: an alias of embedding models only cannot be chatted with.
    for (const name of new Set([...catalog.aliasNames(), AUTO_MODEL])) {
      const members = (catalog.membersOf(name, 'chat') ?? []).filter((m) => m.capabilities.includes('chat') && permitted.has(m) && (allowed.length === 0 || allowed.includes(m.id) || allowed.includes(name)));
      if (members.length === 0) continue;
      const capabilities = [...new Set(members.flatMap((m) => m.capabilities))];
      models.push({ id: name, created: 0, ownedBy: 'open-router', capabilities, contextWindow: Math.max(...members.map((m) => m.contextWindow)), deprecatedAt: 0, retiresAt: 0, replacement: '' });
    }
    return { models };
  }

  explain(input: routerv1.ExplainRequest): routerv1.ExplainResponse {
    const { context, request } = requiredRequest(input);
    const prediction = this.engine.classifier.explain(request);
    try {
      const prepared = this.prepareChat(context, request, prediction.taskType);
      return explainPlan(this.engine.planner.plan(prepared.planRequest, true), prediction, undefined, request.model, (id) => ({
        breakerState: this.engine.breakers.of(id).current(),
        outstanding: this.engine.stats.of(id).outstanding,
      }));
    } catch (error) {
      return explainPlan(undefined, prediction, GatewayError.from(error), request.model);
    }
  }

  providersHealth(): routerv1.ProvidersHealthResponse {
    return providersHealth(this.engine);
  }

  grayReleases(): routerv1.GrayReleasesResponse {
    return { releases: this.engine.grayReleases.states() };
  }

  /**
   * The plan for a request that will be served, counting each deprecated or retired model the
   * request names (`model`, or an entry of `models`), served, replaced or refused: the counter shows
   * who still has to move, and a `models` entry is as much the client's code to change as `model`.
   */
  private planned(request: PlanRequest): RoutePlan {
    const { catalog } = this.engine;
    const count = (): void => {
      if (catalog.notice(request.model)) this.onDeprecatedModel(request.model);
      // Most requests name no `models`: no set is made for them.
      const models = request.controls.models;
      if (models?.length) for (const name of new Set(models)) if (name !== request.model && catalog.notice(name)) this.onDeprecatedModel(name);
    };
    let plan: RoutePlan;
    try {
      plan = this.engine.planner.plan(request);
    } catch (error) {
      count();
      throw error;
    }
    count();
    return plan;
  }

  private prepareChat(context: routerv1.RequestContext, request: chatv1.ChatRequest, taskType = this.engine.classifier.classify(request)): PreparedChat {
    const { controls, extraJson } = takeRequestControls(request.extraJson);
    const traits = chatRequestTraits(request);
    const capability: Capability = 'chat';
    return {
      planRequest: { context, capability, model: request.model, controls, taskType, ...traits, stream: request.stream, user: request.user },
      upstream: extraJson === request.extraJson ? request : { ...request, extraJson },
    };
  }

  /** Tells `gray` of every attempt, and `announce` of the route so far after a failed one (no call in progress until the next). */
  private progressListener(plan: RoutePlan, gray: AttemptListener | undefined, announce: (route: routerv1.RouteDecision) => void): AttemptListener {
    const attempts: routerv1.RouteAttempt[] = [];
    return (candidate, attempt, failure, cutShort) => {
      gray?.(candidate, attempt, failure, cutShort);
      attempts.push(attempt);
      if (failure) announce(decisionFor(plan, candidate, [...attempts]));
    };
  }

  /**
   * A request in a gray release counts once for its arm, by its first attempt to the arm's own
   * model. Failures on the deployment's side, the ones failover retries (5xx, timeouts, lost
   * connections, 429s, an upstream 401, 403 or 404), count against the arm, and so does a stream that
   * model breaks after its first token (its success is taken back); a refusal of the request itself
   * (bad request, context too long, content filter) is not counted at all, nor is an attempt the
   * request's deadline stopped. Attempts to other models (the baseline serving a canary request)
   * say nothing about the arm, but a request its arm's model took no call for because none of its
   * deployments could take calls when it was planned (circuit open, or half-open with its probe
   * out; cooling down after a Retry-After) counts as the arm's error: that model failed to take
   * its share, and without it a canary whose circuit opened after a few failures would be judged
   * on those few calls only, and never reach `minRequests`.
   */
  private grayReleaseWatch(plan: RoutePlan, capability: Capability): GrayReleaseWatch | undefined {
    const assignment = plan.assignment;
    if (assignment?.kind !== 'gray_release') return undefined;
    const release = this.engine.grayReleases.byId(assignment.experiment);
    if (!release) return undefined;
    const arm = assignment.arm === 'canary' ? 'canary' : 'baseline';
    // Read now, as the plan was made: later, failover's own calls change the circuits.
    const unavailable = this.unavailable(assignment.model, capability);
    let attempted = false;
    let counted = false;
    let success: RecordedCall | undefined;
    return {
      onAttempt: (candidate, attempt, failure, cutShort) => {
        if (candidate.via !== assignment.model) return;
        attempted = true;
        if (counted || cutShort) return;
        counted = true;
        if (failure && !failure.retryable) return;
        const call = release.record(arm, failure === undefined, attempt.latencyMs);
        if (call.ok) success = call;
      },
      onAnswerFailed: () => {
        if (success) release.failAfterSuccess(success);
        success = undefined;
      },
      settled: () => {
        if (!attempted && unavailable) release.record(arm, false, 0);
      },
      eligible: (candidate) => !(arm === 'canary' && candidate.via === assignment.model && release.rollback() !== undefined),
    };
  }

  /** Whether no deployment of the models `name` stands for can take a call now: each one's circuit is open (or its half-open probe is out), or it is cooling down after a Retry-After. */
  private unavailable(name: string, capability: Capability): boolean {
    const { breakers } = this.engine;
    const deployments = (this.engine.catalog.membersOf(name, capability) ?? []).flatMap((m) => m.deployments);
    return deployments.length > 0 && deployments.every((d) => !breakers.of(d.id).available() || breakers.coolingUntil(d.id) > 0);
  }
}

// Whether an adapter event carries any of the answer (a provider that fails or stalls before one
// has shown the client nothing, and the request fails over). Shared with the adapters, which must
// agree on when an answer has begun; re-exported for the router's telemetry.
export { carriesAnswer };

/** Whether a speech piece carries audio: the first that does commits the request to its deployment. */
export function carriesAudio(piece: adapterv1.SpeakResponse): boolean {
  return (piece.response?.audio.length ?? 0) > 0;
}

function speechPiece(piece: adapterv1.SpeakResponse): chatv1.SpeechResponse {
  if (!piece.response) throw new GatewayError('upstream_error', 'The adapter sent an empty speech piece.');
  return piece.response;
}

/** What a call to an API other than chat is planned with: its capability, model and, where it has them, a prompt estimate, audio length or characters. */
type PlannedCall = Pick<PlanRequest, 'context' | 'capability' | 'model' | 'needs' | 'user'> & Partial<Pick<PlanRequest, 'promptTokens' | 'audioMs' | 'characters' | 'imagesMade' | 'operatorCall'>>;

/** The plan request of a call to an API other than chat: no task type, context window, answer length or route controls. */
function wholePlanRequest(asked: PlannedCall, stream: boolean): PlanRequest {
  return { promptTokens: 0, ...asked, controls: { route: {} }, taskType: undefined, maxOutputTokens: 0, stream };
}

function answerEvent(event: adapterv1.ChatResponse): routerv1.ChatResponse {
  if (event.chunk) return { chunk: event.chunk };
  if (event.completion) return { completion: event.completion };
  throw new GatewayError('upstream_error', 'The adapter sent an empty event.');
}

async function* once<T>(promise: Promise<T>): AsyncGenerator<T> {
  yield await promise;
}

function requiredRequest<T>(input: { context?: routerv1.RequestContext | undefined; request?: T | undefined }): { context: routerv1.RequestContext; request: T } {
  if (!input.request || !input.context) throw new GatewayError('bad_request', 'The call carries no request or context.');
  return { context: input.context, request: input.request };
}

/** Ends a served stream once it is read, failed or left: failover learns how it went (the client gone when its signal aborted), and the provider's stream is closed. */
async function endServed(served: Served<unknown>, failure: unknown, signal: AbortSignal): Promise<void> {
  served.finish(failure ?? (signal.aborted ? new GatewayError('cancelled', 'The client went away.') : undefined));
  await served.rest.return?.();
}

/** Ends a call that produced its first answer event after its reader left. */
function abandon(served: Served<unknown>): void {
  served.finish(new GatewayError('cancelled', 'The client went away.'));
  void served.rest.return?.();
}

/** Notices pushed while some work settles: yielded in order, then the work's value returned (or its error thrown). */
class Notices<N> {
  private readonly queue: N[] = [];
  private wake: (() => void) | undefined;

  push(notice: N): void {
    this.queue.push(notice);
    this.wake?.();
  }

  async *until<T>(work: Promise<T>): AsyncGenerator<N, T> {
    let outcome: { value: T } | { error: unknown } | undefined;
    work.then(
      (value) => {
        outcome = { value };
        this.wake?.();
      },
      (error: unknown) => {
        outcome = { error };
        this.wake?.();
      },
    );
    while (this.queue.length > 0 || !outcome) {
      const notice = this.queue.shift();
      if (notice !== undefined) yield notice;
      else await new Promise<void>((resolve) => (this.wake = resolve));
    }
    if ('error' in outcome) throw outcome.error;
    return outcome.value;
  }
}
