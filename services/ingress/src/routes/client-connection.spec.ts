import { EventEmitter, getEventListeners, once } from 'node:events';
import { createServer, get, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyReply } from 'fastify';
import { callSignal, cutWhenStalled, cutWhenWholeAnswerStalls, deliveredWhole } from './client-connection';

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

/** A whole answer's response as `cutWhenWholeAnswerStalls` sees it: sent (ended), written (finished), and what the OS still holds of the write. */
class FakeWholeResponse extends EventEmitter {
  writableNeedDrain = false;
  writableEnded = false;
  writableFinished = false;
  destroyed = false;
  readonly socket = { writableLength: 0, _handle: { writeQueueSize: 0 } };

  /** `reply.send` of an answer the OS takes only `taken` bytes of at once. */
  send(size: number, taken: number): void {
    this.writableEnded = true;
    this.socket.writableLength = size;
    this.socket._handle.writeQueueSize = size - taken;
  }

  written(): void {
    this.writableFinished = true;
    this.socket.writableLength = this.socket._handle.writeQueueSize = 0;
    this.emit('finish');
  }

  destroy(): void {
    this.destroyed = true;
    this.emit('close');
  }
}

describe('cutWhenWholeAnswerStalls', () => {
  const STALL_MS = 1_000;
  let response: FakeWholeResponse;
  beforeEach(() => {
    jest.useFakeTimers();
    response = new FakeWholeResponse();
    cutWhenWholeAnswerStalls(response as unknown as ServerResponse, STALL_MS);
  });
  afterEach(() => jest.useRealTimers());

  it('cuts an answer whose client took none of it over a whole period while it was being written', () => {
    response.send(8 << 20, 4 << 20);
    jest.advanceTimersByTime(STALL_MS);
    expect(response.destroyed).toBe(false);
    jest.advanceTimersByTime(STALL_MS);
    expect(response.destroyed).toBe(true);
  });

  it('does not count the time the answer took to come (it is watched from the send)', () => {
    jest.advanceTimersByTime(100 * STALL_MS);
    response.send(8 << 20, 8 << 20);
    response.written();
    expect(response.destroyed).toBe(false);
  });

  it('keeps a client that reads slowly: the OS takes more of the write each period', () => {
    response.send(8 << 20, 4 << 20);
    for (let i = 0; i < 10; i++) {
      jest.advanceTimersByTime(STALL_MS);
      response.socket._handle.writeQueueSize -= 100;
    }
    expect(response.destroyed).toBe(false);
  });

  it('stops checking once the answer is written, the connection kept for the next request', () => {
    response.send(1024, 1024);
    response.written();
    expect(jest.getTimerCount()).toBe(0);
    expect(response.listenerCount('drain') + response.listenerCount('close') + response.listenerCount('finish')).toBe(0);
  });
});

describe('deliveredWhole', () => {
  let server: Server | undefined;
  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
  });

  /** What `deliveredWhole` says once the response to a GET has closed, the response given `answer` to write. */
  async function deliveredOnClose(answer: (response: ServerResponse) => void): Promise<boolean> {
    let said!: (delivered: boolean) => void;
    const outcome = new Promise<boolean>((resolve) => (said = resolve));
    server = createServer((_request, response) => {
      const delivered = deliveredWhole(response);
      response.once('close', () => said(delivered()));
      answer(response);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    get(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, (response) => response.resume()).on('error', () => undefined);
    return outcome;
  }

  it('says an answer its client read whole was delivered', async () => {
    expect(await deliveredOnClose((response) => response.end(Buffer.alloc(1 << 20)))).toBe(true);
  });

  it('says an answer handed over whole, then cut before the OS took it all, was not (though Node reads it as finished)', async () => {
    let finished: boolean | undefined;
    const delivered = await deliveredOnClose((response) => {
      response.once('close', () => (finished = response.writableFinished));
      response.end(Buffer.alloc(16 << 20));
      response.destroy();
    });
    expect(finished).toBe(true);
    expect(delivered).toBe(false);
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
