import { type ServerWritableStream } from '@grpc/grpc-js';
import { parseArgs } from 'node:util';
import { configSchema } from '@openrouter/config';
import { routerv1 } from '@openrouter/contracts';
import { acceptBatches, chatChunkBatching, GrpcSecurity, GrpcServerHandle, readStream, serveStream } from '@openrouter/grpc';
import { chainAnswer } from './grpc-chain-answer';

/**
 * The gRPC transport floor's two servers, with the gateway's contracts, channel options and call
 * helpers (chunk batching included) and no logic at all:
 *   --role backend: answers `RouterService.Chat` with a canned answer (the adapter's place);
 *   --role relay:   serves `RouterService.Chat` by calling the backend's and passing every message
 *                   on (the router's place).
 * Calls carry and check the service token (`--token`), as the distributed services' do.
 * What the gateway's router and adapter cost above these is their own work.
 */
const { values } = parseArgs({ options: { role: { type: 'string' }, port: { type: 'string' }, backend: { type: 'string' }, token: { type: 'string' } } });
// The gateway's own gRPC settings, defaults included (load balancing, connection age).
const security = GrpcSecurity.fromConfig(configSchema.shape.grpc.parse({ auth: { token: values.token ?? '' } }));

/** Chunks ready together travel as one message, as between the gateway's services. */
const CHUNKS = chatChunkBatching<routerv1.ChatResponse>();

type ChatCall = ServerWritableStream<routerv1.ChatRequest, routerv1.ChatResponse>;

async function main(): Promise<void> {
  let chat: (call: ChatCall) => void;
  if (values.role === 'backend') {
    chat = (call) =>
      serveStream(
        call,
        async function* () {
          yield* chainAnswer(call.request.request?.stream === true);
        },
        () => undefined,
        CHUNKS,
      );
  } else if (values.role === 'relay') {
    if (!values.backend) throw new Error('--backend is required for the relay');
    const backend = security.client(routerv1.RouterServiceClient, values.backend);
    chat = (call) => serveStream(call, (signal) => readStream(() => backend.chat(call.request, acceptBatches(CHUNKS)), signal, CHUNKS), () => undefined, CHUNKS);
  } else throw new Error('--role backend|relay is required');
  const server = await GrpcServerHandle.start('127.0.0.1', Number(values.port ?? 0), [{ definition: routerv1.RouterServiceService, implementation: { chat } }], security);
  process.stdout.write(`grpc-chain ${values.role} on ${server.port}\n`);
  const stop = (): void => void server.close(1_000).then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`grpc-chain: ${String(error)}\n`);
  process.exit(1);
});
