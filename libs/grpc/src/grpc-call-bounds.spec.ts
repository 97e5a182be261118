import { credentials, Metadata, type ServerUnaryCall, type ServerWritableStream, type sendUnaryData } from '@grpc/grpc-js';
import { callUnary, readStream } from './grpc-call';
import { CHANNEL_OPTIONS, GrpcServerHandle } from './grpc-server';
import { TEST_CALLS, TestCalls, type TestCallsClient } from './test-calls.testing';

/** 2^31 − 1 ms: the longest a Node.js timer waits (a longer one fires after 1 ms). */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** The ingress's wait for a whole answer with `routing.retry.completionTimeoutMs` at its maximum. */
const PAST_MAX_TIMER_MS = MAX_TIMER_MS + 75_000;

/**
 * Bounds at and past the longest timer: the call must wait (for all practical purposes, without
 * limit), not be cut after 1 ms by a timer Node.js took as 1 ms, on either side of the call.
 */
describe('gRPC call bounds as long as a timer can wait, or longer', () => {
  let server: GrpcServerHandle;
  let client: TestCallsClient;
  /** Calls the server holds, resolved as each one arrives. */
  let arrived: (call: ServerWritableStream<Buffer, Buffer> | { call: ServerUnaryCall<Buffer, Buffer>; answer: sendUnaryData<Buffer> }) => void = () => undefined;
  const nextCall = <C>(): Promise<C> => new Promise<C>((resolve) => (arrived = resolve as (call: unknown) => void));

  beforeAll(async () => {
    server = await GrpcServerHandle.start('127.0.0.1', 0, [
      {
        definition: TEST_CALLS,
        implementation: {
          stream: (call: ServerWritableStream<Buffer, Buffer>) => arrived(call),
          unary: (call: ServerUnaryCall<Buffer, Buffer>, answer: sendUnaryData<Buffer>) => arrived({ call, answer }),
        },
      },
    ]);
    client = new TestCalls(`127.0.0.1:${server.port}`, credentials.createInsecure(), CHANNEL_OPTIONS) as unknown as TestCallsClient;
  });
  afterAll(async () => {
    client.close();
    await server.close(0);
  });

  /** Lets a timer Node.js took as 1 ms, armed before this, fire first: timers fire in the order they expire. */
  const pastOneMs = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 1));

  it.each([MAX_TIMER_MS, PAST_MAX_TIMER_MS])('reads a stream whose first message comes late, with a bound of %d ms', async (timeoutMs) => {
    const held = nextCall<ServerWritableStream<Buffer, Buffer>>();
    const reading = readStream(() => client.stream(Buffer.from('x')), undefined, undefined, { peer: 'router', timeoutMs })[Symbol.asyncIterator]();
    const first = reading.next();
    const call = await held;
    await pastOneMs();
    call.write(Buffer.from('late'));
    call.end();
    await expect(first).resolves.toEqual({ done: false, value: Buffer.from('late') });
    await expect(reading.next()).resolves.toMatchObject({ done: true });
  });

  it.each([MAX_TIMER_MS, PAST_MAX_TIMER_MS])('answers a unary call that takes a while, with a deadline of %d ms (the server keeps it too)', async (timeoutMs) => {
    const held = nextCall<{ call: ServerUnaryCall<Buffer, Buffer>; answer: sendUnaryData<Buffer> }>();
    const answer = callUnary(client.unary.bind(client), Buffer.from('x'), new Metadata(), undefined, { peer: 'router', timeoutMs });
    const { call, answer: send } = await held;
    await pastOneMs();
    // The server's deadline (from the call's grpc-timeout header) has not passed.
    expect(call.getDeadline()).not.toBeLessThan(Date.now());
    send(null, Buffer.from('late'));
    await expect(answer).resolves.toEqual(Buffer.from('late'));
  });
});

describe('a gRPC call asked for under a signal aborted already', () => {
  let server: GrpcServerHandle;
  let client: TestCallsClient;
  let calls = 0;
  beforeAll(async () => {
    server = await GrpcServerHandle.start('127.0.0.1', 0, [
      {
        definition: TEST_CALLS,
        implementation: {
          stream: (call: ServerWritableStream<Buffer, Buffer>) => {
            calls++;
            call.end();
          },
          unary: (_call: ServerUnaryCall<Buffer, Buffer>, answer: sendUnaryData<Buffer>) => {
            calls++;
            answer(null, Buffer.from('ok'));
          },
        },
      },
    ]);
    client = new TestCalls(`127.0.0.1:${server.port}`, credentials.createInsecure(), CHANNEL_OPTIONS) as unknown as TestCallsClient;
  });
  afterAll(async () => {
    client.close();
    await server.close(0);
  });

  it('is never sent, unary or stream, and fails as cancelled: the abort came before any listener could hear it', async () => {
    await expect(callUnary(client.unary.bind(client), Buffer.from('x'), new Metadata(), AbortSignal.abort())).rejects.toMatchObject({ kind: 'cancelled' });
    await expect(readStream(() => client.stream(Buffer.from('x')), AbortSignal.abort())[Symbol.asyncIterator]().next()).rejects.toMatchObject({ kind: 'cancelled' });
    // A call under a live signal reaches the server: the count above is of calls that arrived.
    await expect(callUnary(client.unary.bind(client), Buffer.from('x'), new Metadata(), new AbortController().signal)).resolves.toEqual(Buffer.from('ok'));
    expect(calls).toBe(1);
  });
});
