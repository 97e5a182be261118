import { synthesizeSpeech } from '../core/simulated-audio';
import { countTokens } from '../core/token-counter';
import type { FormFields } from '../http/multipart-form';
import { isGpt4oTranscribeModel, isWhisperModel, planSpeech, planTranscription, transcriptSegments } from './openai-audio-planner';

const wav = (durationMs: number) => ({ name: 'clip.wav', type: 'audio/wav', bytes: synthesizeSpeech('wav', durationMs) });
const form = (fields: FormFields = {}): FormFields => ({ file: wav(2500), model: 'whisper-1', ...fields });

function planned(fields: FormFields, task: 'transcribe' | 'translate' = 'transcribe') {
  const result = planTranscription(fields, task);
  if (!result.ok) throw new Error(result.problem.message);
  return result.plan;
}

describe('model families', () => {
  it.each([
    ['whisper-1', true, false],
    ['my-whisper-deployment', true, false],
    ['gpt-4o-transcribe', false, true],
    ['gpt-4o-mini-transcribe-2025-12-15', false, true],
    ['gpt-4o-transcribe-diarize', false, true],
    ['speech-to-text', false, false],
  ])('%s: whisper %s, gpt-4o-transcribe %s', (model, whisper, gpt4o) => {
    expect(isWhisperModel(model)).toBe(whisper);
    expect(isGpt4oTranscribeModel(model)).toBe(gpt4o);
  });
});

describe('planTranscription', () => {
  it("transcribes a WAV with its length in the text, billed by Whisper's whole seconds", () => {
    expect(planned(form())).toEqual({
      task: 'transcribe',
      format: 'json',
      language: 'english',
      durationMs: 2500,
      text: 'Simulated transcript of clip.wav (2.5 seconds of WAV audio).',
      segments: [{ id: 0, startMs: 0, endMs: 2500, text: 'Simulated transcript of clip.wav (2.5 seconds of WAV audio).' }],
      includeSegments: true,
      words: undefined,
      temperature: 0,
      usage: { type: 'duration', seconds: 3 },
    });
  });

  it('bills token models by the prompt, 10 audio tokens a second and the transcript', () => {
    const plan = planned(form({ model: 'gpt-4o-transcribe', prompt: 'Names: Ada, Grace.', file: wav(12_340) }));
    expect(plan.usage).toEqual({ type: 'tokens', textTokens: countTokens('Names: Ada, Grace.'), audioTokens: 124, outputTokens: countTokens(plan.text) });
  });

  it('makes one segment per 5 s, and takes a file that is not a WAV at 16 kB/s without naming a length', () => {
    const plan = planned(form({ file: { name: 'talk.mp3', type: 'audio/mpeg', bytes: new Uint8Array(16_000 * 12) } }));
    expect(plan.durationMs).toBe(12_000);
    expect(plan.segments.map((s) => [s.startMs, s.endMs, s.text])).toEqual([
      [0, 5000, 'Simulated transcript of talk.mp3.'],
      [5000, 10_000, 'Part 2 of 3.'],
      [10_000, 12_000, 'Part 3 of 3.'],
    ]);
    expect(plan.text).toBe('Simulated transcript of talk.mp3. Part 2 of 3. Part 3 of 3.');
  });

  it('gives verbose_json words spread over their segment, and segments unless only words are asked for', () => {
    const both = planned(form({ response_format: 'verbose_json', 'timestamp_granularities[]': ['word', 'segment'], file: wav(1000) }));
    expect(both.includeSegments).toBe(true);
    expect(both.words?.map((w) => w.word)).toEqual(['Simulated', 'transcript', 'of', 'clip.wav', '1', 'seconds', 'of', 'WAV', 'audio']);
    expect(both.words?.[0]).toEqual({ word: 'Simulated', startMs: 0, endMs: 111 });
    expect(both.words?.[8]?.endMs).toBe(1000);
    const wordsOnly = planned(form({ response_format: 'verbose_json', 'timestamp_granularities[]': 'word' }));
    expect(wordsOnly.includeSegments).toBe(false);
    expect(planned(form({ 'timestamp_granularities[]': ['word'] })).words).toBeUndefined();
  });

  it('names the language verbose_json reports, and translates into English without usage', () => {
    expect(planned(form({ language: 'FR' })).language).toBe('french');
    expect(planned(form({ language: 'xx' })).language).toBe('xx');
    const translated = planned(form({ language: 'de' }), 'translate');
    expect(translated).toMatchObject({ task: 'translate', language: 'english', usage: undefined });
    expect(translated.text).toBe('Simulated translation of clip.wav (2.5 seconds of WAV audio).');
  });

  it.each([
    ['no file', { file: undefined }, 'file', 'missing_required_parameter'],
    ['a text field for the file', { file: 'clip.wav' }, 'file', 'invalid_type'],
    ['no model', { model: undefined }, 'model', 'missing_required_parameter'],
    ['an empty model', { model: '' }, 'model', 'invalid_value'],
    ['an extension OpenAI does not take', { file: { name: 'clip.aiff', type: 'audio/aiff', bytes: new Uint8Array(5000) } }, 'file', 'invalid_value'],
    ['an empty file', { file: { name: 'clip.mp3', type: 'audio/mpeg', bytes: new Uint8Array(0) } }, 'file', 'audio_too_short'],
    ['a WAV under 0.1 s', { file: wav(99) }, 'file', 'audio_too_short'],
    ['an unknown response_format', { response_format: 'xml' }, 'response_format', 'invalid_value'],
    ['srt from gpt-4o-transcribe', { model: 'gpt-4o-transcribe', response_format: 'srt' }, 'response_format', 'unsupported_value'],
    ['verbose_json from gpt-4o-mini-transcribe', { model: 'gpt-4o-mini-transcribe', response_format: 'verbose_json' }, 'response_format', 'unsupported_value'],
    ['a stream from gpt-4o-transcribe', { model: 'gpt-4o-transcribe', stream: 'true' }, 'stream', 'unsupported_parameter'],
    ['a language not in ISO-639-1', { language: 'english' }, 'language', 'invalid_language_format'],
    ['a temperature above 1', { temperature: '1.5' }, 'temperature', 'decimal_above_max_value'],
    ['a temperature that is no number', { temperature: 'warm' }, 'temperature', 'invalid_type'],
    ['an unknown granularity', { 'timestamp_granularities[]': ['word', 'sentence'] }, 'timestamp_granularities[]', 'invalid_value'],
  ])('refuses %s', (_name, fields, param, code) => {
    const result = planTranscription(form(fields as FormFields), 'transcribe');
    expect(result).toEqual({ ok: false, problem: { message: expect.any(String), param, code } });
  });

  it('refuses translations from a model other than Whisper', () => {
    expect(planTranscription(form({ model: 'gpt-4o-transcribe' }), 'translate')).toMatchObject({ ok: false, problem: { param: 'model' } });
    // whisper-1 ignores `stream`, and translations take no language
    expect(planTranscription(form({ stream: 'true', language: 'english' }), 'translate').ok).toBe(true);
    expect(planTranscription(form({ stream: 'true' }), 'transcribe').ok).toBe(true);
  });
});

describe('transcriptSegments', () => {
  it('ends the last segment at the audio’s end', () => {
    expect(transcriptSegments('transcribe', 'a  b.wav', 5001, true).map((s) => [s.startMs, s.endMs])).toEqual([
      [0, 5000],
      [5000, 5001],
    ]);
    expect(transcriptSegments('transcribe', 'a  b.wav', 5001, true)[0]?.text).toBe('Simulated transcript of a b.wav (5.001 seconds of WAV audio).');
  });
});

describe('planSpeech', () => {
  const speech = { model: 'gpt-4o-mini-tts', input: 'Hello there.', voice: 'alloy' };

  it('plans 60 ms a character (code points), faster with speed, at most a minute, as mp3 by default', () => {
    expect(planSpeech(speech, speech.model)).toEqual({
      ok: true,
      plan: { format: 'mp3', streamFormat: 'audio', characters: 12, durationMs: 720, usage: { inputTokens: countTokens('Hello there.'), outputTokens: 8 } },
    });
    expect(planSpeech({ ...speech, input: '👋🏽 hi', speed: 2, response_format: 'wav' }, speech.model)).toMatchObject({ ok: true, plan: { format: 'wav', characters: 5, durationMs: 150 } });
    expect(planSpeech({ ...speech, input: 'a'.repeat(4096), speed: 0.25 }, speech.model)).toMatchObject({ ok: true, plan: { characters: 4096, durationMs: 60_000 } });
    expect(planSpeech({ ...speech, voice: { id: 'voice_123' }, instructions: 'Calm.', stream_format: 'sse' }, speech.model)).toMatchObject({
      ok: true,
      plan: { streamFormat: 'sse', usage: { inputTokens: countTokens('Hello there.') + countTokens('Calm.') } },
    });
  });

  it.each([
    ['an empty input', { input: '' }, 'input', 'string_below_min_length'],
    ['an input over 4096 characters', { input: 'a'.repeat(4097) }, 'input', 'string_above_max_length'],
    ['an unknown voice', { voice: 'robot' }, 'voice', 'invalid_value'],
    ['an unknown format', { response_format: 'ogg' }, 'response_format', 'invalid_value'],
    ['a speed below 0.25', { speed: 0.2 }, 'speed', 'decimal_below_min_value'],
    ['a speed above 4', { speed: 4.5 }, 'speed', 'decimal_above_max_value'],
    ['an unknown stream_format', { stream_format: 'chunks' }, 'stream_format', 'invalid_value'],
  ])('refuses %s', (_name, patch, param, code) => {
    expect(planSpeech({ ...speech, ...patch }, speech.model)).toEqual({ ok: false, problem: { message: expect.any(String), param, code } });
  });

  it('refuses SSE from tts-1 and tts-1-hd', () => {
    expect(planSpeech({ ...speech, stream_format: 'sse' }, 'tts-1-hd')).toMatchObject({ ok: false, problem: { param: 'stream_format', code: 'unsupported_value' } });
    expect(planSpeech({ ...speech, stream_format: 'audio' }, 'tts-1').ok).toBe(true);
  });
});
