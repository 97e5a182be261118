import type { sendUnaryData, ServerUnaryCall, ServerWritableStream } from '@grpc/grpc-js';
import { adapterv1, type chatv1 } from '@openrouter/contracts';
import { chatChunkBatching, serveStream, serveUnary, type GrpcServiceBinding } from '@openrouter/grpc';
import type { Logger } from '@openrouter/observability';
import type { AdapterService } from './adapter.service';

const CHAT_CHUNKS = chatChunkBatching<adapterv1.ChatResponse>();

/** gRPC transport only: turns calls into service calls and cancellations into aborts. */
export function adapterGrpcBinding(service: AdapterService, logger: Logger): GrpcServiceBinding {
  const implementation: adapterv1.AdapterServiceServer = {
    chat(call: ServerWritableStream<adapterv1.ChatRequest, adapterv1.ChatResponse>): void {
      serveStream(
        call,
        (signal) => service.chat(call.request, signal),
        (error) => logger.debug({ requestId: call.request.requestId, err: error }, 'provider call failed'),
        CHAT_CHUNKS,
      );
    },

    embed(call: ServerUnaryCall<adapterv1.EmbedRequest, adapterv1.EmbedResponse>, callback: sendUnaryData<adapterv1.EmbedResponse>): void {
      serveUnary(call, callback, async (signal) => ({ response: await service.embed(call.request, signal) }));
    },

    moderate(call: ServerUnaryCall<adapterv1.ModerateRequest, adapterv1.ModerateResponse>, callback: sendUnaryData<adapterv1.ModerateResponse>): void {
      serveUnary(call, callback, async (signal) => ({ response: await service.moderate(call.request, signal) }));
    },

    generateImages(call: ServerUnaryCall<adapterv1.GenerateImagesRequest, adapterv1.GenerateImagesResponse>, callback: sendUnaryData<adapterv1.GenerateImagesResponse>): void {
      serveUnary(call, callback, async (signal) => ({ response: await service.generateImages(call.request, signal) }));
    },

    transcribe(call: ServerUnaryCall<adapterv1.TranscribeRequest, adapterv1.TranscribeResponse>, callback: sendUnaryData<adapterv1.TranscribeResponse>): void {
      serveUnary(call, callback, async (signal) => ({ response: await service.transcribe(call.request, signal) }));
    },

    speak(call: ServerWritableStream<adapterv1.SpeakRequest, adapterv1.SpeakResponse>): void {
      serveStream(
        call,
        (signal) => speechMessages(service.speak(call.request, signal)),
        (error) => logger.debug({ requestId: call.request.requestId, err: error }, 'provider call failed'),
      );
    },
  };
  return { definition: adapterv1.AdapterServiceService, implementation };
}

/** Speech pieces as the call's messages, one each: a piece is already what arrived since the last. */
export async function* speechMessages(pieces: AsyncIterable<chatv1.SpeechResponse>): AsyncGenerator<adapterv1.SpeakResponse> {
  for await (const response of pieces) yield { response };
}
