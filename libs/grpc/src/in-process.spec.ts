import { GatewayError } from '@openrouter/errors';
import { callStreamInProcess, callUnaryInProcess, IN_PROCESS_STREAM_AHEAD } from './in-process';

interface Callee {
  open: (signal: AbortSignal) => AsyncGenerator<number>;
  /** How the callee's generator ended: `completed`, `aborted` (its signal), or not yet. */
  outcome: () => 'completed' | 'aborted' | undefined;
}

/** A callee that yields `values`, then waits on `hold` (if given) before finishing. */
function callee(values: number[], hold?: Promise<void>): Callee {
  let outcome: 'completed' | 'aborted' | undefined;
  return {
    outcome: () => outcome,
    open: async function* (signal) {
      try {
        for (const v of values) yield v;
        if (hold) {
          await Promise.race([hold, new Promise<void>((done) => signal.addEventListener('abort', () => done(), { once: true }))]);
        }
      } finally {
        outcome = signal.aborted ? 'aborted' : 'completed';
      }
    },
  };
}

async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const v of stream) out.push(v);
  return out;
}

describe('callStreamInProcess', () => {
  it('delivers every message in order and lets the callee complete', async () => {
    const c = callee([1, 2, 3]);
    expect(await collect(callStreamInProcess(c.open))).toEqual([1, 2, 3]);
    expect(c.outcome()).toBe('completed');
  });

  it('lets a callee that had nothing left to wait for complete when the reader stops after its last message', async () => {
    const c = callee([1, 2]);
    const stream = callStreamInProcess(c.open);
    expect((await stream.next()).value).toBe(1);
    expect((await stream.next()).value).toBe(2);
    await stream.return(undefined);
    expect(c.outcome()).toBe('completed');
  });

  it('aborts a callee still producing when the reader stops early, as a cancelled call', async () => {
    const c = callee([1], new Promise<void>(() => undefined));
    const stream = callStreamInProcess(c.open);
    expect((await stream.next()).value).toBe(1);
    await stream.return(undefined);
    await new Promise((done) => setImmediate(done));
    expect(c.outcome()).toBe('aborted');
  });

  it("aborts the callee when the caller's signal is aborted, and reports the call as cancelled", async () => {
    const c = callee([1], new Promise<void>(() => undefined));
    const caller = new AbortController();
    const open = async function* (signal: AbortSignal): AsyncGenerator<number> {
      yield* c.open(signal);
      throw new GatewayError('upstream_error', 'stopped');
    };
    const stream = callStreamInProcess(open, caller.signal);
    expect((await stream.next()).value).toBe(1);
    caller.abort();
    await expect(stream.next()).rejects.toMatchObject({ kind: 'cancelled' });
    expect(c.outcome()).toBe('aborted');
  });

  it('holds a bounded number of messages for a reader that stops reading, and goes on when it reads again', async () => {
    const size = 64 * 1024;
    const count = 512; // 32 MiB, if the callee were read to the end
    let produced = 0;
    let completed = false;
    const open = async function* (): AsyncGenerator<Buffer> {
      for (let i = 0; i < count; i++) {
        produced++;
        yield Buffer.alloc(size, i % 256);
      }
      completed = true;
    };
    const before = process.memoryUsage().arrayBuffers;
    const stream = callStreamInProcess(open);
    expect((await stream.next()).value?.[0]).toBe(0);
    // The callee and the queue run on promises alone: one turn of the loop lets them do all they can.
    await new Promise((done) => setImmediate(done));
    expect(produced * size).toBeLessThanOrEqual((IN_PROCESS_STREAM_AHEAD + 2) * size);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(4 * 1024 * 1024);
    expect(completed).toBe(false);

    let read = 1;
    for await (const message of stream) expect(message[0]).toBe(read++ % 256);
    expect(read).toBe(count);
    expect(completed).toBe(true);
  });

  it('delivers the messages sent before a failure, then the failure as it would cross the wire', async () => {
    const open = async function* (): AsyncGenerator<number> {
      yield 1;
      throw new GatewayError('rate_limited', 'slow down', { retryAfterMs: 1500, provider: 'sim' });
    };
    const stream = callStreamInProcess(open);
    expect((await stream.next()).value).toBe(1);
    const error: unknown = await stream.next().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GatewayError);
    expect(error).toMatchObject({ kind: 'rate_limited', message: 'slow down', retryAfterMs: 1500, provider: 'sim', retryable: true });
  });

  it('turns an unexpected error into an internal one, without its details', async () => {
    const open = async function* (): AsyncGenerator<number> {
      yield* [];
      throw new TypeError('secret internals');
    };
    const error: unknown = await collect(callStreamInProcess(open)).catch((e: unknown) => e);
    expect(error).toMatchObject({ kind: 'internal' });
    expect((error as Error).message).not.toContain('secret internals');
  });
});

describe('callUnaryInProcess', () => {
  it('returns the result, and maps a failure as the wire would', async () => {
    expect(await callUnaryInProcess(async () => 42)).toBe(42);
    expect(await callUnaryInProcess(() => 'sync')).toBe('sync');
    await expect(callUnaryInProcess(async () => Promise.reject(new GatewayError('not_found', 'no such model', { param: 'model' })))).rejects.toMatchObject({
      kind: 'not_found',
      message: 'no such model',
      param: 'model',
    });
  });

  it("passes the caller's abort on to the callee and reports the call as cancelled", async () => {
    const caller = new AbortController();
    let calleeSignal: AbortSignal | undefined;
    const call = callUnaryInProcess(
      (signal) =>
        new Promise<number>((_, reject) => {
          calleeSignal = signal;
          signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
        }),
      caller.signal,
    );
    caller.abort();
    await expect(call).rejects.toMatchObject({ kind: 'cancelled' });
    expect(calleeSignal?.aborted).toBe(true);
  });
});

describe('a call asked for under a signal aborted already', () => {
  it('runs no callee, unary or stream, and fails as cancelled (as over the wire)', async () => {
    let ran = 0;
    await expect(callUnaryInProcess(async () => ++ran, AbortSignal.abort())).rejects.toMatchObject({ kind: 'cancelled' });
    const stream = callStreamInProcess(async function* () {
      ran++;
      yield 1;
    }, AbortSignal.abort());
    await expect(stream.next()).rejects.toMatchObject({ kind: 'cancelled' });
    expect(ran).toBe(0);
  });
});
