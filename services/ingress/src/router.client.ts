import { credentials, Metadata, type ChannelOptions, type Interceptor } from '@grpc/grpc-js';
import { routerv1 } from '@openrouter/contracts';
import { acceptBatches, CHANNEL_OPTIONS, callUnary, chatChunkBatching, readStream } from '@openrouter/grpc';
import { RouterPort } from './router.port';

const CHAT_CHUNKS = chatChunkBatching<routerv1.ChatResponse>();

/** The router, over gRPC. Aborting a call's signal cancels it all the way to the provider. */
export class RouterClient extends RouterPort {
  private readonly client: routerv1.RouterServiceClient;

  /** `clientOptions`: extra client options, e.g. the tracing interceptor. */
  constructor(address: string, clientOptions: ChannelOptions & { interceptors?: Interceptor[] } = {}) {
    super();
    this.client = new routerv1.RouterServiceClient(address, credentials.createInsecure(), { ...CHANNEL_OPTIONS, ...clientOptions });
  }

  chat(request: routerv1.ChatRequest, signal: AbortSignal): AsyncGenerator<routerv1.ChatResponse> {
    return readStream(this.client.chat(request, acceptBatches(CHAT_CHUNKS)), signal, CHAT_CHUNKS);
  }

  embed(request: routerv1.EmbedRequest, signal: AbortSignal): Promise<routerv1.EmbedResponse> {
    return callUnary(this.client.embed.bind(this.client), request, new Metadata(), signal);
  }

  listModels(context: routerv1.RequestContext): Promise<routerv1.ListModelsResponse> {
    return callUnary(this.client.listModels.bind(this.client), { context }, new Metadata());
  }

  explain(request: routerv1.ExplainRequest): Promise<routerv1.ExplainResponse> {
    return callUnary(this.client.explain.bind(this.client), request, new Metadata());
  }

  providersHealth(): Promise<routerv1.ProvidersHealthResponse> {
    return callUnary(this.client.providersHealth.bind(this.client), {}, new Metadata());
  }

  grayReleases(): Promise<routerv1.GrayReleasesResponse> {
    return callUnary(this.client.grayReleases.bind(this.client), {}, new Metadata());
  }

  /** Ready when the channel to the router connects within the deadline. */
  isReachable(timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => this.client.waitForReady(Date.now() + timeoutMs, (error) => resolve(!error)));
  }

  close(): void {
    this.client.close();
  }
}
