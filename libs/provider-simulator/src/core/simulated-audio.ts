import { encodeWav, readWavInfo, toneSamples } from './wav-audio';

/** The formats speech is answered in (OpenAI's `response_format` values). */
export const SPEECH_AUDIO_FORMATS = ['mp3', 'opus', 'aac', 'flac', 'wav', 'pcm'] as const;
export type SpeechAudioFormat = (typeof SPEECH_AUDIO_FORMATS)[number];

/** Simulated speech is 24 kHz mono 16-bit PCM (in `wav` and `pcm`), as OpenAI's is. */
export const SPEECH_SAMPLE_RATE = 24_000;
/** The tone simulated speech carries. */
export const SPEECH_TONE_HZ = 440;

/**
 * The bitrate an upload that is not a WAV is taken to have (16 kB/s, about 128 kbit/s), so its
 * length in time follows from its size; the compressed formats of simulated speech are written
 * at the same rate, so transcribing them reads their length back.
 */
export const COMPRESSED_AUDIO_BYTES_PER_SECOND = 16_000;

export interface MeasuredAudio {
  durationMs: number;
  /** True when the length was read from a WAV header; false when estimated from the size. */
  measured: boolean;
}

/** An upload's length: from its WAV header, else its size at `COMPRESSED_AUDIO_BYTES_PER_SECOND`. */
export function measureAudio(bytes: Uint8Array): MeasuredAudio {
  const wav = readWavInfo(bytes);
  if (wav !== undefined) return { durationMs: wav.durationMs, measured: true };
  return { durationMs: Math.round((bytes.length * 1000) / COMPRESSED_AUDIO_BYTES_PER_SECOND), measured: false };
}

/**
 * `durationMs` of simulated speech in `format`. `wav` is a valid WAV and `pcm` its raw samples (a
 * 440 Hz tone); the others are the size that format would have at 16 kB/s and start as that format
 * does (`mp3`: MPEG-1 Layer III frame headers, 0xFFFB; `aac`: ADTS headers, 0xFFF1; `opus`: an Ogg
 * page carrying `OpusHead`; `flac`: `fLaC` and a STREAMINFO block), but their audio is silent
 * filler that need not decode.
 */
export function synthesizeSpeech(format: SpeechAudioFormat, durationMs: number): Buffer {
  switch (format) {
    case 'wav':
      return encodeWav(toneSamples(durationMs, SPEECH_SAMPLE_RATE, SPEECH_TONE_HZ), SPEECH_SAMPLE_RATE);
    case 'pcm':
      return toneSamples(durationMs, SPEECH_SAMPLE_RATE, SPEECH_TONE_HZ);
    case 'mp3':
      return framed(compressedSize(durationMs), MP3_FRAME_BYTES, () => MP3_FRAME_HEADER);
    case 'aac':
      return framed(compressedSize(durationMs), AAC_FRAME_BYTES, adtsHeader);
    case 'opus':
      return withPrefix(oggOpusHeadPage(), compressedSize(durationMs));
    case 'flac':
      return withPrefix(flacHeader(Math.round((durationMs * SPEECH_SAMPLE_RATE) / 1000)), compressedSize(durationMs));
  }
}

function compressedSize(durationMs: number): number {
  return Math.max(1, Math.round((durationMs * COMPRESSED_AUDIO_BYTES_PER_SECOND) / 1000));
}

/** MPEG-1 Layer III, no CRC, 128 kbit/s, 44.1 kHz, mono: 417-byte frames. */
const MP3_FRAME_HEADER = Buffer.from([0xff, 0xfb, 0x90, 0xc0]);
const MP3_FRAME_BYTES = 417;
/** AAC frames of 1024 samples at 24 kHz, at 16 kB/s. */
const AAC_FRAME_BYTES = Math.round((1024 / SPEECH_SAMPLE_RATE) * COMPRESSED_AUDIO_BYTES_PER_SECOND);

/** Whole frames of `frameBytes` (at least one), each starting with its header, the rest zeros. */
function framed(size: number, frameBytes: number, header: (frameBytes: number) => Buffer): Buffer {
  const frames = Math.max(1, Math.round(size / frameBytes));
  const out = Buffer.alloc(frames * frameBytes);
  const head = header(frameBytes);
  for (let i = 0; i < frames; i++) head.copy(out, i * frameBytes);
  return out;
}

/** An ADTS header (MPEG-4 AAC LC, 24 kHz, mono, no CRC) for a frame of `frameBytes` bytes. */
function adtsHeader(frameBytes: number): Buffer {
  const fullness = 0x7ff; // variable bitrate
  return Buffer.from([
    0xff,
    0xf1,
    0x58, // profile LC, sampling index 6 (24 kHz), channel configuration's top bit 0
    0x40 | ((frameBytes >> 11) & 0x03), // channel configuration 1
    (frameBytes >> 3) & 0xff,
    ((frameBytes & 0x07) << 5) | (fullness >> 6),
    ((fullness & 0x3f) << 2) | 0, // one raw data block
  ]);
}

function withPrefix(prefix: Buffer, size: number): Buffer {
  const out = Buffer.alloc(Math.max(size, prefix.length));
  prefix.copy(out, 0);
  return out;
}

/** The first page of an Ogg Opus stream: its `OpusHead` (mono, 24 kHz input), with a valid page CRC. */
function oggOpusHeadPage(): Buffer {
  const head = Buffer.alloc(19);
  head.write('OpusHead', 0, 'ascii');
  head[8] = 1; // version
  head[9] = 1; // channels
  head.writeUInt16LE(312, 10); // pre-skip
  head.writeUInt32LE(SPEECH_SAMPLE_RATE, 12);
  // output gain 0, channel mapping family 0
  const page = Buffer.alloc(27 + 1 + head.length);
  page.write('OggS', 0, 'ascii');
  page[5] = 0x02; // beginning of stream
  page.writeUInt32LE(0x53494d55, 14); // stream serial number
  page[26] = 1; // one segment
  page[27] = head.length;
  head.copy(page, 28);
  page.writeUInt32LE(oggCrc(page), 22);
  return page;
}

/** Ogg's page checksum: CRC-32, polynomial 0x04C11DB7, not reflected, computed with the CRC field zero. */
function oggCrc(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) {
    crc ^= byte << 24;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x80000000 ? (crc << 1) ^ 0x04c11db7 : crc << 1;
  }
  return crc >>> 0;
}

/** `fLaC` and the last metadata block, STREAMINFO: 24 kHz, mono, 16 bits, `totalSamples`. */
function flacHeader(totalSamples: number): Buffer {
  const out = Buffer.alloc(4 + 4 + 34);
  out.write('fLaC', 0, 'ascii');
  out[4] = 0x80; // last metadata block, type 0 (STREAMINFO)
  out.writeUIntBE(34, 5, 3);
  const info = 8;
  out.writeUInt16BE(4096, info); // min block size
  out.writeUInt16BE(4096, info + 2); // max block size
  // min / max frame size unknown (0)
  // sample rate (20 bits) | channels - 1 (3 bits) | bits per sample - 1 (5 bits) | total samples (36 bits)
  const packed = (BigInt(SPEECH_SAMPLE_RATE) << 44n) | (0n << 41n) | (15n << 36n) | (BigInt(totalSamples) & 0xfffffffffn);
  out.writeBigUInt64BE(packed, info + 10);
  // MD5 of the audio left zero: "not computed"
  return out;
}
