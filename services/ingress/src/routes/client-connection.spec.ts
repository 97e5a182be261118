import { EventEmitter, getEventListeners } from 'node:events';
import type { ServerResponse } from 'node:http';
import type { FastifyReply } from 'fastify';
import { callSignal, cutWhenStalled } from './client-connection';

/** A response as `cutWhenStalled` sees it: whether it waits for its client, and what the OS still holds of its write. */
class FakeResponse extends EventEmitter {
  writableNeedDrain = false;
  destroyed = false;
  readonly socket = { _handle: { writeQueueSize: 0 } };

  destroy(): void {
    this.destroyed = true;
    this.emit('close');
  }
}

describe('cutWhenStalled', () => {
  const STALL_MS = 1_000;
  let response: FakeResponse;
  beforeEach(() => {
    jest.useFakeTimers();
    response = new FakeResponse();
    cutWhenStalled(response as unknown as ServerResponse, STALL_MS);
  });
  afterEach(() => jest.useRealTimers());

  it('cuts a response that waited for its client a whole period without the client taking any of it', () => {
    response.writableNeedDrain = true;
    response.socket._handle.writeQueueSize = 4096;
    jest.advanceTimersByTime(STALL_MS);
    expect(response.destroyed).toBe(false);
    jest.advanceTimersByTime(STALL_MS);
    expect(response.destroyed).toBe(true);
  });

  it('keeps an answer that waits for its provider, however long', () => {
    jest.advanceTimersByTime(100 * STALL_MS);
    expect(response.destroyed).toBe(false);
  });

  it('keeps a client that reads slowly: the OS takes more of the write, or the response drains', () => {
    response.writableNeedDrain = true;
    response.socket._handle.writeQueueSize = 4096;
    for (let i = 0; i < 10; i++) {
      jest.advanceTimersByTime(STALL_MS);
      if (i % 2 === 0) response.socket._handle.writeQueueSize -= 100;
      else response.emit('drain');
    }
    expect(response.destroyed).toBe(false);
  });

  it('stops checking once the response closed', () => {
    response.emit('close');
    expect(jest.getTimerCount()).toBe(0);
    expect(response.listenerCount('drain')).toBe(0);
  });
});

/** A reply as `callSignal` sees it: its response's state, and the server's shutdown signal. */
class FakeReply {
  readonly raw = Object.assign(new EventEmitter(), { destroyed: false, closed: false, writableFinished: false });
  readonly request: { shutdownSignal: AbortSignal };

  /** `grace`: the server's, shared by its requests. */
  constructor(private readonly grace = new AbortController()) {
    this.request = { shutdownSignal: grace.signal };
  }

  /** What the server's shutdown signal holds for requests: its listeners, and the signals that follow it. */
  heldByShutdown(): number {
    const signal = this.grace.signal;
    const dependants = Object.getOwnPropertySymbols(signal).find((s) => s.description === 'kDependantSignals');
    const followers = dependants ? ((signal as unknown as Record<symbol, Set<unknown> | undefined>)[dependants]?.size ?? 0) : 0;
    return getEventListeners(signal, 'abort').length + followers;
  }

  clientLeaves(): void {
    this.raw.destroyed = this.raw.closed = true;
    this.raw.emit('close');
  }

  shutdown(): void {
    this.grace.abort(new Error('shutting down'));
  }

  get reply(): FastifyReply {
    return this as unknown as FastifyReply;
  }
}

describe('callSignal', () => {
  it('cancels a whole answer when its client leaves, by default', () => {
    const fake = new FakeReply();
    const { signal } = callSignal(fake.reply, false, 'cancel');
    fake.clientLeaves();
    expect(signal.aborted).toBe(true);
  });

  it('lets a whole answer run on without its client with `complete`, until the server shuts down', () => {
    const fake = new FakeReply();
    const { signal } = callSignal(fake.reply, false, 'complete');
    fake.clientLeaves();
    expect(signal.aborted).toBe(false);
    fake.shutdown();
    expect(signal.aborted).toBe(true);
  });

  it('cancels a stream when its client leaves, even with `complete`', () => {
    const fake = new FakeReply();
    const { signal } = callSignal(fake.reply, true, 'complete');
    fake.clientLeaves();
    expect(signal.aborted).toBe(true);
  });

  it('holds nothing on the server\'s shutdown signal once a whole answer\'s call is over, with `complete`, answered or left', () => {
    const grace = new AbortController();
    const server = new FakeReply(grace);
    for (let i = 0; i < 3; i++) {
      const fake = new FakeReply(grace);
      const call = callSignal(fake.reply, false, 'complete');
      expect(server.heldByShutdown()).toBe(1);
      // The second request's client leaves while its call runs on.
      if (i === 1) fake.clientLeaves();
      call.release();
      expect(call.signal.aborted).toBe(false);
    }
    expect(server.heldByShutdown()).toBe(0);
  });

  it('passes the shutdown\'s reason on to a whole answer\'s call with `complete`, also when the shutdown came first', () => {
    const fake = new FakeReply();
    const { signal } = callSignal(fake.reply, false, 'complete');
    fake.shutdown();
    expect(signal.reason).toEqual(new Error('shutting down'));
    expect(callSignal(fake.reply, false, 'complete').signal.reason).toEqual(new Error('shutting down'));
  });

  it('is aborted at once for a client that left before the call, with `complete`: no call is made for nobody', () => {
    const fake = new FakeReply();
    fake.clientLeaves();
    expect(callSignal(fake.reply, false, 'complete').signal.aborted).toBe(true);
  });
});
