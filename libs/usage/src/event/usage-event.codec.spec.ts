import { usagev1 } from '@openrouter/contracts';
import { emptyUsageEvent } from './usage-event.factory';
import { decodeUsageMessage, inProcessUsageMessage, readUsageMessage, toUsageMessage, UsageMessageEncoder } from './usage-event.codec';

/** An event billing would store: completed, priced. */
function storableEvent(id: string): usagev1.UsageEvent {
  const event = emptyUsageEvent(id, 1_750_000_000_000);
  event.tenant = { orgId: 'acme', projectId: 'p', teamId: 't', appId: 'a', costCenter: 'cc', keyId: 'k', endUser: '', tags: {} };
  event.completedAtMs = event.receivedAtMs + 5;
  event.status = usagev1.Status.STATUS_OK;
  event.cost = { amount: '0.25', currency: 'USD', priceVersion: 'v1' };
  return event;
}

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

  it('encode the event after one that failed part-way as that event alone, not after the failed one\'s bytes', () => {
    const encoder = new UsageMessageEncoder();
    const failed = emptyUsageEvent('a', 1_750_000_000_000);
    failed.tenant = { orgId: 'org-a', projectId: 'p', teamId: 't', appId: 'a', costCenter: 'cc', keyId: 'k', endUser: '', tags: {} };
    // No uint64 holds it: the encode throws after writing the fields before it.
    failed.audioMs = 2e19;
    expect(() => encoder.encode(failed)).toThrow();
    const next = emptyUsageEvent('b', 1_750_000_000_001);
    next.tenant = { orgId: 'org-b', projectId: 'p', teamId: 't', appId: 'a', costCenter: 'cc', keyId: 'k', endUser: '', tags: {} };
    const message = encoder.encode(next);
    expect(message.value).toEqual(toUsageMessage(next).value);
    expect(usagev1.UsageEvent.decode(message.value)).toEqual(next);
  });

  it('in process, carry the event itself and make its bytes only when asked, for a dead letter', () => {
    const event = emptyUsageEvent('e', 1_750_000_000_000);
    event.tenant = { orgId: 'acme', projectId: 'p', teamId: 't', appId: 'a', costCenter: 'cc', keyId: 'k', endUser: '', tags: {} };
    event.completedAtMs = event.receivedAtMs + 5;
    event.status = usagev1.Status.STATUS_OK;
    event.cost = { amount: '0.25', currency: 'USD', priceVersion: 'v1' };
    const message = inProcessUsageMessage(event, { traceparent: 'tp' });
    const read = readUsageMessage(message);
    // The consumer gets the event as it was published: nothing was encoded or decoded.
    expect(read.ok && read.event).toEqual(event);
    expect(message).toMatchObject({ key: 'acme', headers: { traceparent: 'tp', 'content-type': 'application/x-protobuf' } });
    // The same bytes as on Kafka, when something needs them, and the same validation.
    expect(message.value).toEqual(toUsageMessage(event).value);
    expect(readUsageMessage({ ...toUsageMessage(event) })).toEqual({ ok: true, event });
    const invalid = inProcessUsageMessage({ ...event, cost: { amount: '1e3', currency: 'USD', priceVersion: '' } });
    expect(readUsageMessage(invalid)).toEqual({ ok: false, reason: expect.stringContaining('cost.amount is not a decimal') });
    expect(usagev1.UsageEvent.decode(invalid.value).cost?.amount).toBe('1e3');
    // Whose sums in the store's Decimal(38, 18) could overflow: refused, so no total turns negative.
    const huge = inProcessUsageMessage({ ...event, cost: { amount: '99999999999999999999', currency: 'USD', priceVersion: '' } });
    expect(readUsageMessage(huge)).toEqual({ ok: false, reason: expect.stringContaining('cost.amount is not a decimal') });
    expect(readUsageMessage(inProcessUsageMessage({ ...event, cost: { amount: '999999999999.123456789012345678', currency: 'USD', priceVersion: '' } })).ok).toBe(true);
    expect(readUsageMessage({ ...message, poison: 'undecodable batch' })).toEqual({ ok: false, reason: 'undecodable batch' });
  });

  it('in process, keep the event as it was published, whatever its producer changes afterwards', () => {
    const event = storableEvent('e');
    event.tenant = { orgId: 'acme', projectId: 'p', teamId: 't', appId: 'a', costCenter: 'cc', keyId: 'k', endUser: '', tags: { team: 'search' } };
    event.attempts = [{ provider: 'openai', deployment: 'd1', status: usagev1.AttemptStatus.ATTEMPT_STATUS_OK, errorKind: '', latencyMs: 12 }];
    event.tokens = { prompt: 10, completion: 2, cachedRead: 0, cacheWrite: 0, reasoning: 0, estimated: true };
    const published = usagev1.UsageEvent.decode(toUsageMessage(event).value);
    const message = inProcessUsageMessage(event);
    // What a request's metering may still do after its record was written (a client that left
    // while chunks were queued): the Kafka publisher had encoded the event by then.
    event.tokens = { prompt: 900, completion: 450, cachedRead: 0, cacheWrite: 0, reasoning: 0, estimated: false };
    event.tenant.tags['team'] = 'ads';
    event.attempts.push({ provider: 'anthropic', deployment: 'd2', status: usagev1.AttemptStatus.ATTEMPT_STATUS_OK, errorKind: '', latencyMs: 30 });
    event.servedModel = 'changed';
    expect(readUsageMessage(message)).toEqual({ ok: true, event: published });
    expect(usagev1.UsageEvent.decode(message.value)).toEqual(published);
  });

  it('in process, make every string well-formed, as the bytes on Kafka would: ClickHouse refuses a lone surrogate', () => {
    const event = storableEvent('e');
    // A client's `user` of one lone surrogate, a model name cut in the middle of an emoji, a tag of each.
    event.tenant = { orgId: 'acme', projectId: 'p', teamId: 't', appId: 'a', costCenter: 'cc', keyId: 'k', endUser: '\ud83d', tags: { ['k\ude00']: 'v\ud83d' } };
    event.requestedModel = `${'m'.repeat(255)}${'\ud83d\ude00'}`.slice(0, 256);
    event.attempts = [{ provider: 'openai', deployment: 'd', status: usagev1.AttemptStatus.ATTEMPT_STATUS_OK, errorKind: '\udc00x', latencyMs: 1 }];
    const read = readUsageMessage(inProcessUsageMessage(event));
    const overKafka = readUsageMessage(toUsageMessage(event));
    expect(read.ok).toBe(true);
    expect(read).toEqual(overKafka);
    expect(read.ok && read.event.tenant).toMatchObject({ endUser: '\ufffd', tags: { ['k\ufffd']: 'v\ufffd' } });
    expect(read.ok && read.event.requestedModel).toBe(`${'m'.repeat(255)}\ufffd`);
    expect(read.ok && read.event.attempts[0]?.errorKind).toBe('\ufffdx');
    expect(read.ok && JSON.stringify(read.event)).not.toMatch(/\\ud[89a-f]/i);
  });

  describe('refuse, as poison messages for the dead letters, what ClickHouse would store wrapped', () => {
    /** What billing reads from Kafka for an event changed by `change`. */
    function read(change: (event: usagev1.UsageEvent) => void): ReturnType<typeof decodeUsageMessage> {
      const event = storableEvent('e');
      change(event);
      const overKafka = decodeUsageMessage(toUsageMessage(event).value);
      // In process the event is validated alike.
      expect(readUsageMessage(inProcessUsageMessage(event))).toEqual(overKafka);
      return overKafka;
    }
    const LATEST_MS = Date.parse('2056-02-19T06:28:16Z');
    const refused = { ok: false, reason: expect.stringContaining('2056-02-19T06:28:16.000Z, which the usage store cannot hold') };

    it('a time the retention TTL (a DateTime) or the daily rollup (a Date) cannot hold', () => {
      const at = (ms: number) => (event: usagev1.UsageEvent) => {
        event.receivedAtMs = ms;
        event.completedAtMs = ms;
      };
      // Stored raw, 2200-01-01 went into the rollup as day 2020-07-27: spend on a past invoice.
      expect(read(at(Date.UTC(2200, 0, 1)))).toEqual(refused);
      // toDate wraps from 2149-06-07; toDateTime(received_at) from 2106-02-07T06:28:16Z.
      expect(read(at(Date.UTC(2149, 5, 7)))).toEqual(refused);
      expect(read(at(Date.UTC(2106, 1, 7, 6, 28, 16)))).toEqual(refused);
      // With the largest retention (18 250 days) the TTL of a later row passes 2106 and wraps.
      expect(read(at(LATEST_MS))).toEqual(refused);
      expect(read(at(LATEST_MS - 1)).ok).toBe(true);
      expect(read((event) => (event.completedAtMs = LATEST_MS))).toEqual(refused);
      expect(read((event) => (event.firstTokenAtMs = Date.UTC(2200, 0, 1)))).toEqual(refused);
      expect(read((event) => (event.firstTokenAtMs = LATEST_MS - 1)).ok).toBe(true);
    });

    it('a cache_saved_cost that is not a decimal: the insert of every event with it would fail', () => {
      for (const saved of ['', '0', '0.000125']) expect(read((event) => (event.cacheSavedCost = saved)).ok).toBe(true);
      for (const saved of ['n/a', '-1', '1e-3', ' 1'])
        expect(read((event) => (event.cacheSavedCost = saved))).toEqual({ ok: false, reason: `cache_saved_cost is not a decimal: ${JSON.stringify(saved)}` });
    });

    it("a status, operation or attempt status this consumer does not know (a newer producer's), which would be stored as none", () => {
      expect(read((event) => (event.status = 4 as usagev1.Status))).toEqual({ ok: false, reason: 'status 4 is not one this consumer knows' });
      expect(read((event) => (event.operation = 99 as usagev1.Operation))).toEqual({ ok: false, reason: 'operation 99 is not one this consumer knows' });
      const attempt = { provider: 'openai', deployment: 'd', status: usagev1.AttemptStatus.ATTEMPT_STATUS_OK, errorKind: '', latencyMs: 1 };
      expect(read((event) => (event.attempts = [attempt, { ...attempt, status: 7 as usagev1.AttemptStatus }]))).toEqual({ ok: false, reason: 'attempts[].status 7 is not one this consumer knows' });
      expect(read((event) => (event.attempts = [attempt])).ok).toBe(true);
      for (const operation of [usagev1.Operation.OPERATION_UNSPECIFIED, usagev1.Operation.OPERATION_SPEECH]) expect(read((event) => (event.operation = operation)).ok).toBe(true);
    });

    it('an http_status past 599, which the UInt16 column would wrap (70000 was stored as 4464)', () => {
      const status = (code: number) => (event: usagev1.UsageEvent) => (event.httpStatus = code);
      for (const code of [0, 100, 200, 499, 599]) expect(read(status(code)).ok).toBe(true);
      expect(read(status(600))).toEqual({ ok: false, reason: 'http_status 600 is not an HTTP status (100-599)' });
      expect(read(status(70_000))).toEqual({ ok: false, reason: 'http_status 70000 is not an HTTP status (100-599)' });
    });

    it('a count that is no whole number its column holds: ClickHouse refuses 1e+21 (every insert of its batch) and wraps what lies past 2^64', () => {
      // In process: protobuf cannot even encode such a count, so only an in-process event can carry one.
      const read = (change: (event: usagev1.UsageEvent) => void): ReturnType<typeof readUsageMessage> => {
        const event = storableEvent('e');
        change(event);
        return readUsageMessage(inProcessUsageMessage(event));
      };
      const tokens = (prompt: number) => (event: usagev1.UsageEvent) => (event.tokens = { prompt, completion: 1, cachedRead: 0, cacheWrite: 0, reasoning: 0, estimated: false });
      for (const prompt of [0, 1, Number.MAX_SAFE_INTEGER]) expect(read(tokens(prompt)).ok).toBe(true);
      expect(read(tokens(1e21))).toEqual({ ok: false, reason: 'tokens.prompt is not a whole number from 0 to 2^53 - 1: 1e+21' });
      expect(read(tokens(-1)).ok).toBe(false);
      expect(read(tokens(1.5)).ok).toBe(false);
      expect(read((event) => (event.audioMs = 2e19))).toEqual({ ok: false, reason: 'audio_ms is not a whole number from 0 to 2^53 - 1: 20000000000000000000' });
      expect(read((event) => (event.images = 2 ** 32))).toEqual({ ok: false, reason: 'images is not a whole number from 0 to 4294967295: 4294967296' });
      expect(read((event) => (event.latencyMs = 2 ** 32 - 1)).ok).toBe(true);
    });
  });
});
