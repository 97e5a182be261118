import { GatewayError } from '@openrouter/errors';
import type { sendUnaryData, ServerUnaryCall, ServerWritableStream } from '@grpc/grpc-js';
import { routerv1 } from '@openrouter/contracts';
import { chatChunkBatching, hasFeature, ROUTE_CALLS_FEATURE, serveStream, serveUnary, toGrpcStatus, type GrpcServiceBinding } from '@openrouter/grpc';
import type { Logger } from '@openrouter/observability';
import type { RouterService } from './router.service';

function unary<Req, Res>(work: (request: Req) => Res): (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void {
  return (call, callback) => {
    try {
      callback(null, work(call.request));
    } catch (error) {
      callback(toGrpcStatus(error));
    }
  };
}

const CHAT_CHUNKS = chatChunkBatching<routerv1.ChatResponse>();

/** gRPC transport only: calls into the service; a cancelled call aborts the work below it. */
export function routerGrpcBinding(service: RouterService, logger: Logger): GrpcServiceBinding {
  const implementation: routerv1.RouterServiceServer = {
    chat(call: ServerWritableStream<routerv1.ChatRequest, routerv1.ChatResponse>): void {
      serveStream(
        call,
        (signal) => service.chat(call.request, signal, hasFeature(call.metadata, ROUTE_CALLS_FEATURE)),
        (error) => {
          // An adapter that refused this router's service token: a misconfiguration to see at once.
          if (GatewayError.from(error).code === 'service_token_refused') logger.error({ requestId: call.request.context?.requestId, err: error }, 'an adapter refused the router\'s service token (grpc.auth.token)');
          else logger.debug({ requestId: call.request.context?.requestId, err: error }, 'route failed');
        },
        CHAT_CHUNKS,
      );
    },

    embed(call: ServerUnaryCall<routerv1.EmbedRequest, routerv1.EmbedResponse>, callback: sendUnaryData<routerv1.EmbedResponse>): void {
      serveUnary(call, callback, (signal) => service.embed(call.request, signal));
    },
    moderate(call: ServerUnaryCall<routerv1.ModerateRequest, routerv1.ModerateResponse>, callback: sendUnaryData<routerv1.ModerateResponse>): void {
      serveUnary(call, callback, (signal) => service.moderate(call.request, signal));
    },
    generateImages(call: ServerUnaryCall<routerv1.GenerateImagesRequest, routerv1.GenerateImagesResponse>, callback: sendUnaryData<routerv1.GenerateImagesResponse>): void {
      serveUnary(call, callback, (signal) => service.generateImages(call.request, signal));
    },
    transcribe(call: ServerUnaryCall<routerv1.TranscribeRequest, routerv1.TranscribeResponse>, callback: sendUnaryData<routerv1.TranscribeResponse>): void {
      serveUnary(call, callback, (signal) => service.transcribe(call.request, signal));
    },
    speak(call: ServerWritableStream<routerv1.SpeakRequest, routerv1.SpeakResponse>): void {
      serveStream(
        call,
        (signal) => service.speak(call.request, signal),
        (error) => logger.debug({ requestId: call.request.context?.requestId, err: error }, 'route failed'),
      );
    },

    listModels: unary((request: routerv1.ListModelsRequest) => service.listModels(request.context, request.includeRetired)),
    explain: unary((request: routerv1.ExplainRequest) => service.explain(request)),
    providersHealth: unary(() => service.providersHealth()),
    grayReleases: unary(() => service.grayReleases()),
  };
  return { definition: routerv1.RouterServiceService, implementation };
}
