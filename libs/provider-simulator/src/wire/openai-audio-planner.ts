import { measureAudio, SPEECH_AUDIO_FORMATS, type SpeechAudioFormat } from '../core/simulated-audio';
import { countTokens } from '../core/token-counter';
import { type FormFields, type FormValue, isUploadedFile } from '../http/multipart-form';
import { describeProblem, type RequestProblem, type SpeechRequest, transcriptionFormSchema } from './openai-request-schemas';

/** Transcriptions transcribe; translations translate into English. */
export type AudioTask = 'transcribe' | 'translate';

export const TRANSCRIPT_FORMATS = ['json', 'text', 'srt', 'verbose_json', 'vtt'] as const;
export type TranscriptFormat = (typeof TRANSCRIPT_FORMATS)[number];

/** The extensions OpenAI takes an upload by. */
export const AUDIO_FILE_EXTENSIONS = ['flac', 'm4a', 'mp3', 'mp4', 'mpeg', 'mpga', 'oga', 'ogg', 'wav', 'webm'] as const;

/** Audio tokens per second of audio: a token-billed model's audio input, and speech's output. */
export const AUDIO_TOKENS_PER_SECOND = 10;
/** One transcript segment per this much audio. */
export const TRANSCRIPT_SEGMENT_MS = 5_000;
/** OpenAI's shortest transcribable audio. */
export const MIN_AUDIO_MS = 100;

/** Speech: `input`'s limit in characters, the time each character takes at speed 1, and the longest answer. */
export const SPEECH_MAX_INPUT_CHARACTERS = 4096;
export const SPEECH_MS_PER_CHARACTER = 60;
export const SPEECH_MAX_MS = 60_000;
/** OpenAI's built-in voices; a custom voice is `{"id": "voice_…"}`. */
export const SPEECH_VOICES = ['alloy', 'ash', 'ballad', 'coral', 'echo', 'fable', 'onyx', 'nova', 'sage', 'shimmer', 'verse', 'marin', 'cedar'] as const;

/** Whisper models (a name containing `whisper`) bill by duration and alone translate; the others bill tokens. */
export function isWhisperModel(model: string): boolean {
  return /whisper/i.test(model);
}

/** `gpt-4o-transcribe`, `gpt-4o-mini-transcribe` and their snapshots: `json` and `text` only. */
export function isGpt4oTranscribeModel(model: string): boolean {
  return /^gpt-4o.*-transcribe/i.test(model);
}

export interface TranscriptSegment {
  id: number;
  startMs: number;
  endMs: number;
  text: string;
}

export interface TranscriptWord {
  word: string;
  startMs: number;
  endMs: number;
}

export type TranscriptionUsage = { type: 'duration'; seconds: number } | { type: 'tokens'; textTokens: number; audioTokens: number; outputTokens: number };

export interface TranscriptionPlan {
  task: AudioTask;
  format: TranscriptFormat;
  /** The language's name as verbose_json reports it (`english`). */
  language: string;
  durationMs: number;
  text: string;
  segments: TranscriptSegment[];
  /** verbose_json: whether `segments` is sent (asked for, or no granularity asked). */
  includeSegments: boolean;
  /** verbose_json with `timestamp_granularities[]=word`. */
  words: TranscriptWord[] | undefined;
  temperature: number;
  /** Undefined for translations, whose answers carry none. */
  usage: TranscriptionUsage | undefined;
}

export type TranscriptionPlanResult = { ok: true; plan: TranscriptionPlan } | { ok: false; problem: RequestProblem };

const fail = (message: string, param: string | null, code: string | null): { ok: false; problem: RequestProblem } => ({ ok: false, problem: { message, param, code } });

const quoted = (values: readonly string[]): string => {
  const items = values.map((v) => `'${v}'`);
  return items.length <= 1 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')}, and ${items[items.length - 1] ?? ''}`;
};

const AUDIO_TOO_SHORT = `Audio file is too short. Minimum audio length is ${MIN_AUDIO_MS / 1000} seconds.`;

/**
 * Checks a transcription or translation form under OpenAI's rules and plans its answer: a
 * deterministic transcript naming the file (and a WAV's length), one segment per 5 s of audio.
 * `model` is the form's model, or on Azure the deployment's name.
 */
export function planTranscription(fields: FormFields, task: AudioTask): TranscriptionPlanResult {
  const file = fields['file'];
  if (file === undefined) return fail("Missing required parameter: 'file'.", 'file', 'missing_required_parameter');
  if (!isUploadedFile(file)) return fail("Invalid 'file': expected an uploaded file.", 'file', 'invalid_type');
  const parsed = transcriptionFormSchema.safeParse(fields);
  if (!parsed.success) return { ok: false, problem: describeProblem(parsed.error, fields) };
  const form = parsed.data;
  const { model } = form;

  const extension = /\.([^./\\]+)$/.exec(file.name)?.[1]?.toLowerCase() ?? '';
  if (!(AUDIO_FILE_EXTENSIONS as readonly string[]).includes(extension)) {
    return fail(`Invalid file format. Supported formats: [${AUDIO_FILE_EXTENSIONS.map((e) => `'${e}'`).join(', ')}]`, 'file', 'invalid_value');
  }
  if (task === 'translate' && !isWhisperModel(model)) {
    return fail(`The model '${model}' does not support translations. Use 'whisper-1'.`, 'model', 'unsupported_value');
  }
  const format = form.response_format ?? 'json';
  if (!isTranscriptFormat(format)) return fail(`Invalid value: '${format}'. Supported values are: ${quoted(TRANSCRIPT_FORMATS)}.`, 'response_format', 'invalid_value');
  if (isGpt4oTranscribeModel(model) && format !== 'json' && format !== 'text') {
    return fail(`response_format '${format}' is not compatible with model '${model}'. Use 'json' or 'text'.`, 'response_format', 'unsupported_value');
  }
  // whisper-1 ignores `stream`, as OpenAI's does; streamed transcripts are not simulated.
  if (task === 'transcribe' && form.stream === 'true' && !isWhisperModel(model)) {
    return fail('Streamed transcription is not simulated.', 'stream', 'unsupported_parameter');
  }
  let language = 'english';
  if (task === 'transcribe' && form.language !== undefined && form.language !== '') {
    if (!/^[a-z]{2}$/i.test(form.language)) {
      return fail(`Invalid language '${form.language}'. Language parameter must be specified in ISO-639-1 format.`, 'language', 'invalid_language_format');
    }
    language = LANGUAGE_NAMES[form.language.toLowerCase()] ?? form.language.toLowerCase();
  }
  const temperature = form.temperature === undefined || form.temperature === '' ? 0 : Number(form.temperature);
  if (!Number.isFinite(temperature)) return fail(`Invalid 'temperature': expected a decimal, but got '${form.temperature ?? ''}' instead.`, 'temperature', 'invalid_type');
  if (temperature < 0) return fail(`Invalid 'temperature': decimal below minimum value. Expected a value >= 0, but got ${temperature} instead.`, 'temperature', 'decimal_below_min_value');
  if (temperature > 1) return fail(`Invalid 'temperature': decimal above maximum value. Expected a value <= 1, but got ${temperature} instead.`, 'temperature', 'decimal_above_max_value');
  const granularities = task === 'transcribe' ? granularitiesOf(fields) : [];
  if (granularities === undefined) return fail("Invalid 'timestamp_granularities[]': expected text values.", 'timestamp_granularities[]', 'invalid_type');
  const unknownGranularity = granularities.find((g) => g !== 'word' && g !== 'segment');
  if (unknownGranularity !== undefined) {
    return fail(`Invalid value: '${unknownGranularity}'. Supported values are: 'word' and 'segment'.`, 'timestamp_granularities[]', 'invalid_value');
  }

  const audio = measureAudio(file.bytes);
  // Only a WAV's length is known; any other upload is taken at its size, unless it is empty.
  if (file.bytes.length === 0 || (audio.measured && audio.durationMs < MIN_AUDIO_MS)) return fail(AUDIO_TOO_SHORT, 'file', 'audio_too_short');
  const segments = transcriptSegments(task, file.name, audio.durationMs, audio.measured);
  const text = segments.map((segment) => segment.text).join(' ');
  const verbose = format === 'verbose_json';
  const wantsWords = verbose && granularities.includes('word');
  return {
    ok: true,
    plan: {
      task,
      format,
      language,
      durationMs: audio.durationMs,
      text,
      segments,
      includeSegments: granularities.length === 0 || granularities.includes('segment'),
      words: wantsWords ? segments.flatMap(segmentWords) : undefined,
      temperature,
      usage: task === 'translate' ? undefined : transcriptionUsage(model, form.prompt ?? '', text, audio.durationMs),
    },
  };
}

function isTranscriptFormat(value: string): value is TranscriptFormat {
  return (TRANSCRIPT_FORMATS as readonly string[]).includes(value);
}

/** Every value of `timestamp_granularities[]` (or `timestamp_granularities`); undefined when one is a file. */
function granularitiesOf(fields: FormFields): string[] | undefined {
  const values: FormValue[] = [fields['timestamp_granularities[]'], fields['timestamp_granularities']].flatMap((value) =>
    value === undefined ? [] : Array.isArray(value) ? value : [value],
  );
  return values.every((value): value is string => typeof value === 'string') ? values : undefined;
}

/** Duration-billed for Whisper (whole seconds, rounded up); tokens for the others. */
export function transcriptionUsage(model: string, prompt: string, text: string, durationMs: number): TranscriptionUsage {
  if (isWhisperModel(model)) return { type: 'duration', seconds: Math.ceil(durationMs / 1000) };
  return { type: 'tokens', textTokens: countTokens(prompt), audioTokens: audioTokens(durationMs), outputTokens: countTokens(text) };
}

export function audioTokens(durationMs: number): number {
  return Math.ceil((durationMs * AUDIO_TOKENS_PER_SECOND) / 1000);
}

/**
 * The transcript, one segment per `TRANSCRIPT_SEGMENT_MS`: the first says what was heard
 * (`Simulated transcript of <file>.`, with a WAV's length: `… (2.5 seconds of WAV audio).`), the
 * others `Part <i> of <n>.`; a translation says `Simulated translation of …`.
 */
export function transcriptSegments(task: AudioTask, filename: string, durationMs: number, measured: boolean): TranscriptSegment[] {
  const count = Math.max(1, Math.ceil(durationMs / TRANSCRIPT_SEGMENT_MS));
  const name = filename.replace(/\s+/g, ' ').trim();
  const length = measured ? ` (${durationMs / 1000} seconds of WAV audio)` : '';
  return Array.from({ length: count }, (_, id) => ({
    id,
    startMs: id * TRANSCRIPT_SEGMENT_MS,
    endMs: Math.min(durationMs, (id + 1) * TRANSCRIPT_SEGMENT_MS),
    text: id === 0 ? `Simulated ${task === 'translate' ? 'translation' : 'transcript'} of ${name}${length}.` : `Part ${id + 1} of ${count}.`,
  }));
}

/** A segment's words (punctuation stripped), spread evenly over its time. */
function segmentWords(segment: TranscriptSegment): TranscriptWord[] {
  const words = segment.text
    .split(' ')
    .map((word) => word.replace(/^[("']+|[)"'.,!?;:]+$/g, ''))
    .filter((word) => word.length > 0);
  const span = segment.endMs - segment.startMs;
  return words.map((word, i) => ({
    word,
    startMs: segment.startMs + Math.round((span * i) / words.length),
    endMs: segment.startMs + Math.round((span * (i + 1)) / words.length),
  }));
}

/** The names verbose_json gives the ISO-639-1 codes; another code is reported as given. */
const LANGUAGE_NAMES: Readonly<Record<string, string>> = {
  ar: 'arabic',
  cs: 'czech',
  da: 'danish',
  de: 'german',
  el: 'greek',
  en: 'english',
  es: 'spanish',
  fi: 'finnish',
  fr: 'french',
  he: 'hebrew',
  hi: 'hindi',
  hu: 'hungarian',
  id: 'indonesian',
  it: 'italian',
  ja: 'japanese',
  ko: 'korean',
  nl: 'dutch',
  no: 'norwegian',
  pl: 'polish',
  pt: 'portuguese',
  ro: 'romanian',
  ru: 'russian',
  sv: 'swedish',
  th: 'thai',
  tr: 'turkish',
  uk: 'ukrainian',
  vi: 'vietnamese',
  zh: 'chinese',
};

export type StreamFormat = 'audio' | 'sse';

export interface SpeechPlan {
  format: SpeechAudioFormat;
  streamFormat: StreamFormat;
  /** `input`'s length in Unicode code points. */
  characters: number;
  durationMs: number;
  /** What an SSE answer's `speech.audio.done` reports: `input` and `instructions` tokens in, audio tokens out. */
  usage: { inputTokens: number; outputTokens: number };
}

export type SpeechPlanResult = { ok: true; plan: SpeechPlan } | { ok: false; problem: RequestProblem };

/**
 * Checks a schema-valid speech request under OpenAI's rules and plans its audio:
 * `SPEECH_MS_PER_CHARACTER` per character of `input`, divided by `speed`, at most `SPEECH_MAX_MS`.
 */
export function planSpeech(request: SpeechRequest, model: string): SpeechPlanResult {
  const characters = [...request.input].length;
  if (characters === 0) return fail("Invalid 'input': string too short. Expected a string with minimum length 1, but got an empty string instead.", 'input', 'string_below_min_length');
  if (characters > SPEECH_MAX_INPUT_CHARACTERS) {
    return fail(
      `Invalid 'input': string too long. Expected a string with maximum length ${SPEECH_MAX_INPUT_CHARACTERS}, but got a string with length ${characters} instead.`,
      'input',
      'string_above_max_length',
    );
  }
  if (typeof request.voice === 'string' && !(SPEECH_VOICES as readonly string[]).includes(request.voice)) {
    return fail(`Invalid value: '${request.voice}'. Supported values are: ${quoted(SPEECH_VOICES)}.`, 'voice', 'invalid_value');
  }
  const format = request.response_format ?? 'mp3';
  if (!isSpeechFormat(format)) return fail(`Invalid value: '${format}'. Supported values are: ${quoted(SPEECH_AUDIO_FORMATS)}.`, 'response_format', 'invalid_value');
  const speed = request.speed ?? 1;
  if (speed < 0.25) return fail(`Invalid 'speed': decimal below minimum value. Expected a value >= 0.25, but got ${speed} instead.`, 'speed', 'decimal_below_min_value');
  if (speed > 4) return fail(`Invalid 'speed': decimal above maximum value. Expected a value <= 4, but got ${speed} instead.`, 'speed', 'decimal_above_max_value');
  const streamFormat = request.stream_format ?? 'audio';
  if (streamFormat !== 'audio' && streamFormat !== 'sse') {
    return fail(`Invalid value: '${streamFormat}'. Supported values are: 'sse' and 'audio'.`, 'stream_format', 'invalid_value');
  }
  if (streamFormat === 'sse' && /^tts-1/i.test(model)) {
    return fail(`stream_format 'sse' is not supported for model '${model}'.`, 'stream_format', 'unsupported_value');
  }
  const durationMs = Math.min(SPEECH_MAX_MS, Math.round((characters * SPEECH_MS_PER_CHARACTER) / speed));
  const inputTokens = countTokens(request.input) + countTokens(request.instructions ?? '');
  return { ok: true, plan: { format, streamFormat, characters, durationMs, usage: { inputTokens, outputTokens: audioTokens(durationMs) } } };
}

function isSpeechFormat(value: string): value is SpeechAudioFormat {
  return (SPEECH_AUDIO_FORMATS as readonly string[]).includes(value);
}
