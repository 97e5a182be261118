import type { routerv1, usagev1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { createLogger } from '@openrouter/observability';
import { PriceBook, type UsagePublisher } from '@openrouter/usage';
import { UsageRecorder, type MeteredExchange } from './usage-recorder';

/** A publisher that keeps what it was given. */
function collecting(): UsagePublisher & { events: usagev1.UsageEvent[] } {
  const events: usagev1.UsageEvent[] = [];
  return {
    events,
    publish: async (event) => void events.push(event),
    status: () => ({ mode: 'direct', pending: 0, outboxBytes: 0 }),
    close: async () => undefined,
  };
}

const context: routerv1.RequestContext = { requestId: 'r', orgId: 'acme', projectId: 'p', teamId: 't', appId: '', costCenter: '', keyId: 'k', endUser: '', tags: {}, allowedModels: [] };

/** An exchange the test ends when it wants, as a client that goes away. */
function exchange(id: string): MeteredExchange & { end(): void } {
  const listeners: Array<() => void> = [];
  return {
    id,
    body: { model: 'm', messages: [] },
    receivedAtMs: Date.now(),
    context: () => context,
    budget: () => undefined,
    traceHeaders: () => ({}),
    onEnd: (listener) => void listeners.push(listener),
    outcome: () => ({ cancelled: true, status: 499 }),
    end: () => listeners.forEach((l) => l()),
  };
}

describe('UsageRecorder.drain', () => {
  const logger = createLogger('test', 'silent');

  it('waits for a request cut inside a call to write its event once the call has unwound', async () => {
    const publisher = collecting();
    const recorder = new UsageRecorder(publisher, PriceBook.fromModels([]), logger);
    const cut = exchange('cut');
    const track = recorder.trackExchange(cut, 'chat');
    let fail: (error: unknown) => void = () => undefined;
    const call = track.guard(new Promise((_, reject) => (fail = reject))).catch(() => undefined);
    // The server closed the connection (shutdown): the exchange ended while its router call is still unwinding.
    cut.end();
    const drained = recorder.drain();
    fail(new GatewayError('cancelled', 'The client went away.'));
    await call;
    await drained;
    expect(publisher.events.map((e) => [e.requestId, e.cancelled])).toEqual([['cut', true]]);
  });

  it('gives up on a request that never ends after its bound, and says so', async () => {
    const publisher = collecting();
    const errors: unknown[] = [];
    const recorder = new UsageRecorder(publisher, PriceBook.fromModels([]), { ...logger, error: (...args: unknown[]) => void errors.push(args) } as typeof logger);
    recorder.trackExchange(exchange('never'), 'chat');
    await recorder.drain(10);
    expect(publisher.events).toEqual([]);
    expect(errors).toHaveLength(1);
  });
});
