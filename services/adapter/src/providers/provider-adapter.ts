import type { ProviderConfig, ProviderConfigOf, ProviderType } from '@openrouter/config';
import type { adapterv1, chatv1 } from '@openrouter/contracts';
import type { CredentialFileOptions } from './credential-file';
import type { Egress } from './http-upstream';
import { ImageSource } from './image-source';

export interface ProviderCall<T> {
  requestId: string;
  upstreamModel: string;
  request: T;
  timeoutMs: number;
  signal: AbortSignal;
}

/**
 * One provider family's translation to and from its wire format. Implementations throw
 * GatewayError with a canonical kind for every failure; the transport maps it.
 */
export interface ProviderAdapter {
  /** Yields chunks for a streamed request, one completion otherwise. */
  chat(call: ProviderCall<chatv1.ChatRequest>): AsyncGenerator<adapterv1.ChatResponse>;
  embed(call: ProviderCall<chatv1.EmbeddingRequest>): Promise<chatv1.EmbeddingResponse>;
  /** OpenAI's Moderations API; only families whose provider has one (OpenAI-compatible servers) offer it. */
  moderate?(call: ProviderCall<chatv1.ModerationRequest>): Promise<chatv1.ModerationResponse>;
  /** OpenAI's Images API (generations); only families whose provider has one (OpenAI-compatible servers, Azure OpenAI) offer it. */
  generateImages?(call: ProviderCall<chatv1.ImageGenerationRequest>): Promise<chatv1.ImageGenerationResponse>;
  /** OpenAI's Audio API transcriptions and translations (`request.translate`); only OpenAI-compatible servers and Azure OpenAI offer them. */
  transcribe?(call: ProviderCall<chatv1.AudioTranscriptionRequest>): Promise<chatv1.AudioTranscriptionResponse>;
  /**
   * OpenAI's Audio API speech (text to speech), in pieces as the provider's audio arrives (the
   * first with its media type, the last with the usage and characters); only OpenAI-compatible
   * servers and Azure OpenAI offer it.
   */
  speak?(call: ProviderCall<chatv1.SpeechRequest>): AsyncGenerator<chatv1.SpeechResponse>;
  close(): Promise<void>;
}

/** What the adapter instance shares with every provider adapter it builds (and closes itself). */
export interface ProviderContext {
  /** Fetches image URLs for families that send images inline, under `adapter.imageFetch`. */
  images: ImageSource;
  /** The environment's forward proxies, for the calls of providers without a `proxy` of their own. Unset: direct. */
  egress?: Egress;
  /** The log and metrics of the providers' credential files (`apiKeyFile`…). Unset: neither. */
  credentialFiles?: CredentialFileOptions;
}

export type ProviderFactory<T extends ProviderType = ProviderType> = (id: string, config: ProviderConfigOf<T>, context: ProviderContext) => ProviderAdapter;
export type ProviderRegistry = { readonly [T in ProviderType]: ProviderFactory<T> };

/**
 * Builds the adapter for one configured provider from the factory of its type. Without a
 * context, images are fetched from public addresses only.
 */
export function createProviderAdapter(registry: ProviderRegistry, id: string, config: ProviderConfig, context: ProviderContext = { images: new ImageSource() }): ProviderAdapter {
  // The registry is keyed by type, so the factory found always matches the config's variant.
  const factory = registry[config.type] as ProviderFactory;
  return factory(id, config, context);
}
