import { credentials, Metadata, type ServerWritableStream } from '@grpc/grpc-js';
import { routerv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { readStream } from './grpc-call';
import { CHANNEL_OPTIONS, GrpcServerHandle } from './grpc-server';
import { serveStream } from './server-call';
import { acceptBatches, chatChunkBatching, MAX_STREAM_BATCH } from './stream-batching';

const CHUNKS = chatChunkBatching<routerv1.ChatResponse>();

const chunk = (i: number): routerv1.ChatResponse => ({ chunk: { id: `c${i}`, created: 1, model: 'm', choices: [{ index: 0, delta: { content: `t${i}`, toolCalls: [], extraJson: '' }, logprobsJson: '' }] } });
const decision: routerv1.ChatResponse = { decision: routerv1.RouteDecision.fromPartial({ model: 'm', provider: 'p', deployment: 'd' }) };

/** What the next call's work does, given the call's abort signal. */
type Work = (signal: AbortSignal) => AsyncIterable<routerv1.ChatResponse>;

/** A message's chunk ids, for comparing sequences (a decision reads as 'decision'). */
const ids = (message: routerv1.ChatResponse): string[] => (message.decision ? ['decision'] : message.chunk ? [message.chunk.id] : (message.chunks?.chunks ?? []).map((c) => c.id));

describe('stream batching over a real gRPC server', () => {
  let server: GrpcServerHandle;
  let client: routerv1.RouterServiceClient;
  let work: Work;

  beforeAll(async () => {
    const chat = (call: ServerWritableStream<routerv1.ChatRequest, routerv1.ChatResponse>): void => serveStream(call, (signal) => work(signal), () => undefined, CHUNKS);
    server = await GrpcServerHandle.start('127.0.0.1', 0, [{ definition: routerv1.RouterServiceService, implementation: { chat } }]);
    client = new routerv1.RouterServiceClient(`127.0.0.1:${server.port}`, credentials.createInsecure(), CHANNEL_OPTIONS);
  });

  afterAll(async () => {
    client.close();
    await server.close();
  });

  /** The messages as they crossed the wire. */
  async function wire(metadata: Metadata): Promise<routerv1.ChatResponse[]> {
    const messages: routerv1.ChatResponse[] = [];
    for await (const message of client.chat({}, metadata) as AsyncIterable<routerv1.ChatResponse>) messages.push(message);
    return messages;
  }

  const burst = (n: number): Work =>
    async function* () {
      yield decision;
      for (let i = 0; i < n; i++) yield chunk(i);
    };

  it('sends chunks ready together as batches to a caller that accepts them, and the caller reads the same sequence', async () => {
    work = burst(40);
    const expected = ['decision', ...Array.from({ length: 40 }, (_, i) => `c${i}`)];

    const raw = await wire(acceptBatches(CHUNKS));
    expect(raw.flatMap(ids)).toEqual(expected);
    expect(raw.length).toBeLessThan(10);
    expect(raw.some((m) => (m.chunks?.chunks.length ?? 0) > 1)).toBe(true);
    // A batch never holds a single chunk: one chunk travels as itself.
    expect(raw.filter((m) => m.chunks !== undefined).every((m) => (m.chunks?.chunks.length ?? 0) > 1)).toBe(true);

    const read: routerv1.ChatResponse[] = [];
    for await (const message of readStream(client.chat({}, acceptBatches(CHUNKS)), undefined, CHUNKS)) read.push(message);
    expect(read.map((m) => ids(m)[0])).toEqual(expected);
    expect(read.every((m) => m.chunks === undefined)).toBe(true);
  });

  it('sends one message per chunk to a caller that did not ask for batches (an older caller)', async () => {
    work = burst(40);
    const raw = await wire(new Metadata());
    expect(raw).toHaveLength(41);
    expect(raw.some((m) => m.chunks !== undefined)).toBe(false);
  });

  it(`caps a batch at ${MAX_STREAM_BATCH} chunks`, async () => {
    work = burst(500);
    const raw = await wire(acceptBatches(CHUNKS));
    expect(raw.flatMap(ids)).toEqual(['decision', ...Array.from({ length: 500 }, (_, i) => `c${i}`)]);
    expect(Math.max(...raw.map((m) => m.chunks?.chunks.length ?? 1))).toBeLessThanOrEqual(MAX_STREAM_BATCH);
  });

  it('never holds a chunk back to fill a batch: a paced stream goes one chunk per message', async () => {
    // The work produces each chunk only after the caller has read the one before: a chunk held
    // back for a batch would never arrive, and the test would time out.
    let received = 0;
    let wake: (() => void) | undefined;
    work = async function* () {
      for (let i = 0; i < 5; i++) {
        if (received < i) await new Promise<void>((done) => (wake = done));
        yield chunk(i);
      }
    };
    const raw: routerv1.ChatResponse[] = [];
    for await (const message of client.chat({}, acceptBatches(CHUNKS)) as AsyncIterable<routerv1.ChatResponse>) {
      raw.push(message);
      received += ids(message).length;
      wake?.();
    }
    expect(raw.flatMap(ids)).toEqual(['c0', 'c1', 'c2', 'c3', 'c4']);
    expect(raw.every((m) => m.chunk !== undefined)).toBe(true);
  });

  it("a caller's cancellation mid-burst aborts the work, and what was held is dropped", async () => {
    let aborted: Promise<void> | undefined;
    work = async function* (signal) {
      aborted = new Promise<void>((done) => signal.addEventListener('abort', () => done(), { once: true }));
      for (let i = 0; i < 20; i++) yield chunk(i);
      await aborted;
    };
    const call = client.chat({}, acceptBatches(CHUNKS));
    call.on('error', () => undefined);
    const first = await new Promise<routerv1.ChatResponse>((done) => call.once('data', done));
    expect(ids(first)).toEqual(['c0']);
    call.cancel();
    await aborted;
    // The server still answers the next call normally.
    work = burst(3);
    expect((await wire(acceptBatches(CHUNKS))).flatMap(ids)).toEqual(['decision', 'c0', 'c1', 'c2']);
  });

  it('delivers every chunk sent before a failure, then the failure as its gateway error', async () => {
    work = async function* () {
      yield* burst(30)(new AbortController().signal);
      throw new GatewayError('upstream_error', 'the provider failed mid-stream');
    };
    const read: string[] = [];
    let failure: unknown;
    try {
      for await (const message of readStream(client.chat({}, acceptBatches(CHUNKS)), undefined, CHUNKS)) read.push(...ids(message));
    } catch (error) {
      failure = error;
    }
    expect(read).toEqual(['decision', ...Array.from({ length: 30 }, (_, i) => `c${i}`)]);
    expect(failure).toMatchObject({ kind: 'upstream_error', message: 'the provider failed mid-stream' });
  });
});
