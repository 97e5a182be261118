import type { AudioUpload } from '@openrouter/openai-wire';

/**
 * A PCM WAV file (16-bit mono at 8 kHz: 16,000 bytes a second) of `ms` milliseconds of silence,
 * as a client would upload it for a transcription.
 */
export function wavFile(ms: number): Uint8Array {
  const byteRate = 16_000;
  const dataBytes = Math.round((ms * byteRate) / 1000);
  const file = new Uint8Array(44 + dataBytes);
  const view = new DataView(file.buffer);
  const ascii = (at: number, text: string) => [...text].forEach((c, i) => view.setUint8(at + i, c.charCodeAt(0)));
  ascii(0, 'RIFF');
  view.setUint32(4, 36 + dataBytes, true);
  ascii(8, 'WAVE');
  ascii(12, 'fmt ');
  view.setUint32(16, 16, true);
  view.setUint16(20, 1, true); // PCM
  view.setUint16(22, 1, true); // mono
  view.setUint32(24, 8_000, true); // sample rate
  view.setUint32(28, byteRate, true);
  view.setUint16(32, 2, true); // block align
  view.setUint16(34, 16, true); // bits per sample
  ascii(36, 'data');
  view.setUint32(40, dataBytes, true);
  return file;
}

/** An uploaded file as ingress's multipart parser hands it on. */
export function upload(data: Uint8Array, filename = 'speech.wav', contentType = 'audio/wav'): AudioUpload {
  return { data, filename, contentType };
}

/** A file whose length the gateway cannot read (an MP3's bytes need decoding), full of text-looking bytes. */
export function mp3File(bytes = 64 * 1024): Uint8Array {
  return new TextEncoder().encode('ID3 the quick brown fox jumps over the lazy dog '.repeat(Math.ceil(bytes / 48)).slice(0, bytes));
}
