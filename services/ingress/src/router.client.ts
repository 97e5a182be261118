import { Metadata, type ChannelOptions, type Interceptor } from '@grpc/grpc-js';
import { routerv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { acceptBatches, callUnary, chatChunkBatching, readStream, ROUTE_CALLS_FEATURE, RouterTargets, withFeatures, type GrpcSecurity, type RouterTarget } from '@openrouter/grpc';
import type { Logger } from '@openrouter/observability';
import { RouterPort, type ReplicaAnswer, type RouterStatusCalls } from './router.port';

const CHAT_CHUNKS = chatChunkBatching<routerv1.ChatResponse>();

/** A `calling` notice is no answer: the router's deadline for one still runs. */
const isAnswer = (message: routerv1.ChatResponse): boolean => message.calling === undefined;

/** How long ingress waits on the router before answering the client with a timeout. */
export interface RouterTimeouts {
  /** Deadline of the light unary calls (model list, explain, health, gray releases). */
  callMs: number;
  /** Until the first message of a stream (a streamed chat, speech): the router's guardrail moderation budget and its own deadline for a first token, plus a margin. */
  firstStreamedMs: number;
  /** Until a whole answer (a non-streamed chat's first message, an embedding): the router's moderation budget, its deadline and one full attempt, plus a margin. */
  wholeAnswerMs: number;
}

/** The router, over gRPC. Aborting a call's signal cancels it all the way to the provider. */
export class RouterClient extends RouterPort {
  private readonly client: routerv1.RouterServiceClient;
  /** The router's replicas now: by default, each address its name resolves to (see `RouterTargets`). */
  private readonly replicas: () => Promise<RouterTarget[]>;
  /** A channel per replica address, for the calls that must reach each one (made at its first call, closed when its address goes). */
  private readonly replicaClients = new Map<string, routerv1.RouterServiceClient>();

  /**
   * `security`: the service token and TLS of the calls; `clientOptions`: extra client options, e.g.
   * the tracing interceptor; `replicas`: the router's replicas at a status call, by default every
   * address its name resolves to then (the system resolver, within `timeouts.callMs`).
   */
  constructor(
    address: string,
    private readonly timeouts: RouterTimeouts,
    private readonly security: GrpcSecurity,
    private readonly clientOptions: ChannelOptions & { interceptors?: Interceptor[] } = {},
    logger?: Logger,
    replicas?: () => Promise<RouterTarget[]>,
  ) {
    super();
    this.client = security.client(routerv1.RouterServiceClient, address, clientOptions);
    const targets = new RouterTargets([address], 'dns', logger, { lookupTimeoutMs: timeouts.callMs });
    this.replicas = replicas ?? (() => targets.resolve());
  }

  chat(request: routerv1.ChatRequest, signal: AbortSignal): AsyncGenerator<routerv1.ChatResponse> {
    const timeoutMs = request.request?.stream ? this.timeouts.firstStreamedMs : this.timeouts.wholeAnswerMs;
    const metadata = withFeatures([ROUTE_CALLS_FEATURE], acceptBatches(CHAT_CHUNKS));
    return readStream(() => this.client.chat(request, metadata), signal, CHAT_CHUNKS, { peer: 'router', timeoutMs, answers: isAnswer });
  }

  embed(request: routerv1.EmbedRequest, signal?: AbortSignal): Promise<routerv1.EmbedResponse> {
    return callUnary(this.client.embed.bind(this.client), request, new Metadata(), signal, { peer: 'router', timeoutMs: this.timeouts.wholeAnswerMs });
  }

  moderate(request: routerv1.ModerateRequest, signal?: AbortSignal): Promise<routerv1.ModerateResponse> {
    return callUnary(this.client.moderate.bind(this.client), request, new Metadata(), signal, { peer: 'router', timeoutMs: this.timeouts.wholeAnswerMs });
  }

  generateImages(request: routerv1.GenerateImagesRequest, signal?: AbortSignal): Promise<routerv1.GenerateImagesResponse> {
    return callUnary(this.client.generateImages.bind(this.client), request, new Metadata(), signal, { peer: 'router', timeoutMs: this.timeouts.wholeAnswerMs });
  }

  transcribe(request: routerv1.TranscribeRequest, signal?: AbortSignal): Promise<routerv1.TranscribeResponse> {
    return callUnary(this.client.transcribe.bind(this.client), request, new Metadata(), signal, { peer: 'router', timeoutMs: this.timeouts.wholeAnswerMs });
  }

  /** The router fails over until a piece with audio arrives: the first message is bounded as a chat stream's first token is. */
  speak(request: routerv1.SpeakRequest, signal: AbortSignal): AsyncGenerator<routerv1.SpeakResponse> {
    return readStream(() => this.client.speak(request, new Metadata()), signal, undefined, { peer: 'router', timeoutMs: this.timeouts.firstStreamedMs });
  }

  listModels(context: routerv1.RequestContext, includeRetired = false): Promise<routerv1.ListModelsResponse> {
    return callUnary(this.client.listModels.bind(this.client), { context, includeRetired }, new Metadata(), undefined, this.light());
  }

  explain(request: routerv1.ExplainRequest): Promise<routerv1.ExplainResponse> {
    return callUnary(this.client.explain.bind(this.client), request, new Metadata(), undefined, this.light());
  }

  providersHealth(): Promise<routerv1.ProvidersHealthResponse> {
    return callUnary(this.client.providersHealth.bind(this.client), {}, new Metadata(), undefined, this.light());
  }

  grayReleases(): Promise<routerv1.GrayReleasesResponse> {
    return callUnary(this.client.grayReleases.bind(this.client), {}, new Metadata(), undefined, this.light());
  }

  /**
   * Ready when the channel to the router connects within the deadline and the router takes this
   * service's token (a cheap call: a token the router refuses would fail every request). Both
   * within the one deadline, so a probe answers within `timeoutMs` (readiness gives each check 1 s).
   */
  async isReachable(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    const connected = await new Promise<boolean>((resolve) => this.client.waitForReady(deadline, (error) => resolve(!error)));
    if (!connected) return false;
    try {
      await callUnary(this.client.grayReleases.bind(this.client), {}, new Metadata(), undefined, { peer: 'router', timeoutMs: Math.max(1, deadline - Date.now()) });
      return true;
    } catch (error) {
      return GatewayError.from(error).code !== 'service_token_refused';
    }
  }

  async eachReplica<T>(call: (replica: RouterStatusCalls) => Promise<T>): Promise<Array<ReplicaAnswer<T>>> {
    const targets = await this.replicas();
    const current = new Set(targets.map((t) => t.address));
    for (const [address, client] of this.replicaClients) {
      if (current.has(address)) continue;
      client.close();
      this.replicaClients.delete(address);
    }
    const answers = await Promise.all(
      targets.map(async (target): Promise<ReplicaAnswer<T>> => {
        try {
          if (target.unresolved !== undefined) throw new GatewayError('unavailable', `The router's address does not resolve (${target.unresolved}).`);
          return { address: target.address, result: await call(this.statusCalls(this.replicaClient(target))) };
        } catch (error) {
          return { address: target.address, error: GatewayError.from(error) };
        }
      }),
    );
    return answers.sort((a, b) => a.address.localeCompare(b.address));
  }

  close(): void {
    this.client.close();
    for (const client of this.replicaClients.values()) client.close();
    this.replicaClients.clear();
  }

  private replicaClient(target: RouterTarget): routerv1.RouterServiceClient {
    let client = this.replicaClients.get(target.address);
    if (!client) {
      // TLS verifies a resolved address as the name it was resolved from.
      const options = target.serverName === undefined ? this.clientOptions : { ...this.clientOptions, 'grpc.ssl_target_name_override': target.serverName };
      client = this.security.client(routerv1.RouterServiceClient, target.address, options);
      this.replicaClients.set(target.address, client);
    }
    return client;
  }

  private statusCalls(client: routerv1.RouterServiceClient): RouterStatusCalls {
    return {
      providersHealth: () => callUnary(client.providersHealth.bind(client), {}, new Metadata(), undefined, this.light()),
      grayReleases: () => callUnary(client.grayReleases.bind(client), {}, new Metadata(), undefined, this.light()),
    };
  }

  private light(): { peer: string; timeoutMs: number } {
    return { peer: 'router', timeoutMs: this.timeouts.callMs };
  }
}
