import type { chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { countTextTokens } from './text-tokens';

/**
 * The largest audio answer read from a provider (speech, and a transcript's text): far above what
 * 4096 characters of speech make in any format (about 20 MB as 24 kHz PCM), so only a broken or
 * hostile server reaches it.
 */
export const MAX_AUDIO_ANSWER_BYTES = 64 * 1024 * 1024;

const TEXT_PLAIN = 'text/plain; charset=utf-8';
const APPLICATION_JSON = 'application/json';

/** What a provider reports it billed for a transcription. */
export type TranscriptUsage = { type: 'tokens'; inputTokens: number; outputTokens: number; totalTokens: number } | { type: 'duration'; seconds: number };

/** A JSON transcript as a provider's answer carries it (`json`, `verbose_json`). */
export interface JsonTranscript {
  text: string;
  /** verbose_json's length of the audio, in seconds. */
  durationSeconds?: number | undefined;
  usage?: TranscriptUsage | undefined;
}

/** A provider's transcription answer: its body, and what a JSON body says (undefined: a text answer, `srt`, `vtt`). */
export interface ProviderTranscript {
  body: string;
  json?: JsonTranscript | undefined;
}

/**
 * The canonical answer to a transcription or translation in the format the client asked for: a
 * JSON answer's text as it came (`json`, `verbose_json`), the transcript's text alone for `text`
 * (asked of the provider as `json`), subtitles as they came (`srt`, `vtt`).
 *
 * Usage is the provider's tokens when it reports them (token-billed models); otherwise the
 * gateway's count, marked estimated: the request's prompt as input, the transcript's text (a
 * subtitle file's cue text) as output. `audioMs` is what the provider reports (`usage.seconds`,
 * else verbose_json's `duration`), else the longer of the gateway's reading of the file
 * (`durationMs`, 0 when unknown) and a subtitle file's last cue end, else 0.
 */
export function transcriptionResponse(request: chatv1.AudioTranscriptionRequest, answer: ProviderTranscript, provider: string): chatv1.AudioTranscriptionResponse {
  const { json } = answer;
  if (request.responseFormat === 'text' && json === undefined) {
    throw new GatewayError('upstream_error', `The provider "${provider}" returned a malformed transcription (not JSON).`, { provider });
  }
  const body = request.responseFormat === 'text' && json !== undefined ? json.text : plainJson(request, answer);
  const contentType = json !== undefined && request.responseFormat !== 'text' ? APPLICATION_JSON : TEXT_PLAIN;
  const text = json?.text ?? cueText(answer.body);
  return { body, contentType, usage: transcriptUsage(request, json?.usage, text), audioMs: audioMsOf(request, answer) };
}

/**
 * A JSON answer's body as the client asked for it: a translation asked as `json` (or nothing) was
 * asked of the provider as `verbose_json` for its length, and is answered `{"text": …}`, as
 * OpenAI answers it.
 */
function plainJson(request: chatv1.AudioTranscriptionRequest, answer: ProviderTranscript): string {
  const asJson = request.responseFormat === undefined || request.responseFormat === 'json';
  return request.translate && asJson && answer.json !== undefined ? JSON.stringify({ text: answer.json.text }) : answer.body;
}

function transcriptUsage(request: chatv1.AudioTranscriptionRequest, reported: TranscriptUsage | undefined, text: string): chatv1.Usage {
  if (reported?.type === 'tokens') {
    return { promptTokens: reported.inputTokens, completionTokens: reported.outputTokens, totalTokens: reported.totalTokens, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, estimated: false };
  }
  const promptTokens = countTextTokens(request.prompt ?? '');
  const completionTokens = countTextTokens(text);
  return { promptTokens, completionTokens, totalTokens: promptTokens + completionTokens, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, estimated: true };
}

/**
 * The audio's length, held to 2^53 − 1 ms as every count a provider reports is: a larger one (a
 * provider's `duration` of 1e16 s) is no whole number a usage record can carry, and the request
 * would go unbilled (its record dead-lettered).
 */
function audioMsOf(request: chatv1.AudioTranscriptionRequest, answer: ProviderTranscript): number {
  return Math.min(audioLengthMs(request, answer), Number.MAX_SAFE_INTEGER);
}

function audioLengthMs(request: chatv1.AudioTranscriptionRequest, answer: ProviderTranscript): number {
  const usage = answer.json?.usage;
  if (usage?.type === 'duration') return Math.round(usage.seconds * 1000);
  const duration = answer.json?.durationSeconds;
  if (duration !== undefined) return Math.round(duration * 1000);
  // Neither is the provider's word: the file's header is the client's, so a subtitle file's last
  // cue, which is where the provider heard speech, bills the audio when it runs past the header.
  const cueEnd = answer.json === undefined ? (lastCueEndMs(answer.body) ?? 0) : 0;
  return Math.max(request.durationMs, cueEnd);
}

// `00:01:02,345 --> 00:01:04,000` (SRT) or `01:02.345 --> 01:04.000` (WebVTT, hours optional).
const CUE_TIMING = /(?:(\d+):)?(\d{1,2}):(\d{2})[.,](\d{1,3})[ \t]*-->[ \t]*(?:(\d+):)?(\d{1,2}):(\d{2})[.,](\d{1,3})/g;

/** The latest end time of a subtitle file's cues, in milliseconds; undefined when it has none. */
export function lastCueEndMs(subtitles: string): number | undefined {
  let last: number | undefined;
  for (const match of subtitles.matchAll(CUE_TIMING)) {
    const [hours = '0', minutes = '0', seconds = '0', fraction = '0'] = match.slice(5, 9);
    const ms = ((Number(hours) * 60 + Number(minutes)) * 60 + Number(seconds)) * 1000 + Number(fraction.padEnd(3, '0'));
    last = Math.max(last ?? 0, ms);
  }
  return last;
}

/** The spoken text of a subtitle file: its lines without the header, cue numbers, timings and notes. A text without cues is itself. */
export function cueText(subtitles: string): string {
  if (lastCueEndMs(subtitles) === undefined) return subtitles;
  const blocks = subtitles.replace(/\r\n?/g, '\n').split(/\n{2,}/);
  const lines: string[] = [];
  for (const block of blocks) {
    const rows = block.split('\n');
    const timing = rows.findIndex((row) => row.includes('-->'));
    if (timing === -1) continue;
    lines.push(...rows.slice(timing + 1).filter((row) => row.trim() !== ''));
  }
  return lines.join('\n');
}

/**
 * The canonical answer to a speech request, in pieces as the provider's audio arrives: the first
 * carries the audio's media type (the provider's, else the format's), every piece the bytes that
 * came, and a last one the characters spoken (the input's Unicode code points, as OpenAI counts
 * them for billing) and the input's tokens by the gateway's count, marked estimated (speech models
 * report no usage). A JSON or text answer in place of audio is malformed before any piece; an
 * answer without audio is malformed once it has ended.
 */
export async function* speechResponse(
  request: chatv1.SpeechRequest,
  audio: AsyncIterable<Buffer>,
  contentType: string | undefined,
  fallbackType: string,
  provider: string,
): AsyncGenerator<chatv1.SpeechResponse> {
  const mediaType = contentType?.split(';')[0]?.trim().toLowerCase() ?? '';
  if (mediaType === APPLICATION_JSON || mediaType.startsWith('text/')) throw malformedSpeech(provider, `${mediaType} instead of audio`);
  let first = true;
  for await (const piece of audio) {
    if (piece.length === 0) continue;
    yield { audio: piece, contentType: first ? (contentType ?? fallbackType) : '', characters: 0 };
    first = false;
  }
  if (first) throw malformedSpeech(provider, 'no audio');
  const promptTokens = countTextTokens(request.input);
  yield {
    audio: Buffer.alloc(0),
    contentType: '',
    usage: { promptTokens, completionTokens: 0, totalTokens: promptTokens, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, estimated: true },
    characters: codePoints(request.input),
  };
}

function malformedSpeech(provider: string, what: string): GatewayError {
  return new GatewayError('upstream_error', `The provider "${provider}" returned a malformed speech answer (${what}).`, { provider });
}

/** A text's length in Unicode code points (an emoji of one code point counts 1; a UTF-16 length would count 2). */
export function codePoints(text: string): number {
  return [...text].length;
}
