import { credentials, makeGenericClientConstructor, Metadata, type Client, type ClientReadableStream, type ServiceDefinition, type ServerUnaryCall, type ServerWritableStream } from '@grpc/grpc-js';
import { createServer } from 'node:net';
import { GatewayError } from '@openrouter/errors';
import { callUnary, readStream } from './grpc-call';
import { CHANNEL_OPTIONS, GrpcServerHandle } from './grpc-server';

const bytes = { serialize: (b: Buffer): Buffer => b, deserialize: (b: Buffer): Buffer => b };
const definition: ServiceDefinition = {
  stream: { path: '/test.Calls/Stream', requestStream: false, responseStream: true, requestSerialize: bytes.serialize, requestDeserialize: bytes.deserialize, responseSerialize: bytes.serialize, responseDeserialize: bytes.deserialize },
  unary: { path: '/test.Calls/Unary', requestStream: false, responseStream: false, requestSerialize: bytes.serialize, requestDeserialize: bytes.deserialize, responseSerialize: bytes.serialize, responseDeserialize: bytes.deserialize },
};
const ClientConstructor = makeGenericClientConstructor(definition, 'Calls');

type TestClient = Client & {
  unary: Parameters<typeof callUnary<Buffer, Buffer>>[0];
  stream: (request: Buffer) => ClientReadableStream<Buffer>;
};

/**
 * A bound on a first message the server sends at once: it must arrive within it on a loaded
 * machine, where a stall of seconds would otherwise let the timer fire before the message is read.
 */
const FIRST_MESSAGE_MS = 5_000;
/** The pause before a late message: past the bound (the client's timer, started first in this same process, fires first). */
const LATE_MESSAGE_MS = FIRST_MESSAGE_MS + 1_000;

function clientOf(port: number, host = '127.0.0.1'): TestClient {
  return new ClientConstructor(`${host}:${port}`, credentials.createInsecure(), CHANNEL_OPTIONS) as unknown as TestClient;
}

/** The options the channel of `client` was built with (grpc-js keeps them on its internal channel). */
function channelOptionsOf(client: Client): Record<string, unknown> {
  return (client.getChannel() as unknown as { internalChannel: { getOptions(): Record<string, unknown> } }).internalChannel.getOptions();
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (error: unknown) => error,
  );
}

describe('deadlines of gRPC calls, against a server that never answers', () => {
  let server: GrpcServerHandle;
  let client: TestClient;
  /** Messages the stream sends before it goes silent for good. */
  let sendBeforeSilence = 0;
  /** When set, the stream sends one more message this long after the first ones, then ends. */
  let lateMessageAfterMs = 0;
  const held: Array<ServerUnaryCall<Buffer, Buffer> | ServerWritableStream<Buffer, Buffer>> = [];

  beforeAll(async () => {
    server = await GrpcServerHandle.start('127.0.0.1', 0, [
      {
        definition,
        implementation: {
          unary: (call: ServerUnaryCall<Buffer, Buffer>) => void held.push(call),
          stream: (call: ServerWritableStream<Buffer, Buffer>) => {
            held.push(call);
            for (let i = 0; i < sendBeforeSilence; i++) call.write(Buffer.from([i]));
            // A provider's pause mid-answer, longer than the bound on the first message.
            if (lateMessageAfterMs > 0) {
              setTimeout(() => {
                call.write(Buffer.from([sendBeforeSilence]));
                call.end();
              }, lateMessageAfterMs);
            }
          },
        },
      },
    ]);
    client = clientOf(server.port);
  });
  afterAll(async () => {
    client.close();
    await server.close(0);
  });

  it('fails a unary call at its deadline as a timeout naming the peer', async () => {
    const error = await rejection(callUnary(client.unary.bind(client), Buffer.from('x'), new Metadata(), undefined, { peer: 'router', timeoutMs: 300 }));
    expect(error).toBeInstanceOf(GatewayError);
    expect(error).toMatchObject({ kind: 'timeout', message: 'The router did not answer within 300 ms.' });
  });

  it('fails a stream whose first message does not arrive in time', async () => {
    sendBeforeSilence = 0;
    const read = async (): Promise<void> => {
      for await (const _ of readStream(client.stream(Buffer.from('x')), undefined, undefined, { peer: 'router', timeoutMs: 300 })) void _;
    };
    const error = await rejection(read());
    expect(error).toMatchObject({ kind: 'timeout', message: 'The router did not answer within 300 ms.' });
  });

  it('leaves a stream that has begun alone: the bound is on the first message only', async () => {
    sendBeforeSilence = 1;
    lateMessageAfterMs = LATE_MESSAGE_MS;
    const received: number[] = [];
    try {
      for await (const message of readStream(client.stream(Buffer.from('x')), undefined, undefined, { peer: 'router', timeoutMs: FIRST_MESSAGE_MS })) received.push(message[0] ?? -1);
    } finally {
      lateMessageAfterMs = 0;
    }
    // The second message came after the bound (the client's timer, started first in this same
    // process, fired before it), and the stream ended as the server ended it.
    expect(received).toEqual([0, 1]);
  });

  it('keeps the bound running past messages that are no answer (progress notices), and ends it at the first answer', async () => {
    // Message 0 is a notice: the server then goes silent, and the call fails at the bound.
    sendBeforeSilence = 1;
    const notices: number[] = [];
    const read = async (): Promise<void> => {
      for await (const message of readStream(client.stream(Buffer.from('x')), undefined, undefined, { peer: 'router', timeoutMs: FIRST_MESSAGE_MS, answers: (m) => m[0] !== 0 })) notices.push(message[0] ?? -1);
    };
    expect(await rejection(read())).toMatchObject({ kind: 'timeout', message: `The router did not answer within ${FIRST_MESSAGE_MS} ms.` });
    expect(notices).toEqual([0]);

    // Message 1, an answer, comes within the bound; nothing bounds the rest.
    sendBeforeSilence = 2;
    lateMessageAfterMs = LATE_MESSAGE_MS;
    const received: number[] = [];
    try {
      for await (const message of readStream(client.stream(Buffer.from('x')), undefined, undefined, { peer: 'router', timeoutMs: FIRST_MESSAGE_MS, answers: (m) => m[0] !== 0 })) received.push(message[0] ?? -1);
    } finally {
      lateMessageAfterMs = 0;
    }
    expect(received).toEqual([0, 1, 2]);
  });
});

describe('reconnecting to a peer that restarts', () => {
  it('keeps trying a peer that is down, with its backoff bounded, and calls it again once it is back', async () => {
    const first = await GrpcServerHandle.start('127.0.0.1', 0, [{ definition, implementation: { unary: (_call: unknown, cb: (e: null, r: Buffer) => void) => cb(null, Buffer.from('ok')), stream: () => undefined } }]);
    const port = first.port;
    // A name, as peers are addressed in the distributed configuration (`router:50051`).
    const client = clientOf(port, 'localhost');
    // The channel backs off from 1 s to at most 5 s between attempts, not grpc-js's default of up
    // to 120 s: the channel itself was built with the bound, not just the constant declaring it.
    expect(channelOptionsOf(client)).toMatchObject({ 'grpc.initial_reconnect_backoff_ms': 1_000, 'grpc.max_reconnect_backoff_ms': 5_000 });
    const call = (timeoutMs = 2_000): Promise<unknown> => callUnary(client.unary.bind(client), Buffer.from('x'), new Metadata(), undefined, { timeoutMs });
    try {
      // The first call connects the channel too: a deadline far above that on a loaded machine.
      await expect(call(10_000)).resolves.toEqual(Buffer.from('ok'));
      await first.close(0);

      // The peer is down: its port takes connections and drops them, so each attempt the channel
      // makes is seen. It is called all along, as ingress calls a router that is away: the channel
      // keeps attempting (the bound on the gaps is the channel's option, checked above).
      let attempts = 0;
      const down = createServer((socket) => {
        attempts++;
        socket.destroy();
      });
      await new Promise<void>((resolve, reject) => down.once('error', reject).listen(port, '127.0.0.1', resolve));
      const downSince = Date.now();
      try {
        while (attempts < 7 && Date.now() - downSince < 40_000) {
          await rejection(call());
          await new Promise((resolve) => setTimeout(resolve, 250));
        }
      } finally {
        await new Promise<void>((resolve) => down.close(() => resolve()));
      }
      expect(attempts).toBeGreaterThanOrEqual(7);

      const second = await GrpcServerHandle.start('127.0.0.1', port, [{ definition, implementation: { unary: (_call: unknown, cb: (e: null, r: Buffer) => void) => cb(null, Buffer.from('back')), stream: () => undefined } }]);
      try {
        let answer: unknown;
        while (!(answer instanceof Buffer)) {
          answer = await call().catch((error: unknown) => error);
          if (!(answer instanceof Buffer)) await new Promise((resolve) => setTimeout(resolve, 50));
        }
        expect(answer).toEqual(Buffer.from('back'));
      } finally {
        await second.close(0);
      }
    } finally {
      client.close();
    }
  }, 90_000);
});
