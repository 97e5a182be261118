import { recordBytes, slicesOf } from './send-slices';

const message = (bytes: number, key = 'org') => ({ key, value: Buffer.alloc(bytes), headers: { 'content-type': 'application/x-protobuf' } });

describe('Kafka send slices', () => {
  it('counts a message by its key, value, headers and a record’s overhead', () => {
    expect(recordBytes({ key: 'acme', value: Buffer.alloc(100), headers: { traceparent: 'x'.repeat(55) } })).toBe(32 + 4 + 100 + 'traceparent'.length + 8 + 55);
    expect(recordBytes({ key: null, value: null })).toBe(32);
  });

  it('keeps every slice within the bound, in order, and sends a message above it alone', () => {
    const size = recordBytes(message(1_000));
    const messages = Array.from({ length: 10 }, (_, i) => message(1_000, `k${i}`));
    const slices = slicesOf(messages, size * 3);
    expect(slices.map((s) => s.length)).toEqual([3, 3, 3, 1]);
    expect(slices.flat()).toEqual(messages);
    const big = message(10_000);
    expect(slicesOf([message(10), big, message(10)], 5_000)).toEqual([[message(10)], [big], [message(10)]]);
    expect(slicesOf([], 1_000)).toEqual([]);
  });
});
