import { usagev1 } from '@openrouter/contracts';
import type { UsageMessage } from '../bus/usage-bus';
import { emptyUsageEvent } from './usage-event.factory';
import { isUsageBatchSchema, packUsageMessages, unpackUsageBatch, USAGE_BATCH_SCHEMA_NAME } from './usage-batch.codec';
import { toUsageMessage, USAGE_SCHEMA_NAME } from './usage-event.codec';

function eventMessage(org: string, id: string, traceparent?: string): UsageMessage {
  const event = emptyUsageEvent(id, 1_750_000_000_000);
  event.tenant = { orgId: org, projectId: 'p', teamId: 't', appId: 'a', costCenter: 'cc', keyId: 'k', endUser: '', tags: {} };
  return toUsageMessage(event, traceparent ? { traceparent } : {});
}

const idOf = (m: UsageMessage): string => usagev1.UsageEvent.decode(m.value).eventId;
const origin = { topic: 'openrouter.usage.v1', partition: 2, offset: '41' };

describe('usage event batches on the bus', () => {
  it("packs each organisation's events into batch messages of at most N, in order, and unpacks them as they were", () => {
    const messages = [eventMessage('acme', 'a1', '00-aaaa-01'), eventMessage('beta', 'b1'), eventMessage('acme', 'a2'), eventMessage('acme', 'a3', '00-cccc-01'), eventMessage('gamma', 'g1')];
    const packed = packUsageMessages(messages, 2);
    // acme: [a1, a2] and [a3] (a plain message), beta and gamma alone: plain.
    expect(packed.map((m) => [m.key, m.headers['schema']])).toEqual([
      ['acme', USAGE_BATCH_SCHEMA_NAME],
      ['acme', USAGE_SCHEMA_NAME],
      ['beta', USAGE_SCHEMA_NAME],
      ['gamma', USAGE_SCHEMA_NAME],
    ]);
    expect(packed[1]).toBe(messages[3]);

    const unpacked = unpackUsageBatch({ ...packed[0]!, origin });
    expect(unpacked.map(idOf)).toEqual(['a1', 'a2']);
    expect(unpacked.map((m) => m.headers)).toEqual([
      { traceparent: '00-aaaa-01', 'content-type': 'application/x-protobuf', schema: USAGE_SCHEMA_NAME },
      { 'content-type': 'application/x-protobuf', schema: USAGE_SCHEMA_NAME },
    ]);
    for (const m of unpacked) {
      expect(m.key).toBe('acme');
      expect(m.origin).toEqual(origin);
      expect(usagev1.UsageEvent.decode(m.value).tenant?.orgId).toBe('acme');
    }
    // Byte for byte the payload each event had as a message of its own.
    expect(unpacked.map((m) => Buffer.from(m.value))).toEqual([Buffer.from(messages[0]!.value), Buffer.from(messages[2]!.value)]);
  });

  it('closes a batch message before its events pass the byte limit; an event over it alone goes plain', () => {
    const messages = [eventMessage('acme', 'a1'), eventMessage('acme', 'a2'), eventMessage('acme', 'a3'), eventMessage('acme', 'a4')];
    const size = messages[0]!.value.length;
    // Room for two events per message, not three.
    const packed = packUsageMessages(messages, 100, size * 2 + 1);
    expect(packed.map((m) => unpackUsageBatch(m).map(idOf))).toEqual([
      ['a1', 'a2'],
      ['a3', 'a4'],
    ]);
    expect(packUsageMessages(messages.slice(0, 2), 100, size - 1)).toEqual(messages.slice(0, 2));
  });

  it('changes nothing with one event per message', () => {
    const messages = [eventMessage('acme', 'a1'), eventMessage('acme', 'a2')];
    expect(packUsageMessages(messages, 1)).toEqual(messages);
  });

  it('recognises the batch schema header as Kafka hands it, bytes or text', () => {
    expect(isUsageBatchSchema(Buffer.from(USAGE_BATCH_SCHEMA_NAME))).toBe(true);
    expect(isUsageBatchSchema(USAGE_BATCH_SCHEMA_NAME)).toBe(true);
    expect(isUsageBatchSchema(Buffer.from(USAGE_SCHEMA_NAME))).toBe(false);
    expect(isUsageBatchSchema(undefined)).toBe(false);
  });

  it('marks an undecodable or empty batch as one poison message, whole, with the reason', () => {
    const garbage: UsageMessage = { key: 'acme', value: Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f]), headers: { schema: USAGE_BATCH_SCHEMA_NAME }, origin };
    const [bad, ...rest] = unpackUsageBatch(garbage);
    expect(rest).toEqual([]);
    expect(bad).toMatchObject({ key: 'acme', value: garbage.value, headers: garbage.headers, origin });
    expect(bad?.poison).toMatch(/^undecodable usage event batch/);
    expect(unpackUsageBatch({ ...garbage, value: Buffer.alloc(0) })).toEqual([expect.objectContaining({ poison: 'empty usage event batch' })]);
  });
});
