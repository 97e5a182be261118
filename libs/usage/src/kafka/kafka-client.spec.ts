import { firstHeader, headerText } from './kafka-client';

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
});
