/** What a WAV file's header says about its audio. */
export interface WavInfo {
  /** 1 for integer PCM, 3 for IEEE float, 0xFFFE for WAVE_FORMAT_EXTENSIBLE, … (as written; not checked). */
  audioFormat: number;
  channels: number;
  sampleRate: number;
  bitsPerSample: number;
  /** Where the `data` chunk's samples start. */
  dataOffset: number;
  /** The sample bytes present: the `data` chunk's size, clipped to the bytes the file holds. */
  dataBytes: number;
  durationMs: number;
}

/** How many chunks the walk to `data` looks at before giving up (a `data` chunk after many others). */
const MAX_WAV_CHUNKS = 64;

/**
 * Reads a RIFF/WAVE file's `fmt ` and `data` chunks; undefined for anything else (another
 * container, a truncated header, or a `fmt ` with a zero byte rate). A `data` size of 0 or
 * 0xFFFFFFFF (a WAV written while streaming) means: every byte that follows.
 */
export function readWavInfo(bytes: Uint8Array): WavInfo | undefined {
  if (bytes.length < 12 || fourCc(bytes, 0) !== 'RIFF' || fourCc(bytes, 8) !== 'WAVE') return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let format: Pick<WavInfo, 'audioFormat' | 'channels' | 'sampleRate' | 'bitsPerSample'> | undefined;
  let byteRate = 0;
  let offset = 12;
  for (let i = 0; i < MAX_WAV_CHUNKS && offset + 8 <= bytes.length; i++) {
    const id = fourCc(bytes, offset);
    const size = view.getUint32(offset + 4, true);
    const body = offset + 8;
    if (id === 'fmt ' && body + 16 <= bytes.length) {
      format = {
        audioFormat: view.getUint16(body, true),
        channels: view.getUint16(body + 2, true),
        sampleRate: view.getUint32(body + 4, true),
        bitsPerSample: view.getUint16(body + 14, true),
      };
      byteRate = view.getUint32(body + 8, true);
    } else if (id === 'data') {
      if (format === undefined || byteRate === 0) return undefined;
      const present = bytes.length - body;
      const dataBytes = size === 0 || size === 0xffffffff ? present : Math.min(size, present);
      return { ...format, dataOffset: body, dataBytes, durationMs: Math.round((dataBytes * 1000) / byteRate) };
    }
    // Chunks are padded to an even size.
    offset = body + size + (size % 2);
  }
  return undefined;
}

/** A canonical 44-byte-header WAV around 16-bit little-endian PCM samples. */
export function encodeWav(samples: Buffer, sampleRate: number, channels = 1): Buffer {
  const bitsPerSample = 16;
  const blockAlign = (channels * bitsPerSample) / 8;
  const header = Buffer.alloc(44);
  header.write('RIFF', 0, 'ascii');
  header.writeUInt32LE(36 + samples.length, 4);
  header.write('WAVE', 8, 'ascii');
  header.write('fmt ', 12, 'ascii');
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20); // integer PCM
  header.writeUInt16LE(channels, 22);
  header.writeUInt32LE(sampleRate, 24);
  header.writeUInt32LE(sampleRate * blockAlign, 28);
  header.writeUInt16LE(blockAlign, 32);
  header.writeUInt16LE(bitsPerSample, 34);
  header.write('data', 36, 'ascii');
  header.writeUInt32LE(samples.length, 40);
  return Buffer.concat([header, samples]);
}

/**
 * A WAV file of `durationMs` as a client uploads one: 16-bit mono at `sampleRate` (16 kHz), silent
 * or a sine tone at `toneHz`. Its length reads back exactly from its header.
 */
export function wavClip(durationMs: number, options: { sampleRate?: number; toneHz?: number } = {}): Buffer {
  const sampleRate = options.sampleRate ?? 16_000;
  const samples = options.toneHz === undefined ? Buffer.alloc(Math.round((durationMs * sampleRate) / 1000) * 2) : toneSamples(durationMs, sampleRate, options.toneHz);
  return encodeWav(samples, sampleRate);
}

/**
 * `durationMs` of a sine tone as 16-bit little-endian mono PCM: at a fifth of full scale, so it
 * is audible and never clips. The same arguments give the same bytes.
 */
export function toneSamples(durationMs: number, sampleRate: number, frequencyHz: number): Buffer {
  const count = Math.round((durationMs * sampleRate) / 1000);
  const samples = Buffer.alloc(count * 2);
  const amplitude = 0.2 * 0x7fff;
  // An integer frequency repeats every sampleRate / gcd(sampleRate, frequency) samples (600 for 440 Hz at
  // 24 kHz): compute one period and copy it, so a minute of audio costs a copy, not 1.4 million sines.
  const period = Number.isInteger(frequencyHz) && Number.isInteger(sampleRate) ? sampleRate / gcd(sampleRate, frequencyHz) : count;
  const computed = Math.min(count, period);
  for (let i = 0; i < computed; i++) samples.writeInt16LE(Math.round(amplitude * Math.sin((2 * Math.PI * frequencyHz * i) / sampleRate)), i * 2);
  for (let at = computed * 2; at < samples.length; at += computed * 2) samples.copy(samples, at, 0, Math.min(computed * 2, samples.length - at));
  return samples;
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

function fourCc(bytes: Uint8Array, at: number): string {
  return String.fromCharCode(bytes[at] ?? 0, bytes[at + 1] ?? 0, bytes[at + 2] ?? 0, bytes[at + 3] ?? 0);
}
