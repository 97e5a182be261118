import { KafkaJSConnectionError, KafkaJSNumberOfRetriesExceeded, KafkaJSRequestTimeoutError } from 'kafkajs';
import { kafkaOutage } from './kafka-wait';

describe('kafkaOutage', () => {
  it('reads a broker that is away through the wrapper of kafkajs\'s last retry', () => {
    const refused = new KafkaJSConnectionError('Connection error: connect ECONNREFUSED 127.0.0.1:9092', { broker: '127.0.0.1:9092', code: 'ECONNREFUSED' });
    expect(kafkaOutage(new KafkaJSNumberOfRetriesExceeded(refused, { retryCount: 5, retryTime: 5_000 }))).toBe('Connection error: connect ECONNREFUSED 127.0.0.1:9092');
    expect(kafkaOutage(new KafkaJSConnectionError('Connection error: getaddrinfo ENOTFOUND kafka', { code: 'ENOTFOUND' }))).toContain('ENOTFOUND');
    expect(kafkaOutage(new KafkaJSConnectionError('Connection timeout', { broker: 'kafka:9092' }))).toBe('Connection timeout');
    expect(kafkaOutage(new KafkaJSRequestTimeoutError('Request Metadata(key: 3, version: 6) timed out'))).toContain('timed out');
  });

  it('does not wait out a configuration error: a refused certificate, or anything else', () => {
    const certificate = new KafkaJSConnectionError('Connection error: self-signed certificate', { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
    expect(kafkaOutage(new KafkaJSNumberOfRetriesExceeded(certificate, { retryCount: 5, retryTime: 5_000 }))).toBeUndefined();
    expect(kafkaOutage(new KafkaJSConnectionError('Failed to connect: bad ssl options'))).toBeUndefined();
    expect(kafkaOutage(new Error('usage.kafka.ssl.ca: cannot read /ca.pem'))).toBeUndefined();
  });
});
