import { GatewayError } from '@openrouter/errors';
import type { routerv1 } from '@openrouter/contracts';

/**
 * The router as ingress calls it: `RouterClient` over gRPC (the distributed mode), or
 * `InProcessRouter` in the embedded gateway. Aborting a call's signal cancels it down to the provider.
 */
export abstract class RouterPort {
  abstract chat(request: routerv1.ChatRequest, signal: AbortSignal): AsyncGenerator<routerv1.ChatResponse>;
  /** Without a signal, the call runs to its answer (or the router's deadline) whatever the client does. */
  abstract embed(request: routerv1.EmbedRequest, signal?: AbortSignal): Promise<routerv1.EmbedResponse>;
  abstract moderate(request: routerv1.ModerateRequest, signal?: AbortSignal): Promise<routerv1.ModerateResponse>;
  abstract generateImages(request: routerv1.GenerateImagesRequest, signal?: AbortSignal): Promise<routerv1.GenerateImagesResponse>;
  abstract transcribe(request: routerv1.TranscribeRequest, signal?: AbortSignal): Promise<routerv1.TranscribeResponse>;
  /** Speech in pieces as the provider sends its audio, the decision with the first (see `chatv1.SpeechResponse`). */
  abstract speak(request: routerv1.SpeakRequest, signal: AbortSignal): AsyncGenerator<routerv1.SpeakResponse>;
  /** The models the caller may name; `includeRetired`: also the retired ones still served by a replacement. */
  abstract listModels(context: routerv1.RequestContext, includeRetired?: boolean): Promise<routerv1.ListModelsResponse>;
  abstract explain(request: routerv1.ExplainRequest): Promise<routerv1.ExplainResponse>;
  abstract providersHealth(): Promise<routerv1.ProvidersHealthResponse>;
  abstract grayReleases(): Promise<routerv1.GrayReleasesResponse>;
  /**
   * `call` on every router replica, each with its own state (circuit breakers, windows): every
   * address the router's name resolves to now, each called on a channel of its own. One entry
   * per replica, in address order; a replica that fails or does not answer in time has `error`.
   */
  abstract eachReplica<T>(call: (replica: RouterStatusCalls) => Promise<T>): Promise<Array<ReplicaAnswer<T>>>;
  /** Ready when the router answers within the deadline. */
  abstract isReachable(timeoutMs: number): Promise<boolean>;
  abstract close(): void;
}

/** The router's methods, as the embedded gateway hands them over. */
export type RouterCalls = Pick<RouterPort, 'chat' | 'embed' | 'moderate' | 'generateImages' | 'transcribe' | 'speak' | 'listModels' | 'explain' | 'providersHealth' | 'grayReleases'>;

/** The status methods of one router replica. */
export type RouterStatusCalls = Pick<RouterCalls, 'providersHealth' | 'grayReleases'>;

/** One router replica's answer to a status call, or why it gave none. */
export interface ReplicaAnswer<T> {
  /** `host:port` of the replica; `in-process` in the embedded gateway. */
  address: string;
  result?: T;
  error?: GatewayError;
}

/** The router in this process (the embedded gateway): no socket, no serialisation. */
export class InProcessRouter extends RouterPort {
  constructor(private readonly calls: RouterCalls) {
    super();
  }

  chat(request: routerv1.ChatRequest, signal: AbortSignal): AsyncGenerator<routerv1.ChatResponse> {
    return this.calls.chat(request, signal);
  }

  embed(request: routerv1.EmbedRequest, signal?: AbortSignal): Promise<routerv1.EmbedResponse> {
    return this.calls.embed(request, signal);
  }

  moderate(request: routerv1.ModerateRequest, signal?: AbortSignal): Promise<routerv1.ModerateResponse> {
    return this.calls.moderate(request, signal);
  }

  generateImages(request: routerv1.GenerateImagesRequest, signal?: AbortSignal): Promise<routerv1.GenerateImagesResponse> {
    return this.calls.generateImages(request, signal);
  }

  transcribe(request: routerv1.TranscribeRequest, signal?: AbortSignal): Promise<routerv1.TranscribeResponse> {
    return this.calls.transcribe(request, signal);
  }

  speak(request: routerv1.SpeakRequest, signal: AbortSignal): AsyncGenerator<routerv1.SpeakResponse> {
    return this.calls.speak(request, signal);
  }

  listModels(context: routerv1.RequestContext, includeRetired = false): Promise<routerv1.ListModelsResponse> {
    return this.calls.listModels(context, includeRetired);
  }

  explain(request: routerv1.ExplainRequest): Promise<routerv1.ExplainResponse> {
    return this.calls.explain(request);
  }

  providersHealth(): Promise<routerv1.ProvidersHealthResponse> {
    return this.calls.providersHealth();
  }

  grayReleases(): Promise<routerv1.GrayReleasesResponse> {
    return this.calls.grayReleases();
  }

  async eachReplica<T>(call: (replica: RouterStatusCalls) => Promise<T>): Promise<Array<ReplicaAnswer<T>>> {
    try {
      return [{ address: 'in-process', result: await call(this.calls) }];
    } catch (error) {
      return [{ address: 'in-process', error: GatewayError.from(error) }];
    }
  }

  async isReachable(): Promise<boolean> {
    return true;
  }

  close(): void {}
}
