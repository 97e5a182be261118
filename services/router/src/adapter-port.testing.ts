import type { adapterv1 } from '@openrouter/contracts';
import type { AdapterPort } from './router.service';

const unused = (): Error => new Error('unused: the spec does not expect this adapter call');

/**
 * An adapter port whose every call fails as one the spec does not expect. Specs extend it and give
 * the calls they use, so a new adapter RPC touches this one place, not every spec's double.
 */
export class UnusedAdapters implements AdapterPort {
  chat(_request: adapterv1.ChatRequest, _signal: AbortSignal, _deployment: string): AsyncIterator<adapterv1.ChatResponse> {
    return (async function* (): AsyncGenerator<adapterv1.ChatResponse> {
      yield* [];
      throw unused();
    })();
  }

  embed(_request: adapterv1.EmbedRequest, _signal: AbortSignal, _deployment: string): Promise<adapterv1.EmbedResponse> {
    return Promise.reject(unused());
  }

  moderate(_request: adapterv1.ModerateRequest, _signal: AbortSignal, _deployment: string): Promise<adapterv1.ModerateResponse> {
    return Promise.reject(unused());
  }

  generateImages(_request: adapterv1.GenerateImagesRequest, _signal: AbortSignal, _deployment: string): Promise<adapterv1.GenerateImagesResponse> {
    return Promise.reject(unused());
  }

  transcribe(_request: adapterv1.TranscribeRequest, _signal: AbortSignal, _deployment: string): Promise<adapterv1.TranscribeResponse> {
    return Promise.reject(unused());
  }

  speak(_request: adapterv1.SpeakRequest, _signal: AbortSignal, _deployment: string): AsyncIterator<adapterv1.SpeakResponse> {
    return (async function* (): AsyncGenerator<adapterv1.SpeakResponse> {
      yield* [];
      throw unused();
    })();
  }
}

/** The same as a plain object, for specs that write their double as one: `{ ...unusedAdapters(), chat }`. */
export function unusedAdapters(): AdapterPort {
  const port = new UnusedAdapters();
  return {
    chat: port.chat.bind(port),
    embed: port.embed.bind(port),
    moderate: port.moderate.bind(port),
    generateImages: port.generateImages.bind(port),
    transcribe: port.transcribe.bind(port),
    speak: port.speak.bind(port),
  };
}
