import type { GatewayConfig } from '@openrouter/config';
import type { adapterv1, chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { type CredentialFileMetrics, UpstreamInstrumentation, type Logger } from '@openrouter/observability';
import { DIRECT_EGRESS, type Egress } from './providers/http-upstream';
import { ImageSource } from './providers/image-source';
import { createProviderAdapter, type ProviderAdapter, type ProviderRegistry } from './providers/provider-adapter';

interface Call<T> {
  requestId: string;
  provider: string;
  upstreamModel: string;
  request?: T | undefined;
  timeoutMs: number;
}

/** Holds one adapter per configured provider this instance serves and dispatches calls to it. */
export class AdapterService {
  private readonly adapters = new Map<string, ProviderAdapter>();
  private readonly images: ImageSource;

  constructor(
    config: GatewayConfig,
    registry: ProviderRegistry,
    /** Upstream latency metrics and provider-call spans. */
    private readonly upstream: UpstreamInstrumentation = new UpstreamInstrumentation(undefined),
    logger?: Logger,
    /** The environment's forward proxies (HTTPS_PROXY, HTTP_PROXY, NO_PROXY), read at start-up. */
    egress: Egress = DIRECT_EGRESS,
    /** Whether the providers' credential files read well, and how often they changed. */
    credentialFileMetrics?: CredentialFileMetrics,
  ) {
    this.images = new ImageSource(config.adapter.imageFetch, logger ? { logger, egress } : { egress });
    const served = config.adapter.providers.length > 0 ? config.adapter.providers : Object.keys(config.providers);
    const credentialFiles = { logger, metrics: credentialFileMetrics };
    try {
      for (const id of served) {
        const provider = config.providers[id];
        if (provider) this.adapters.set(id, createProviderAdapter(registry, id, provider, { images: this.images, egress, credentialFiles }));
      }
    } catch (error) {
      // A provider that cannot start (an unreadable credential file) stops the adapter: those built already let go of their connections and files.
      this.close().catch(() => undefined);
      throw error;
    }
  }

  get providerIds(): string[] {
    return [...this.adapters.keys()];
  }

  chat(call: Call<chatv1.ChatRequest>, signal: AbortSignal): AsyncGenerator<adapterv1.ChatResponse> {
    const request = required(call.request);
    const adapter = this.adapterFor(call.provider);
    return this.upstream.stream({ provider: call.provider, operation: 'chat', upstreamModel: call.upstreamModel }, signal, () =>
      adapter.chat({ requestId: call.requestId, upstreamModel: call.upstreamModel, request, timeoutMs: call.timeoutMs, signal }),
    );
  }

  embed(call: Call<chatv1.EmbeddingRequest>, signal: AbortSignal): Promise<chatv1.EmbeddingResponse> {
    const request = required(call.request);
    const adapter = this.adapterFor(call.provider);
    return this.upstream.call({ provider: call.provider, operation: 'embedding', upstreamModel: call.upstreamModel }, signal, () =>
      adapter.embed({ requestId: call.requestId, upstreamModel: call.upstreamModel, request, timeoutMs: call.timeoutMs, signal }),
    );
  }

  moderate(call: Call<chatv1.ModerationRequest>, signal: AbortSignal): Promise<chatv1.ModerationResponse> {
    const request = required(call.request);
    const adapter = this.adapterFor(call.provider);
    const moderate = adapter.moderate?.bind(adapter);
    // Refused before any call, and never retried: another deployment of the same provider has no moderations either.
    if (!moderate) throw new GatewayError('bad_request', `The provider "${call.provider}" offers no moderations API.`, { param: 'model', code: 'model_not_supported', provider: call.provider });
    return this.upstream.call({ provider: call.provider, operation: 'moderation', upstreamModel: call.upstreamModel }, signal, () =>
      moderate({ requestId: call.requestId, upstreamModel: call.upstreamModel, request, timeoutMs: call.timeoutMs, signal }),
    );
  }

  generateImages(call: Call<chatv1.ImageGenerationRequest>, signal: AbortSignal): Promise<chatv1.ImageGenerationResponse> {
    const request = required(call.request);
    const adapter = this.adapterFor(call.provider);
    const generateImages = adapter.generateImages?.bind(adapter);
    // Refused before any call, and never retried: another deployment of the same provider has no image generation either.
    if (!generateImages) {
      throw new GatewayError('bad_request', `The provider "${call.provider}" offers no image generation API.`, { param: 'model', code: 'model_not_supported', provider: call.provider });
    }
    return this.upstream.call({ provider: call.provider, operation: 'image', upstreamModel: call.upstreamModel }, signal, () =>
      generateImages({ requestId: call.requestId, upstreamModel: call.upstreamModel, request, timeoutMs: call.timeoutMs, signal }),
    );
  }

  transcribe(call: Call<chatv1.AudioTranscriptionRequest>, signal: AbortSignal): Promise<chatv1.AudioTranscriptionResponse> {
    const request = required(call.request);
    const adapter = this.adapterFor(call.provider);
    const transcribe = adapter.transcribe?.bind(adapter);
    // Refused before any call, and never retried: another deployment of the same provider has no Audio API either.
    if (!transcribe) {
      throw new GatewayError('bad_request', `The provider "${call.provider}" offers no audio transcription API.`, { param: 'model', code: 'model_not_supported', provider: call.provider });
    }
    return this.upstream.call({ provider: call.provider, operation: request.translate ? 'translation' : 'transcription', upstreamModel: call.upstreamModel }, signal, () =>
      transcribe({ requestId: call.requestId, upstreamModel: call.upstreamModel, request, timeoutMs: call.timeoutMs, signal }),
    );
  }

  /** Speech in pieces as the provider's audio arrives, timed to the first piece and to the end; refused at once (before any call) where it cannot be served. */
  speak(call: Call<chatv1.SpeechRequest>, signal: AbortSignal): AsyncGenerator<chatv1.SpeechResponse> {
    const request = required(call.request);
    const adapter = this.adapterFor(call.provider);
    const speak = adapter.speak?.bind(adapter);
    if (!speak) throw new GatewayError('bad_request', `The provider "${call.provider}" offers no speech API.`, { param: 'model', code: 'model_not_supported', provider: call.provider });
    return this.upstream.stream({ provider: call.provider, operation: 'speech', upstreamModel: call.upstreamModel }, signal, () =>
      speak({ requestId: call.requestId, upstreamModel: call.upstreamModel, request, timeoutMs: call.timeoutMs, signal }),
    );
  }

  async close(): Promise<void> {
    await Promise.all([...this.adapters.values()].map((a) => a.close()));
    await this.images.close();
  }

  private adapterFor(provider: string): ProviderAdapter {
    const adapter = this.adapters.get(provider);
    if (!adapter) throw new GatewayError('unavailable', `This adapter instance does not serve the provider "${provider}".`, { retryable: true });
    return adapter;
  }
}

function required<T>(request: T | undefined): T {
  if (request === undefined) throw new GatewayError('bad_request', 'The call carries no request.');
  return request;
}
