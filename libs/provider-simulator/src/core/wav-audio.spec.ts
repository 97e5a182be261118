import { encodeWav, readWavInfo, toneSamples, wavClip } from './wav-audio';

/** A RIFF/WAVE file from chunks, each padded to an even size as RIFF requires. */
function riff(chunks: readonly [string, Buffer, number?][]): Buffer {
  const parts = chunks.map(([id, body, declared]) => {
    const head = Buffer.alloc(8);
    head.write(id, 0, 'ascii');
    head.writeUInt32LE(declared ?? body.length, 4);
    return Buffer.concat([head, body, Buffer.alloc(body.length % 2)]);
  });
  const header = Buffer.alloc(12);
  header.write('RIFF', 0, 'ascii');
  header.writeUInt32LE(4 + parts.reduce((n, p) => n + p.length, 0), 4);
  header.write('WAVE', 8, 'ascii');
  return Buffer.concat([header, ...parts]);
}

function fmt(sampleRate: number, channels: number, bits: number, audioFormat = 1): Buffer {
  const body = Buffer.alloc(16);
  body.writeUInt16LE(audioFormat, 0);
  body.writeUInt16LE(channels, 2);
  body.writeUInt32LE(sampleRate, 4);
  body.writeUInt32LE((sampleRate * channels * bits) / 8, 8);
  body.writeUInt16LE((channels * bits) / 8, 12);
  body.writeUInt16LE(bits, 14);
  return body;
}

describe('readWavInfo', () => {
  it('reads what encodeWav writes: format, data and length', () => {
    const samples = toneSamples(1500, 24_000, 440);
    expect(samples).toHaveLength(1500 * 24 * 2);
    const wav = encodeWav(samples, 24_000);
    expect(wav.toString('ascii', 0, 4)).toBe('RIFF');
    expect(wav.readUInt32LE(4)).toBe(wav.length - 8);
    expect(readWavInfo(wav)).toEqual({ audioFormat: 1, channels: 1, sampleRate: 24_000, bitsPerSample: 16, dataOffset: 44, dataBytes: samples.length, durationMs: 1500 });
  });

  it('walks past other chunks (odd-sized ones padded) to the data chunk, in stereo at 44.1 kHz', () => {
    const data = Buffer.alloc(44_100 * 4 * 2); // two seconds of 16-bit stereo
    const wav = riff([
      ['fmt ', fmt(44_100, 2, 16)],
      ['LIST', Buffer.from('INFOISFT\u0003\u0000\u0000\u0000abc', 'latin1')],
      ['data', data],
    ]);
    expect(readWavInfo(wav)).toMatchObject({ channels: 2, sampleRate: 44_100, dataBytes: data.length, durationMs: 2000 });
  });

  it('clips a data chunk to the bytes present, and takes a streamed size (0 or 0xFFFFFFFF) as all that follows', () => {
    const second = Buffer.alloc(16_000 * 2);
    expect(readWavInfo(riff([['fmt ', fmt(16_000, 1, 16)], ['data', second, second.length * 10]]))?.durationMs).toBe(1000);
    expect(readWavInfo(riff([['fmt ', fmt(16_000, 1, 16)], ['data', second, 0xffffffff]]))?.durationMs).toBe(1000);
    expect(readWavInfo(riff([['fmt ', fmt(16_000, 1, 16)], ['data', second, 0]]))?.durationMs).toBe(1000);
    expect(readWavInfo(riff([['fmt ', fmt(8_000, 1, 8)], ['data', Buffer.alloc(2_000)]]))?.durationMs).toBe(250);
  });

  it('is undefined for anything that is not a readable WAV', () => {
    expect(readWavInfo(Buffer.alloc(0))).toBeUndefined();
    expect(readWavInfo(Buffer.from('ID3\u0004\u0000 not a wav at all', 'latin1'))).toBeUndefined();
    expect(readWavInfo(riff([['data', Buffer.alloc(100)]]))).toBeUndefined(); // no fmt before data
    expect(readWavInfo(riff([['fmt ', Buffer.alloc(16)], ['data', Buffer.alloc(100)]]))).toBeUndefined(); // zero byte rate
    expect(readWavInfo(riff([['fmt ', fmt(16_000, 1, 16)]]))).toBeUndefined(); // no data chunk
    expect(readWavInfo(encodeWav(Buffer.alloc(10), 8000).subarray(0, 30))).toBeUndefined(); // truncated header
  });
});

describe('toneSamples', () => {
  it('is a deterministic sine that starts at zero and never clips', () => {
    const tone = toneSamples(100, 24_000, 440);
    expect(tone).toEqual(toneSamples(100, 24_000, 440));
    expect(tone.readInt16LE(0)).toBe(0);
    const values = Array.from({ length: tone.length / 2 }, (_, i) => tone.readInt16LE(i * 2));
    expect(Math.max(...values)).toBe(Math.round(0.2 * 0x7fff));
    expect(Math.min(...values)).toBe(-Math.round(0.2 * 0x7fff));
  });

  it('equals the sine computed sample by sample, however it is repeated', () => {
    for (const [sampleRate, frequency] of [
      [24_000, 440],
      [8_000, 441],
      [16_000, 261.63],
    ] as const) {
      const tone = toneSamples(333, sampleRate, frequency);
      for (let i = 0; i < tone.length / 2; i++) {
        // within one step: sin of a large argument rounds differently from sin of its equivalent in the first period
        expect(Math.abs(tone.readInt16LE(i * 2) - 0.2 * 0x7fff * Math.sin((2 * Math.PI * frequency * i) / sampleRate))).toBeLessThanOrEqual(1);
      }
    }
  });
});

describe('wavClip', () => {
  it('is a WAV whose header tells its length exactly, silent or a tone, at any sample rate', () => {
    expect(readWavInfo(wavClip(2_500))).toMatchObject({ sampleRate: 16_000, channels: 1, durationMs: 2_500 });
    expect(readWavInfo(wavClip(1_000, { sampleRate: 8_000 }))).toMatchObject({ sampleRate: 8_000, durationMs: 1_000 });
    const tone = wavClip(500, { toneHz: 440 });
    expect(readWavInfo(tone)?.durationMs).toBe(500);
    expect(tone.subarray(44).some((b) => b !== 0)).toBe(true);
    expect(wavClip(500).subarray(44).every((b) => b === 0)).toBe(true);
  });
});
