import { FormData } from 'undici';
import { z } from 'zod';
import type { chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import type { JsonTranscript, TranscriptUsage } from '../audio-response';

/** The three endpoints of OpenAI's Audio API, as a server's URL layout names them. */
export type AudioEndpoint = 'transcriptions' | 'translations' | 'speech';

/** The form fields the adapter itself sets: a client's extra field of one of these names is not sent again. */
const TRANSCRIPTION_FIELDS: ReadonlySet<string> = new Set(['file', 'model', 'language', 'prompt', 'response_format', 'temperature']);

/**
 * The `response_format` a transcription asks the provider for, given the client's. `text` is
 * asked as `json`, whose `text` the client gets, so the provider's usage (tokens or seconds) is
 * read even then; the others go as the client sent them (unset: the provider's default, `json`).
 * A translation's `json` answer reports no usage, so a translation asked as `json`, `text` or
 * nothing is asked as `verbose_json`, whose `duration` is the audio's length it is billed by.
 */
export function providerTranscriptFormat(asked: string | undefined, translate = false): string | undefined {
  if (translate && (asked === undefined || asked === 'json' || asked === 'text')) return 'verbose_json';
  return asked === 'text' ? 'json' : asked;
}

/**
 * Whether the provider's answer to a transcription in the client's format is JSON: `json` (the
 * default), `verbose_json`, `diarized_json` and `text` (asked as `json`) are; `srt` and `vtt` are
 * text; a format the gateway does not know (a compatible server's own) is what the answer's media
 * type says.
 */
export function answersJson(asked: string | undefined, contentType: string | undefined): boolean {
  if (asked === undefined || asked === 'json' || asked === 'verbose_json' || asked === 'diarized_json' || asked === 'text') return true;
  if (asked === 'srt' || asked === 'vtt') return false;
  return contentType?.split(';')[0]?.trim().toLowerCase() === 'application/json';
}

/**
 * A transcription or translation request as the multipart form an OpenAI-compatible server takes:
 * the upstream model, the file with the name and media type the client gave, the parameters the
 * gateway reads, then the client's other fields in the order it sent them. The provider's
 * `dropParams` (a repeated field by its name with or without `[]`) are left out; `file` and
 * `model` are the request itself.
 */
export function toOpenAITranscriptionForm(request: chatv1.AudioTranscriptionRequest, upstreamModel: string, options: { dropParams?: readonly string[] } = {}): FormData {
  const dropped = new Set(options.dropParams ?? []);
  const sends = (name: string): boolean => !dropped.has(name) && !dropped.has(name.replace(/\[\]$/, ''));
  const form = new FormData();
  form.append('model', upstreamModel);
  form.append('file', new Blob([request.file], { type: request.contentType || 'application/octet-stream' }), request.filename || 'audio');
  const optional: ReadonlyArray<[string, string | undefined]> = [
    ['language', request.language],
    ['prompt', request.prompt],
    ['response_format', providerTranscriptFormat(request.responseFormat, request.translate)],
    ['temperature', request.temperature === undefined ? undefined : String(request.temperature)],
  ];
  for (const [name, value] of optional) if (value !== undefined && sends(name)) form.append(name, value);
  for (const field of request.extraFields) if (!TRANSCRIPTION_FIELDS.has(field.name) && sends(field.name)) form.append(field.name, field.value);
  return form;
}

const count = z.int().min(0);
/** Token-billed models (gpt-4o-transcribe, gpt-4o-mini-transcribe). */
const tokenUsage = z.looseObject({ type: z.literal('tokens'), input_tokens: count, output_tokens: count, total_tokens: count.nullish() });
/** Models billed by the audio's length (whisper-1). */
const durationUsage = z.looseObject({ type: z.literal('duration'), seconds: z.number().min(0) });
const transcriptJson = z.looseObject({
  text: z.string(),
  // verbose_json's length of the audio, in seconds.
  duration: z.number().min(0).nullish(),
  usage: z.looseObject({ type: z.string() }).nullish(),
});

/**
 * A provider's JSON transcript, validated: an answer that is not JSON, has no `text`, or reports
 * a usage of a known type in another shape is malformed (an upstream error, retried elsewhere). A
 * usage of a type the gateway does not know is read as none.
 */
export function parseOpenAITranscript(bodyText: string, provider: string): JsonTranscript {
  let json: unknown;
  try {
    json = JSON.parse(bodyText);
  } catch (error) {
    throw new GatewayError('upstream_error', `The provider "${provider}" returned a malformed transcription (not JSON).`, { provider, cause: error });
  }
  const answer = transcriptJson.safeParse(json);
  if (!answer.success) throw malformed(provider, answer.error);
  const { text, duration, usage } = answer.data;
  return { text, durationSeconds: duration ?? undefined, usage: usage ? usageOf(usage, provider) : undefined };
}

function usageOf(usage: { type: string }, provider: string): TranscriptUsage | undefined {
  if (usage.type === 'tokens') {
    const tokens = tokenUsage.safeParse(usage);
    if (!tokens.success) throw malformed(provider, tokens.error, 'usage');
    const { input_tokens, output_tokens, total_tokens } = tokens.data;
    return { type: 'tokens', inputTokens: input_tokens, outputTokens: output_tokens, totalTokens: total_tokens ?? input_tokens + output_tokens };
  }
  if (usage.type === 'duration') {
    const duration = durationUsage.safeParse(usage);
    if (!duration.success) throw malformed(provider, duration.error, 'usage');
    return { type: 'duration', seconds: duration.data.seconds };
  }
  return undefined;
}

function malformed(provider: string, error: z.ZodError, under?: string): GatewayError {
  const issue = error.issues[0];
  const path = [...(under === undefined ? [] : [under]), ...(issue?.path ?? []).map(String)].join('.');
  return new GatewayError('upstream_error', `The provider "${provider}" returned a malformed transcription (${path === '' ? '' : `${path}: `}${issue?.message ?? 'invalid'}).`, { provider });
}

/** The parameters of a speech body the adapter sets itself; the client's extra parameters of these names are not sent. */
const SPEECH_FIELDS = ['model', 'input', 'voice'] as const;

/**
 * A speech request as the JSON body an OpenAI-compatible server takes: the upstream model, the
 * input, the voice (a custom voice's JSON object as that object, a name as a string), the format
 * and user when given, and the client's other parameters (`speed`, `instructions`…) as they came.
 * The provider's `dropParams` are left out, except `model`, `input` and `voice` (the request itself).
 */
export function toOpenAISpeechBody(request: chatv1.SpeechRequest, upstreamModel: string, options: { dropParams?: readonly string[] } = {}): Record<string, unknown> {
  const body: Record<string, unknown> = { model: upstreamModel, input: request.input, voice: voiceOf(request.voice) };
  if (request.responseFormat !== undefined) body['response_format'] = request.responseFormat;
  if (request.user !== undefined) body['user'] = request.user;
  const extra: unknown = request.extraJson === '' ? undefined : JSON.parse(request.extraJson);
  if (isJsonObject(extra)) {
    for (const [key, value] of Object.entries(extra)) {
      if (Object.hasOwn(body, key)) continue;
      // `__proto__` from JSON is an own key: kept as one, never the prototype.
      Object.defineProperty(body, key, { value, enumerable: true, writable: true, configurable: true });
    }
  }
  for (const key of options.dropParams ?? []) if (!(SPEECH_FIELDS as readonly string[]).includes(key)) delete body[key];
  return body;
}

/** A voice name, or a custom voice given as a JSON object's text (`{"id":"voice_…"}`). */
function voiceOf(voice: string): unknown {
  if (!voice.trimStart().startsWith('{')) return voice;
  try {
    const parsed: unknown = JSON.parse(voice);
    return isJsonObject(parsed) ? parsed : voice;
  } catch {
    return voice;
  }
}

function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The media type of each speech format, for an answer whose provider named none. */
export const SPEECH_CONTENT_TYPES: Readonly<Record<string, string>> = {
  mp3: 'audio/mpeg',
  opus: 'audio/opus',
  aac: 'audio/aac',
  flac: 'audio/flac',
  wav: 'audio/wav',
  pcm: 'audio/pcm',
};
