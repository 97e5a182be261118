import { credentials, makeGenericClientConstructor, type Client, type ServiceDefinition, type ServiceError } from '@grpc/grpc-js';
import { GatewayError } from '@openrouter/errors';
import { fromGrpcError, STATUS_MESSAGE_MAX } from './grpc-errors';
import { GrpcServerHandle } from './grpc-server';
import { serveStream, serveUnary } from './server-call';

const bytes = { serialize: (b: Buffer): Buffer => b, deserialize: (b: Buffer): Buffer => b };
const definition: ServiceDefinition = {
  stream: { path: '/test.Calls/Stream', requestStream: false, responseStream: true, requestSerialize: bytes.serialize, requestDeserialize: bytes.deserialize, responseSerialize: bytes.serialize, responseDeserialize: bytes.deserialize },
  unary: { path: '/test.Calls/Unary', requestStream: false, responseStream: false, requestSerialize: bytes.serialize, requestDeserialize: bytes.deserialize, responseSerialize: bytes.serialize, responseDeserialize: bytes.deserialize },
};

function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

type CallMethod = (...args: unknown[]) => unknown;

/** What the server saw of one call: the work's signal, and grpc-js's 'cancelled' (its clean-up after any answer). */
interface Seen {
  signal: Promise<AbortSignal>;
  cancelledEvent: Promise<void>;
}

describe('serveStream and serveUnary over a real gRPC server', () => {
  let server: GrpcServerHandle;
  let client: Client & { stream: CallMethod; unary: CallMethod };
  let next: { signal: ReturnType<typeof deferred<AbortSignal>>; cancelled: ReturnType<typeof deferred<void>> };
  /** How many messages the stream sends before it waits for its signal (undefined: finish). */
  let holdAfter: number | undefined;
  let unaryOutcome: () => Promise<Buffer>;

  const expectCall = (): Seen => {
    next = { signal: deferred<AbortSignal>(), cancelled: deferred<void>() };
    return { signal: next.signal.promise, cancelledEvent: next.cancelled.promise };
  };

  beforeAll(async () => {
    server = await GrpcServerHandle.start('127.0.0.1', 0, [
      {
        definition,
        implementation: {
          stream: (call: Parameters<typeof serveStream<Buffer, Buffer>>[0]) => {
            const seen = next;
            call.once('cancelled', () => seen.cancelled.resolve(undefined));
            serveStream(
              call,
              async function* (signal) {
                seen.signal.resolve(signal);
                for (let i = 0; i < 3; i++) {
                  if (holdAfter !== undefined && i === holdAfter) await new Promise((done) => signal.addEventListener('abort', done, { once: true }));
                  yield Buffer.from([i]);
                }
              },
              () => undefined,
            );
          },
          unary: (call: Parameters<typeof serveUnary<Buffer, Buffer>>[0], callback: Parameters<typeof serveUnary<Buffer, Buffer>>[1]) => {
            const seen = next;
            call.once('cancelled', () => seen.cancelled.resolve(undefined));
            serveUnary(call, callback, (signal) => {
              seen.signal.resolve(signal);
              return unaryOutcome();
            });
          },
        },
      },
    ]);
    const Ctor = makeGenericClientConstructor(definition, 'Calls');
    client = new Ctor(`127.0.0.1:${server.port}`, credentials.createInsecure()) as unknown as typeof client;
  });

  afterAll(async () => {
    client.close();
    await server.close();
  });

  it('a stream read to its end is not aborted by the clean-up that follows it', async () => {
    holdAfter = undefined;
    const seen = expectCall();
    const received: number[] = [];
    const call = client.stream(Buffer.alloc(0)) as NodeJS.ReadableStream;
    for await (const chunk of call) received.push((chunk as Buffer)[0] ?? -1);
    expect(received).toEqual([0, 1, 2]);
    await seen.cancelledEvent;
    expect((await seen.signal).aborted).toBe(false);
  });

  it("a client's cancellation mid-stream aborts the work", async () => {
    holdAfter = 1;
    const seen = expectCall();
    const call = client.stream(Buffer.alloc(0)) as NodeJS.ReadableStream & { cancel(): void };
    call.on('error', () => undefined);
    await new Promise((done) => call.once('data', done));
    call.cancel();
    const signal = await seen.signal;
    if (!signal.aborted) await new Promise((done) => signal.addEventListener('abort', done, { once: true }));
    expect(signal.aborted).toBe(true);
  });

  it('a unary answer is not aborted afterwards, and an error arrives as its gateway error', async () => {
    unaryOutcome = () => Promise.resolve(Buffer.from('ok'));
    let seen = expectCall();
    const answer = await new Promise<Buffer>((resolve, reject) => client.unary(Buffer.alloc(0), (error: ServiceError | null, value: Buffer) => (error ? reject(error) : resolve(value))));
    expect(answer.toString()).toBe('ok');
    await seen.cancelledEvent;
    expect((await seen.signal).aborted).toBe(false);

    unaryOutcome = () => Promise.reject(new GatewayError('not_found', 'no such model'));
    seen = expectCall();
    const failure = await new Promise<unknown>((resolve) => client.unary(Buffer.alloc(0), (error: ServiceError | null) => resolve(error)));
    expect(fromGrpcError(failure)).toMatchObject({ kind: 'not_found', message: 'no such model' });
    await seen.cancelledEvent;
    expect((await seen.signal).aborted).toBe(false);
  });

  it('delivers an error quoting a huge client text, cut short, and the connection carries the next call', async () => {
    // 12,000 CJK characters (a model name a client sent, quoted back): whole, the status's
    // trailers passed what HTTP/2 carries, the error never arrived and the connection stalled.
    const quoted = '界'.repeat(12_000);
    unaryOutcome = () => Promise.reject(new GatewayError('not_found', `The model \`${quoted}\` does not exist.`, { param: 'model', code: 'model_not_found' }));
    expectCall();
    const failure = fromGrpcError(await new Promise<unknown>((resolve) => client.unary(Buffer.alloc(0), (error: ServiceError | null) => resolve(error))));
    expect(failure).toMatchObject({ kind: 'not_found', param: 'model', code: 'model_not_found' });
    expect(failure.message.startsWith('The model `界界')).toBe(true);
    expect(failure.message.endsWith('…')).toBe(true);
    expect([...failure.message]).toHaveLength(STATUS_MESSAGE_MAX);
    unaryOutcome = () => Promise.resolve(Buffer.from('next'));
    expectCall();
    const answer = await new Promise<Buffer>((resolve, reject) => client.unary(Buffer.alloc(0), (error: ServiceError | null, value: Buffer) => (error ? reject(error) : resolve(value))));
    expect(answer.toString()).toBe('next');
  });
});
