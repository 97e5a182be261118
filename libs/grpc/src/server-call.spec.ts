import { EventEmitter } from 'node:events';
import { ServerCallCancellation } from './server-call';

describe('ServerCallCancellation', () => {
  it('aborts the work when the client cancels before the call is answered', () => {
    const call = new EventEmitter();
    const cancellation = new ServerCallCancellation(call);
    expect(cancellation.signal.aborted).toBe(false);
    call.emit('cancelled');
    expect(cancellation.signal.aborted).toBe(true);
  });

  it("ignores grpc-js's 'cancelled' after the answer (its clean-up on every call)", () => {
    const call = new EventEmitter();
    const cancellation = new ServerCallCancellation(call);
    cancellation.answered();
    call.emit('cancelled');
    expect(cancellation.signal.aborted).toBe(false);
  });
});
