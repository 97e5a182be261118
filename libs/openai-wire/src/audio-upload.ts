/** The routes of OpenAI's Audio API, as the gateway serves them. */
export const AUDIO_ENDPOINTS = {
  transcriptions: '/v1/audio/transcriptions',
  translations: '/v1/audio/translations',
  speech: '/v1/audio/speech',
} as const;

/** Whether a request came through transcriptions or translations (`endpoint`: its route pattern): its body is an uploaded form. */
export function isAudioUploadEndpoint(endpoint: string | undefined): boolean {
  return endpoint === AUDIO_ENDPOINTS.transcriptions || endpoint === AUDIO_ENDPOINTS.translations;
}

/** Whether a request came through the speech endpoint. */
export function isSpeechEndpoint(endpoint: string | undefined): boolean {
  return endpoint === AUDIO_ENDPOINTS.speech;
}

/**
 * An audio file of a multipart form as ingress parsed it (`multipart/form-data`): the form's other
 * fields sit beside it in the request body, as text (a field sent several times, as an array).
 */
export interface AudioUpload {
  readonly data: Uint8Array;
  readonly filename: string;
  readonly contentType: string;
}

/**
 * Marks a request body ingress read from a multipart form (a non-enumerable symbol key, never
 * sent anywhere): an upload route can then tell a form that lacks its file from a JSON body.
 */
const FORM_BODY = Symbol.for('openrouter.form-body');

/** Marks `body` as read from a `multipart/form-data` request, and returns it. */
export function markFormBody<T extends object>(body: T): T {
  Object.defineProperty(body, FORM_BODY, { value: true, enumerable: false });
  return body;
}

/** Whether `body` was read from a `multipart/form-data` request (`markFormBody`). */
export function isFormBody(body: unknown): boolean {
  return typeof body === 'object' && body !== null && (body as { [FORM_BODY]?: unknown })[FORM_BODY] === true;
}

export function isAudioUpload(value: unknown): value is AudioUpload {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return v['data'] instanceof Uint8Array && typeof v['filename'] === 'string' && typeof v['contentType'] === 'string';
}

/** The longest a WAV file's chunk walk goes before giving up (a `data` chunk after many others). */
const MAX_WAV_CHUNKS = 64;

/** WAVE format tags whose samples are stored whole, one frame of `blockAlign` bytes per sample instant. */
const WAVE_PCM = 1;
const WAVE_IEEE_FLOAT = 3;
const WAVE_ALAW = 6;
const WAVE_MULAW = 7;
/** WAVE_FORMAT_EXTENSIBLE: the real format tag is the first two bytes of the sub-format GUID, 24 bytes into the chunk. */
const WAVE_EXTENSIBLE = 0xfffe;
const FRAMED_FORMATS: ReadonlySet<number> = new Set([WAVE_PCM, WAVE_IEEE_FLOAT, WAVE_ALAW, WAVE_MULAW]);

/**
 * The sample rates a header is believed at: telephony's 8 kHz down to 1 kHz, studio rates up to
 * 768 kHz. Outside them the header is not evidence of anything and the length is unknown.
 */
const MIN_SAMPLE_RATE = 1_000;
const MAX_SAMPLE_RATE = 768_000;

/**
 * The length of a WAV file's audio in milliseconds, read from its header, or undefined when the
 * file is not a RIFF/WAVE file of uncompressed samples (PCM, IEEE float, A-law, µ-law, or those in
 * WAVE_FORMAT_EXTENSIBLE) whose header agrees with itself. Other containers (MP3, M4A, OGG, WebM,
 * FLAC), and compressed audio inside a WAV, need decoding to know their length and are not read.
 *
 * The length is what a decoder plays: the `data` chunk's bytes (clipped to the bytes present) over
 * `sampleRate × blockAlign`, with `blockAlign` the frame of `channels` samples of `bitsPerSample`
 * rounded up to whole bytes. The header's `byteRate` is never used on its own: decoders such as
 * ffmpeg ignore it for uncompressed audio, so a client could state any value there and have ten
 * minutes of audio read as a few milliseconds. A header whose `byteRate` or `blockAlign` disagree
 * with its rate, channels and sample size is not trusted at all.
 */
export function wavDurationMs(data: Uint8Array): number | undefined {
  if (data.length < 12) return undefined;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (ascii(data, 0) !== 'RIFF' || ascii(data, 8) !== 'WAVE') return undefined;
  let offset = 12;
  let frame: { sampleRate: number; blockAlign: number } | undefined;
  for (let i = 0; i < MAX_WAV_CHUNKS && offset + 8 <= data.length; i++) {
    const id = ascii(data, offset);
    const size = view.getUint32(offset + 4, true);
    const body = offset + 8;
    if (id === 'fmt ') {
      // The last format chunk is the one that applies; one that cannot be read leaves the length unknown.
      frame = wavFrame(view, body, Math.min(size, data.length - body));
    } else if (id === 'data') {
      if (!frame) return undefined;
      // A streamed WAV may say 0 or 0xFFFFFFFF: what is there is what plays.
      const present = data.length - body;
      const bytes = size === 0 || size === 0xffffffff ? present : Math.min(size, present);
      // Whole frames only: a trailing part of a frame is not a sample a decoder plays.
      const frames = Math.floor(bytes / frame.blockAlign);
      return Math.round((frames * 1000) / frame.sampleRate);
    }
    // Chunks are padded to an even size.
    offset = body + size + (size % 2);
  }
  return undefined;
}

/**
 * A `fmt ` chunk's sample rate and frame size (`available` of its bytes present from `at`), when
 * it describes uncompressed samples and its fields agree; undefined otherwise.
 */
function wavFrame(view: DataView, at: number, available: number): { sampleRate: number; blockAlign: number } | undefined {
  // A format chunk holds at least 16 bytes (PCM's); its fields are read from within it, never from the chunk after.
  if (available < 16) return undefined;
  let format = view.getUint16(at, true);
  if (format === WAVE_EXTENSIBLE) {
    if (available < 40) return undefined;
    format = view.getUint16(at + 24, true);
  }
  if (!FRAMED_FORMATS.has(format)) return undefined;
  const channels = view.getUint16(at + 2, true);
  const sampleRate = view.getUint32(at + 4, true);
  const byteRate = view.getUint32(at + 8, true);
  const blockAlign = view.getUint16(at + 12, true);
  const bitsPerSample = view.getUint16(at + 14, true);
  if (channels === 0 || bitsPerSample === 0 || bitsPerSample > 64) return undefined;
  if (sampleRate < MIN_SAMPLE_RATE || sampleRate > MAX_SAMPLE_RATE) return undefined;
  // 12- or 20-bit samples are stored in 2 or 3 bytes, as decoders read them.
  const frameBytes = channels * Math.ceil(bitsPerSample / 8);
  if (blockAlign !== frameBytes || byteRate !== sampleRate * blockAlign) return undefined;
  return { sampleRate, blockAlign };
}

function ascii(data: Uint8Array, at: number): string {
  return String.fromCharCode(data[at] ?? 0, data[at + 1] ?? 0, data[at + 2] ?? 0, data[at + 3] ?? 0);
}
