import type { sendUnaryData, ServerUnaryCall, ServerWritableStream } from '@grpc/grpc-js';
import { adapterv1 } from '@openrouter/contracts';
import { ServerCallCancellation, toGrpcStatus, type GrpcServiceBinding } from '@openrouter/grpc';
import type { Logger } from '@openrouter/observability';
import type { AdapterService } from './adapter.service';

/** gRPC transport only: turns calls into service calls and cancellations into aborts. */
export function adapterGrpcBinding(service: AdapterService, logger: Logger): GrpcServiceBinding {
  const implementation: adapterv1.AdapterServiceServer = {
    chat(call: ServerWritableStream<adapterv1.ChatRequest, adapterv1.ChatResponse>): void {
      const cancellation = new ServerCallCancellation(call);
      const { signal } = cancellation;
      void (async () => {
        try {
          for await (const event of service.chat(call.request, signal)) {
            if (signal.aborted) return;
            call.write(event);
          }
          cancellation.answered();
          call.end();
        } catch (error) {
          if (signal.aborted) return;
          cancellation.answered();
          logger.debug({ requestId: call.request.requestId, err: error }, 'provider call failed');
          call.emit('error', toGrpcStatus(error));
        }
      })();
    },

    embed(call: ServerUnaryCall<adapterv1.EmbedRequest, adapterv1.EmbedResponse>, callback: sendUnaryData<adapterv1.EmbedResponse>): void {
      const cancellation = new ServerCallCancellation(call);
      service.embed(call.request, cancellation.signal).then(
        (response) => {
          cancellation.answered();
          callback(null, { response });
        },
        (error: unknown) => {
          cancellation.answered();
          callback(toGrpcStatus(error));
        },
      );
    },
  };
  return { definition: adapterv1.AdapterServiceService, implementation };
}
