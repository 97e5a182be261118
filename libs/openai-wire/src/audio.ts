import { z } from 'zod';
import type { chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { isAudioUpload, isFormBody, wavDurationMs, type AudioUpload } from './audio-upload';
import { badRequest, extraJson, isObject, modelName, validate } from './validation';

/**
 * The formats a transcription or translation may be answered in, as OpenAI names them (`json` when
 * unset). `diarized_json` is gpt-4o-transcribe-diarize's: the text with segments labelled by speaker.
 */
export const TRANSCRIPTION_FORMATS = ['json', 'text', 'srt', 'verbose_json', 'vtt', 'diarized_json'] as const;
export type TranscriptionFormat = (typeof TRANSCRIPTION_FORMATS)[number];

/** The audio formats speech may be answered in (`mp3` when unset). */
export const SPEECH_FORMATS = ['mp3', 'opus', 'aac', 'flac', 'wav', 'pcm'] as const;
export type SpeechFormat = (typeof SPEECH_FORMATS)[number];

/** The longest text OpenAI speaks in one request, in characters (Unicode code points). */
export const MAX_SPEECH_INPUT_CHARS = 4096;

/** A form field's number (`temperature=0.2`) as a number; anything else is left for the schema to refuse by type. */
const formNumber = (schema: z.ZodNumber) => z.preprocess((v) => (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v)) ? Number(v) : v), schema);

const transcriptionForm = z.looseObject({
  model: modelName,
  language: z.string().optional(),
  prompt: z.string().optional(),
  response_format: z.enum(TRANSCRIPTION_FORMATS).optional(),
  temperature: formNumber(z.number().min(0).max(1)).optional(),
  // A form carries booleans as text, as OpenAI's SDKs write them.
  stream: z.enum(['true', 'false']).optional(),
});
/** The form fields the canonical request models; `file` is read apart. */
const TRANSCRIPTION_KEYS: ReadonlySet<string> = new Set(['file', ...Object.keys(transcriptionForm.shape)]);

/**
 * A client's transcription (`POST /v1/audio/transcriptions`) or translation (`translate`, `POST
 * /v1/audio/translations`) form as the canonical request. The body is the multipart form as
 * ingress read it: the audio in `file` (an {@link AudioUpload}), every other field as text (a field
 * sent several times, such as `timestamp_granularities[]`, as a list). `file` and `model` are
 * required, as OpenAI requires them; the form's other fields travel as they are, in order, in
 * `extraFields`; a streamed transcription (`stream=true`) is refused by name. The audio's length
 * is read from a WAV file's header (`durationMs`, 0 for other containers).
 */
export function parseTranscriptionRequest(body: unknown, options: { translate: boolean }): chatv1.AudioTranscriptionRequest {
  if (!isFormBody(body) || !isObject(body)) {
    throw new GatewayError('bad_request', "The request body must be multipart/form-data, with the audio in the 'file' field.", { param: 'file', code: 'invalid_content_type' });
  }
  const file = uploadedFile(body['file']);
  const f = validate(transcriptionForm, body);
  if (f.stream === 'true') {
    const served = options.translate ? 'streamed translation is' : 'streamed transcription is';
    throw badRequest(`'stream' is not supported by this gateway: ${served} not served.`, 'stream', 'unsupported_parameter');
  }
  return {
    model: f.model,
    file: Buffer.from(file.data.buffer, file.data.byteOffset, file.data.byteLength),
    filename: file.filename,
    contentType: file.contentType,
    translate: options.translate,
    language: f.language,
    prompt: f.prompt,
    responseFormat: f.response_format,
    temperature: f.temperature,
    extraFields: extraFields(body),
    durationMs: wavDurationMs(file.data) ?? 0,
  };
}

/** The form's `file`: one non-empty upload. */
function uploadedFile(value: unknown): AudioUpload {
  if (value === undefined) throw badRequest("Missing required parameter: 'file'.", 'file', 'missing_required_parameter');
  if (Array.isArray(value)) throw badRequest("Invalid value for 'file': expected one file, but got several instead.", 'file', 'invalid_value');
  if (!isAudioUpload(value)) throw badRequest("Invalid type for 'file': expected a file, but got a text field instead.", 'file', 'invalid_type');
  if (value.data.length === 0) throw badRequest("Invalid value for 'file': expected an audio file, but got an empty file instead.", 'file', 'invalid_value');
  return value;
}

/** The fields the gateway does not read, each value of a repeated field in turn; only text travels. */
function extraFields(body: Record<string, unknown>): chatv1.FormField[] {
  const fields: chatv1.FormField[] = [];
  for (const name of Object.keys(body)) {
    if (TRANSCRIPTION_KEYS.has(name)) continue;
    const value = body[name];
    for (const item of Array.isArray(value) ? (value as unknown[]) : [value]) {
      if (typeof item !== 'string') throw badRequest(`Invalid type for '${name}': expected a text field, but got a file instead.`, name, 'invalid_type');
      fields.push({ name, value: item });
    }
  }
  return fields;
}

/** How many characters OpenAI counts in a text: Unicode code points (an emoji is one, not two UTF-16 units). */
export function codePoints(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

const speechInput = z
  .string()
  .min(1)
  .superRefine((input, ctx) => {
    // A string of more UTF-16 units may still fit: only then are its code points counted.
    if (input.length <= MAX_SPEECH_INPUT_CHARS) return;
    const n = codePoints(input);
    if (n > MAX_SPEECH_INPUT_CHARS) ctx.addIssue({ code: 'custom', message: `Expected at most ${MAX_SPEECH_INPUT_CHARS} characters, but got ${n} characters instead` });
  });

const speechBody = z.looseObject({
  model: modelName,
  input: speechInput,
  // A built-in voice by name, or a custom voice as `{"id": "voice_…"}`.
  voice: z.union([z.string().min(1), z.looseObject({ id: z.string().min(1) })]),
  instructions: z.string().nullish(),
  response_format: z.enum(SPEECH_FORMATS).nullish(),
  speed: z.number().min(0.25).max(4).nullish(),
  stream_format: z.enum(['audio', 'sse']).nullish(),
  user: z.string().nullish(),
});
/** What the canonical request models; `instructions` and `speed`, checked here, travel in `extraJson`. */
const SPEECH_KEYS: ReadonlySet<string> = new Set(['model', 'input', 'voice', 'response_format', 'stream_format', 'user']);

/**
 * A client's speech body (`POST /v1/audio/speech`, JSON) as the canonical request. `model`,
 * `input` (1 to 4096 characters) and `voice` are required, as OpenAI requires them; a custom voice
 * object travels as its JSON text. `instructions`, `speed` and the parameters the gateway does not
 * read travel in `extraJson`; audio streamed as server-sent events (`stream_format: "sse"`) is
 * refused by name.
 */
export function parseSpeechRequest(body: unknown): chatv1.SpeechRequest {
  const b = validate(speechBody, body);
  if (b.stream_format === 'sse') throw badRequest("'stream_format' 'sse' is not supported by this gateway: speech is answered as audio ('stream_format': 'audio').", 'stream_format', 'unsupported_parameter');
  // Null means not given, as for OpenAI: not sent on.
  const carried: Record<string, unknown> = { ...b };
  for (const key of ['instructions', 'speed'] as const) if (carried[key] === null) delete carried[key];
  return {
    model: b.model,
    input: b.input,
    voice: typeof b.voice === 'string' ? b.voice : JSON.stringify(b.voice),
    responseFormat: b.response_format ?? undefined,
    user: b.user ?? undefined,
    extraJson: extraJson(carried, SPEECH_KEYS),
  };
}

/** The media type of speech in `format` (unset: `mp3`), as OpenAI sends it. */
export function speechContentType(format: string | undefined): string {
  switch (format) {
    case 'opus':
      return 'audio/opus';
    case 'aac':
      return 'audio/aac';
    case 'flac':
      return 'audio/flac';
    case 'wav':
      return 'audio/wav';
    case 'pcm':
      return 'audio/pcm';
    default:
      return 'audio/mpeg';
  }
}

/** Whether a transcription in `format` (unset: `json`) is a JSON object (`json`, `verbose_json`, `diarized_json`); else it is text (`text`, `srt`, `vtt`). */
export function isJsonTranscription(format: string | undefined): boolean {
  return format === undefined || format === 'json' || format === 'verbose_json' || format === 'diarized_json';
}
