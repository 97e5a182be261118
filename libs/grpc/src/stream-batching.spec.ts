import { Metadata } from '@grpc/grpc-js';
import type { adapterv1, chatv1 } from '@openrouter/contracts';
import { acceptBatches, acceptsBatches, chatChunkBatching, STREAM_BATCHES_HEADER } from './stream-batching';

const chunk = (id: string): chatv1.ChatChunk => ({ id, created: 1, model: 'm', choices: [] });

describe('chat chunk batching', () => {
  const batching = chatChunkBatching<adapterv1.ChatResponse>();

  it('batches chunks only; a completion travels alone', () => {
    expect(batching.batchable({ chunk: chunk('a') })).toBe(true);
    expect(batching.batchable({ completion: { id: 'x', created: 1, model: 'm', choices: [] } as unknown as chatv1.ChatCompletion })).toBe(false);
    expect(batching.batchable({ chunks: { chunks: [chunk('a'), chunk('b')] } })).toBe(false);
  });

  it('packs chunks into one message and unpacks them in order', () => {
    const packed = batching.pack([{ chunk: chunk('a') }, { chunk: chunk('b') }, { chunk: chunk('c') }]);
    expect(packed).toEqual({ chunks: { chunks: [chunk('a'), chunk('b'), chunk('c')] } });
    expect(batching.unpack(packed)).toEqual([{ chunk: chunk('a') }, { chunk: chunk('b') }, { chunk: chunk('c') }]);
    expect(batching.unpack({ chunk: chunk('a') })).toBeUndefined();
    expect(batching.unpack({ chunks: { chunks: [] } })).toEqual([]);
  });

  it('a caller accepts batches by name in its call metadata', () => {
    expect(acceptsBatches(acceptBatches(batching), batching)).toBe(true);
    expect(acceptsBatches(new Metadata(), batching)).toBe(false);
    const other = new Metadata();
    other.set(STREAM_BATCHES_HEADER, 'something-else');
    expect(acceptsBatches(other, batching)).toBe(false);
  });
});
