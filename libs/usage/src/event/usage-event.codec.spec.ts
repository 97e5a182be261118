import { usagev1 } from '@openrouter/contracts';
import { emptyUsageEvent } from './usage-event.factory';
import { inProcessUsageMessage, readUsageMessage, toUsageMessage, UsageMessageEncoder } from './usage-event.codec';

describe('usage event messages', () => {
  it('encode with one reused writer exactly as with a fresh one, each message its own bytes', () => {
    const encoder = new UsageMessageEncoder();
    const events = ['a', 'b'.repeat(900), 'c'].map((id, i) => {
      const event = emptyUsageEvent(id, 1_750_000_000_000 + i);
      event.tenant = { orgId: `org-${i}`, projectId: 'p', teamId: 't', appId: 'a', costCenter: 'cc', keyId: 'k', endUser: '', tags: { n: String(i) } };
      return event;
    });
    const reused = events.map((event) => encoder.encode(event, { traceparent: 'tp' }));
    // Read after every later encode: a message must not share the writer's buffer.
    expect(reused.map((m) => usagev1.UsageEvent.decode(m.value))).toEqual(events);
    expect(reused.map((m) => m.value)).toEqual(events.map((event) => toUsageMessage(event).value));
    expect(reused.map((m) => m.key)).toEqual(['org-0', 'org-1', 'org-2']);
    expect(reused[0]?.headers).toMatchObject({ traceparent: 'tp', 'content-type': 'application/x-protobuf', schema: 'openrouter.usage.v1.UsageEvent' });
  });

  it('in process, carry the event itself and make its bytes only when asked, for a dead letter', () => {
    const event = emptyUsageEvent('e', 1_750_000_000_000);
    event.tenant = { orgId: 'acme', projectId: 'p', teamId: 't', appId: 'a', costCenter: 'cc', keyId: 'k', endUser: '', tags: {} };
    event.completedAtMs = event.receivedAtMs + 5;
    event.status = usagev1.Status.STATUS_OK;
    event.cost = { amount: '0.25', currency: 'USD', priceVersion: 'v1' };
    const message = inProcessUsageMessage(event, { traceparent: 'tp' });
    const read = readUsageMessage(message);
    // The consumer gets the very object: nothing was encoded or decoded.
    expect(read.ok && read.event).toBe(event);
    expect(message).toMatchObject({ key: 'acme', headers: { traceparent: 'tp', 'content-type': 'application/x-protobuf' } });
    // The same bytes as on Kafka, when something needs them, and the same validation.
    expect(message.value).toEqual(toUsageMessage(event).value);
    expect(readUsageMessage({ ...toUsageMessage(event) })).toEqual({ ok: true, event });
    const invalid = inProcessUsageMessage({ ...event, cost: { amount: '1e3', currency: 'USD', priceVersion: '' } });
    expect(readUsageMessage(invalid)).toEqual({ ok: false, reason: expect.stringContaining('cost.amount is not a decimal') });
    expect(usagev1.UsageEvent.decode(invalid.value).cost?.amount).toBe('1e3');
    expect(readUsageMessage({ ...message, poison: 'undecodable batch' })).toEqual({ ok: false, reason: 'undecodable batch' });
  });
});
