import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kafkaUsageSchema } from '@openrouter/config';
import { createLogger } from '@openrouter/observability';
import { CAPPED_IDEMPOTENT_RETRIES, createKafka, firstHeader, headerText, kafkaSecurity } from './kafka-client';

describe('Kafka record headers', () => {
  it('reads bytes and text, the first value of a repeated name, and skips absent ones', () => {
    expect(headerText({ schema: Buffer.from('openrouter.usage.v1.UsageEventBatch'), traceparent: ['00-a-01', '00-b-01'], empty: undefined, tag: 'x' })).toEqual({
      schema: 'openrouter.usage.v1.UsageEventBatch',
      traceparent: '00-a-01',
      tag: 'x',
    });
    expect(headerText(undefined)).toEqual({});
    expect(firstHeader([Buffer.from('a'), 'b'])).toEqual(Buffer.from('a'));
    expect(firstHeader(undefined)).toBeUndefined();
  });

  it('skips a header sent without a value (kafkajs hands it over as null) instead of throwing', () => {
    // What kafkajs decodes for a header with no value, alone and among repeats of its name.
    const decoded = { 'x-empty': null, 'x-repeated': [null, Buffer.from('second')], tag: 'x' };
    expect(headerText(decoded)).toEqual({ 'x-repeated': 'second', tag: 'x' });
    expect(firstHeader(null)).toBeUndefined();
    expect(firstHeader([null, null])).toBeUndefined();
  });
});

describe('kafkaSecurity', () => {
  it('has neither TLS nor SASL by default', () => {
    expect(kafkaSecurity({ ssl: false, sasl: undefined })).toEqual({});
  });

  it('trusts the system CAs with ssl: true, or reads a private CA file', () => {
    expect(kafkaSecurity({ ssl: true, sasl: undefined })).toEqual({ ssl: true });
    const ca = join(mkdtempSync(join(tmpdir(), 'kafka-ca-')), 'ca.pem');
    writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    expect(kafkaSecurity({ ssl: { ca }, sasl: undefined })).toEqual({ ssl: { ca: ['-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n'] } });
  });

  it('fails the start naming a CA file it cannot read', () => {
    expect(() => kafkaSecurity({ ssl: { ca: '/nonexistent/ca.pem' }, sasl: undefined })).toThrow(/usage\.kafka\.ssl\.ca: cannot read \/nonexistent\/ca\.pem/);
  });

  it('passes each SASL mechanism on', () => {
    for (const mechanism of ['plain', 'scram-sha-256', 'scram-sha-512'] as const) {
      expect(kafkaSecurity({ ssl: true, sasl: { mechanism, username: 'u', password: 'p' } })).toEqual({ ssl: true, sasl: { mechanism, username: 'u', password: 'p' } });
    }
  });
});

describe('createKafka', () => {
  const config = kafkaUsageSchema.parse({ brokers: ['127.0.0.1:9'] });
  const levelsOf = (cappedIdempotentRetries: boolean | undefined): number[] => {
    const lines: Array<{ level: number; msg: string }> = [];
    const logger = createLogger('spec', 'debug', { write: (line: string) => void lines.push(JSON.parse(line) as { level: number; msg: string }) });
    // kafkajs warns as it makes the producer, before any connection.
    createKafka(config, logger, 'spec', { cappedIdempotentRetries }).producer({ idempotent: true, retry: { retries: 3 } });
    return lines.filter((l) => l.msg === `kafka: ${CAPPED_IDEMPOTENT_RETRIES}`).map((l) => l.level);
  };

  it("logs kafkajs's warning about an idempotent producer's capped retries at debug when the cap is deliberate, and warns otherwise", () => {
    expect(levelsOf(true)).toEqual([20]);
    expect(levelsOf(undefined)).toEqual([40]);
  });
});
