import { makeGenericClientConstructor, type Client, type ClientReadableStream, type Metadata, type ServiceDefinition } from '@grpc/grpc-js';
import type { callUnary } from './grpc-call';

const bytes = { serialize: (b: Buffer): Buffer => b, deserialize: (b: Buffer): Buffer => b };

/** A gRPC service of raw bytes for the transport specs: `Unary` and server-streaming `Stream`. */
export const TEST_CALLS: ServiceDefinition = {
  stream: { path: '/test.Calls/Stream', requestStream: false, responseStream: true, requestSerialize: bytes.serialize, requestDeserialize: bytes.deserialize, responseSerialize: bytes.serialize, responseDeserialize: bytes.deserialize },
  unary: { path: '/test.Calls/Unary', requestStream: false, responseStream: false, requestSerialize: bytes.serialize, requestDeserialize: bytes.deserialize, responseSerialize: bytes.serialize, responseDeserialize: bytes.deserialize },
};

export const TestCalls = makeGenericClientConstructor(TEST_CALLS, 'Calls');

export type TestCallsClient = Client & { unary: Parameters<typeof callUnary<Buffer, Buffer>>[0]; stream: (request: Buffer, metadata?: Metadata) => ClientReadableStream<Buffer> };
