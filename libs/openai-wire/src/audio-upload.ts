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

/**
 * The length of a WAV file's audio in milliseconds, read from its header (`fmt ` byte rate and the
 * `data` chunk's size, clipped to the bytes present), or undefined when the file is not a PCM-style
 * RIFF/WAVE file whose length the header tells. Other containers (MP3, M4A, OGG, WebM, FLAC)
 * need decoding to know their length and are not read.
 */
export function wavDurationMs(data: Uint8Array): number | undefined {
  if (data.length < 12) return undefined;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (ascii(data, 0) !== 'RIFF' || ascii(data, 8) !== 'WAVE') return undefined;
  let offset = 12;
  let byteRate: number | undefined;
  for (let i = 0; i < MAX_WAV_CHUNKS && offset + 8 <= data.length; i++) {
    const id = ascii(data, offset);
    const size = view.getUint32(offset + 4, true);
    const body = offset + 8;
    // A format chunk holds at least 16 bytes (PCM's); the byte rate is read from within it, never from the chunk after.
    if (id === 'fmt ' && size >= 16 && body + 12 <= data.length) {
      byteRate = view.getUint32(body + 8, true);
    } else if (id === 'data') {
      if (!byteRate) return undefined;
      // A streamed WAV may say 0 or 0xFFFFFFFF: what is there is what plays.
      const present = data.length - body;
      const bytes = size === 0 || size === 0xffffffff ? present : Math.min(size, present);
      return Math.round((bytes * 1000) / byteRate);
    }
    // Chunks are padded to an even size.
    offset = body + size + (size % 2);
  }
  return undefined;
}

function ascii(data: Uint8Array, at: number): string {
  return String.fromCharCode(data[at] ?? 0, data[at + 1] ?? 0, data[at + 2] ?? 0, data[at + 3] ?? 0);
}
