import { wavClip } from '@openrouter/provider-simulator';
import type { AudioUpload } from '@openrouter/openai-wire';

/**
 * A PCM WAV file (16-bit mono at 8 kHz: 16,000 bytes a second) of `ms` milliseconds of silence,
 * as a client would upload it for a transcription.
 */
export function wavFile(ms: number): Uint8Array {
  return wavClip(ms, { sampleRate: 8_000 });
}

/** An uploaded file as ingress's multipart parser hands it on. */
export function upload(data: Uint8Array, filename = 'speech.wav', contentType = 'audio/wav'): AudioUpload {
  return { data, filename, contentType };
}

/** A file whose length the gateway cannot read (an MP3's bytes need decoding), full of text-looking bytes. */
export function mp3File(bytes = 64 * 1024): Uint8Array {
  return new TextEncoder().encode('ID3 the quick brown fox jumps over the lazy dog '.repeat(Math.ceil(bytes / 48)).slice(0, bytes));
}
