import type { sendUnaryData, ServerUnaryCall, ServerWritableStream } from '@grpc/grpc-js';
import { adapterv1 } from '@openrouter/contracts';
import { toGrpcStatus, type GrpcServiceBinding } from '@openrouter/grpc';
import type { Logger } from '@openrouter/observability';
import type { AdapterService } from './adapter.service';

/** gRPC transport only: turns calls into service calls and cancellations into aborts. */
export function adapterGrpcBinding(service: AdapterService, logger: Logger): GrpcServiceBinding {
  const implementation: adapterv1.AdapterServiceServer = {
    chat(call: ServerWritableStream<adapterv1.ChatRequest, adapterv1.ChatResponse>): void {
      const abort = new AbortController();
      call.on('cancelled', () => abort.abort());
      void (async () => {
        try {
          for await (const event of service.chat(call.request, abort.signal)) {
            if (abort.signal.aborted) return;
            call.write(event);
          }
          call.end();
        } catch (error) {
          if (abort.signal.aborted) return;
          logger.debug({ requestId: call.request.requestId, err: error }, 'provider call failed');
          call.emit('error', toGrpcStatus(error));
        }
      })();
    },

    embed(call: ServerUnaryCall<adapterv1.EmbedRequest, adapterv1.EmbedResponse>, callback: sendUnaryData<adapterv1.EmbedResponse>): void {
      const abort = new AbortController();
      call.on('cancelled', () => abort.abort());
      service.embed(call.request, abort.signal).then(
        (response) => callback(null, { response }),
        (error: unknown) => callback(toGrpcStatus(error)),
      );
    },
  };
  return { definition: adapterv1.AdapterServiceService, implementation };
}
