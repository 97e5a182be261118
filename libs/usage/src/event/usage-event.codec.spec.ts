import { usagev1 } from '@openrouter/contracts';
import { emptyUsageEvent } from './usage-event.factory';
import { toUsageMessage, UsageMessageEncoder } from './usage-event.codec';

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
});
