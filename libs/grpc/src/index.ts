export { ERROR_TRAILER, fromGrpcError, toGrpcStatus } from './grpc-errors';
export { CHANNEL_OPTIONS, DEFAULT_SHUTDOWN_GRACE_MS, GrpcServerHandle } from './grpc-server';
export type { GrpcServiceBinding } from './grpc-server';
export { callUnary, readStream } from './grpc-call';
export type { CallBounds } from './grpc-call';
export { callStreamInProcess, callUnaryInProcess } from './in-process';
export { serveStream, serveUnary } from './server-call';
export { acceptBatches, acceptsBatches, chatChunkBatching, MAX_STREAM_BATCH, STREAM_BATCHES_HEADER } from './stream-batching';
export type { StreamBatching } from './stream-batching';
