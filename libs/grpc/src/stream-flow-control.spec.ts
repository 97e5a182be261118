import { credentials, type ServerWritableStream } from '@grpc/grpc-js';
import { readStream } from './grpc-call';
import { CHANNEL_OPTIONS, GrpcServerHandle } from './grpc-server';
import { serveStream } from './server-call';
import { TEST_CALLS, TestCalls, type TestCallsClient } from './test-calls.testing';

const MESSAGE_BYTES = 64 * 1024;
/** 32 MiB: what would be held if nothing slowed the producer down. */
const MESSAGES = 512;

/**
 * Two hops, as a streamed answer travels: a producer (the adapter reading its provider) served to a
 * relay (the router), which reads it and serves it on to the caller (the ingress). A caller that
 * stops reading must pause the producer, not have the answer piled up in the relay or the producer.
 */
describe('flow control of a server stream across two hops', () => {
  let producer: GrpcServerHandle;
  let relay: GrpcServerHandle;
  let toProducer: TestCallsClient;
  let toRelay: TestCallsClient;
  let produced = 0;
  let completed: Promise<void>;
  let complete: () => void;
  /** Resolves once the producer's server waits for its caller to take what it wrote. */
  let producerWaits: Promise<void>;
  let waiting: () => void;

  beforeAll(async () => {
    producer = await GrpcServerHandle.start('127.0.0.1', 0, [
      {
        definition: TEST_CALLS,
        implementation: {
          stream: (call: ServerWritableStream<Buffer, Buffer>) => {
            call.on('newListener', (event) => event === 'drain' && waiting());
            serveStream(
              call,
              async function* () {
                for (let i = 0; i < MESSAGES; i++) {
                  produced += 1;
                  yield Buffer.alloc(MESSAGE_BYTES, i % 256);
                }
                complete();
              },
              () => undefined,
            );
          },
        },
      },
    ]);
    toProducer = new TestCalls(`127.0.0.1:${producer.port}`, credentials.createInsecure(), CHANNEL_OPTIONS) as unknown as TestCallsClient;
    relay = await GrpcServerHandle.start('127.0.0.1', 0, [
      {
        definition: TEST_CALLS,
        implementation: {
          stream: (call: ServerWritableStream<Buffer, Buffer>) => serveStream(call, (signal) => readStream(() => toProducer.stream(call.request), signal), () => undefined),
        },
      },
    ]);
    toRelay = new TestCalls(`127.0.0.1:${relay.port}`, credentials.createInsecure(), CHANNEL_OPTIONS) as unknown as TestCallsClient;
  });

  afterAll(async () => {
    toRelay.close();
    toProducer.close();
    await relay.close();
    await producer.close();
  });

  it('pauses the producer while the caller does not read, and delivers everything once it reads again', async () => {
    completed = new Promise((resolve) => (complete = resolve));
    producerWaits = new Promise((resolve) => (waiting = resolve));
    const before = process.memoryUsage().arrayBuffers;
    const stream = readStream(() => toRelay.stream(Buffer.alloc(0)));
    expect((await stream.next()).value?.[0]).toBe(0);

    // The caller reads nothing more: either the producer is made to wait, or it runs to its end.
    await Promise.race([producerWaits, completed]);
    expect(produced * MESSAGE_BYTES).toBeLessThan(8 * 1024 * 1024);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 * 1024 * 1024);

    let read = 1;
    for await (const message of stream) expect(message[0]).toBe(read++ % 256);
    expect(read).toBe(MESSAGES);
    await completed;
  });
});
