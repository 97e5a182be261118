import type { SpeechAudioFormat } from '../core/simulated-audio';
import type { PacedFrame } from '../core/stream-pacer';
import { tokenIds } from '../core/token-counter';
import type { TranscriptionPlan, TranscriptionUsage, TranscriptSegment } from './openai-audio-planner';

/** The Content-Type OpenAI answers each speech format with. */
export const SPEECH_CONTENT_TYPES: Readonly<Record<SpeechAudioFormat, string>> = {
  mp3: 'audio/mpeg',
  opus: 'audio/opus',
  aac: 'audio/aac',
  flac: 'audio/flac',
  wav: 'audio/wav',
  pcm: 'audio/pcm',
};

export const TEXT_CONTENT_TYPE = 'text/plain; charset=utf-8';

export interface RenderedAnswer {
  contentType: string;
  body: string;
}

/**
 * A transcription or translation answer in its `response_format`: `json` (`{text, usage}`;
 * translations `{text}`), `verbose_json`, or the text itself as `text/plain` (`text`, SubRip
 * `srt`, WebVTT `vtt`). `withUsage` false leaves `usage` out of the JSON answers.
 */
export function transcriptionAnswer(plan: TranscriptionPlan, withUsage: boolean): RenderedAnswer {
  const usage = withUsage && plan.usage !== undefined ? { usage: usageBody(plan.usage) } : {};
  switch (plan.format) {
    case 'json':
      return json({ text: plan.text, ...usage });
    case 'verbose_json':
      return json({
        task: plan.task,
        language: plan.language,
        duration: plan.durationMs / 1000,
        text: plan.text,
        ...(plan.includeSegments && { segments: plan.segments.map((segment) => segmentBody(segment, plan.temperature)) }),
        ...(plan.words !== undefined && { words: plan.words.map((w) => ({ word: w.word, start: w.startMs / 1000, end: w.endMs / 1000 })) }),
        ...usage,
      });
    case 'text':
      return { contentType: TEXT_CONTENT_TYPE, body: `${plan.text}\n` };
    case 'srt':
      return { contentType: TEXT_CONTENT_TYPE, body: plan.segments.map((s, i) => `${i + 1}\n${timestamp(s.startMs, ',')} --> ${timestamp(s.endMs, ',')}\n${s.text}\n\n`).join('') };
    case 'vtt':
      return { contentType: TEXT_CONTENT_TYPE, body: `WEBVTT\n\n${plan.segments.map((s) => `${timestamp(s.startMs, '.')} --> ${timestamp(s.endMs, '.')}\n${s.text}\n\n`).join('')}` };
  }
}

function json(body: unknown): RenderedAnswer {
  return { contentType: 'application/json', body: JSON.stringify(body) };
}

export function usageBody(usage: TranscriptionUsage): unknown {
  if (usage.type === 'duration') return { type: 'duration', seconds: usage.seconds };
  return {
    type: 'tokens',
    input_tokens: usage.textTokens + usage.audioTokens,
    input_token_details: { text_tokens: usage.textTokens, audio_tokens: usage.audioTokens },
    output_tokens: usage.outputTokens,
    total_tokens: usage.textTokens + usage.audioTokens + usage.outputTokens,
  };
}

/** A Whisper segment; its text starts with a space, as Whisper's do, and its confidence figures are fixed. */
function segmentBody(segment: TranscriptSegment, temperature: number): unknown {
  return {
    id: segment.id,
    seek: segment.startMs / 10,
    start: segment.startMs / 1000,
    end: segment.endMs / 1000,
    text: ` ${segment.text}`,
    tokens: tokenIds(` ${segment.text}`),
    temperature,
    avg_logprob: -0.25,
    compression_ratio: 1.2,
    no_speech_prob: 0.01,
  };
}

/** `HH:MM:SS,mmm` (SubRip) or `HH:MM:SS.mmm` (WebVTT). */
export function timestamp(ms: number, separator: ',' | '.'): string {
  const pad = (value: number, width = 2): string => String(value).padStart(width, '0');
  const hours = Math.floor(ms / 3_600_000);
  const minutes = Math.floor(ms / 60_000) % 60;
  const seconds = Math.floor(ms / 1000) % 60;
  return `${pad(hours)}:${pad(minutes)}:${pad(seconds)}${separator}${pad(ms % 1000, 3)}`;
}

/** Audio bytes per `speech.audio.delta` event, and per piece of a binary speech answer. */
export const SPEECH_SSE_CHUNK_BYTES = 8192;

/**
 * Speech as OpenAI sends its binary answer (chunked transfer encoding, the audio as it is made):
 * pieces of 8 KiB, each a paced step, as frames of one byte per char (`startBinaryStream`).
 */
export function speechAudioFrames(audio: Buffer): PacedFrame[] {
  const frames: PacedFrame[] = [];
  for (let at = 0, step = 0; at < audio.length; at += SPEECH_SSE_CHUNK_BYTES, step++) {
    frames.push({ text: audio.subarray(at, at + SPEECH_SSE_CHUNK_BYTES).toString('latin1'), tokenStep: step });
  }
  return frames;
}

/**
 * Speech as OpenAI streams it with `stream_format: "sse"`: the encoded audio in base64
 * `speech.audio.delta` events (each a paced step), then `speech.audio.done` with the usage
 * (left out when `usage` is undefined).
 */
export function speechSseFrames(audio: Buffer, usage: { inputTokens: number; outputTokens: number } | undefined): PacedFrame[] {
  const frames: PacedFrame[] = [];
  for (let at = 0, step = 0; at < audio.length; at += SPEECH_SSE_CHUNK_BYTES, step++) {
    const chunk = audio.subarray(at, at + SPEECH_SSE_CHUNK_BYTES).toString('base64');
    frames.push({ text: `data: ${JSON.stringify({ type: 'speech.audio.delta', audio: chunk })}\n\n`, tokenStep: step });
  }
  const done =
    usage === undefined
      ? { type: 'speech.audio.done' }
      : { type: 'speech.audio.done', usage: { input_tokens: usage.inputTokens, output_tokens: usage.outputTokens, total_tokens: usage.inputTokens + usage.outputTokens } };
  frames.push({ text: `data: ${JSON.stringify(done)}\n\n` });
  return frames;
}
