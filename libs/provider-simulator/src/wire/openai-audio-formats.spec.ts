import type { TranscriptionPlan } from './openai-audio-planner';
import { SPEECH_SSE_CHUNK_BYTES, speechAudioFrames, speechSseFrames, timestamp, transcriptionAnswer } from './openai-audio-formats';

const plan = (patch: Partial<TranscriptionPlan> = {}): TranscriptionPlan => ({
  task: 'transcribe',
  format: 'json',
  language: 'english',
  durationMs: 7250,
  text: 'Simulated transcript of a.wav. Part 2 of 2.',
  segments: [
    { id: 0, startMs: 0, endMs: 5000, text: 'Simulated transcript of a.wav.' },
    { id: 1, startMs: 5000, endMs: 7250, text: 'Part 2 of 2.' },
  ],
  includeSegments: true,
  words: undefined,
  temperature: 0,
  usage: { type: 'duration', seconds: 8 },
  ...patch,
});

describe('transcriptionAnswer', () => {
  it('answers json with the text and usage (tokens usage in its long form), or without usage when told', () => {
    expect(transcriptionAnswer(plan(), true)).toEqual({ contentType: 'application/json', body: JSON.stringify({ text: plan().text, usage: { type: 'duration', seconds: 8 } }) });
    expect(JSON.parse(transcriptionAnswer(plan({ usage: { type: 'tokens', textTokens: 2, audioTokens: 73, outputTokens: 12 } }), true).body).usage).toEqual({
      type: 'tokens',
      input_tokens: 75,
      input_token_details: { text_tokens: 2, audio_tokens: 73 },
      output_tokens: 12,
      total_tokens: 87,
    });
    expect(JSON.parse(transcriptionAnswer(plan(), false).body)).toEqual({ text: plan().text });
    expect(JSON.parse(transcriptionAnswer(plan({ task: 'translate', usage: undefined }), true).body)).toEqual({ text: plan().text });
  });

  it("answers verbose_json with Whisper's segments and the words asked for", () => {
    const words = [{ word: 'Simulated', startMs: 0, endMs: 1250 }];
    const body = JSON.parse(transcriptionAnswer(plan({ format: 'verbose_json', words, temperature: 0.2 }), true).body);
    expect(body).toEqual({
      task: 'transcribe',
      language: 'english',
      duration: 7.25,
      text: plan().text,
      segments: [
        { id: 0, seek: 0, start: 0, end: 5, text: ' Simulated transcript of a.wav.', tokens: expect.any(Array), temperature: 0.2, avg_logprob: -0.25, compression_ratio: 1.2, no_speech_prob: 0.01 },
        { id: 1, seek: 500, start: 5, end: 7.25, text: ' Part 2 of 2.', tokens: expect.any(Array), temperature: 0.2, avg_logprob: -0.25, compression_ratio: 1.2, no_speech_prob: 0.01 },
      ],
      words: [{ word: 'Simulated', start: 0, end: 1.25 }],
      usage: { type: 'duration', seconds: 8 },
    });
    expect(Object.keys(body)).toEqual(['task', 'language', 'duration', 'text', 'segments', 'words', 'usage']);
    expect(JSON.parse(transcriptionAnswer(plan({ format: 'verbose_json', includeSegments: false }), true).body)).not.toHaveProperty('segments');
  });

  it('answers text, SubRip and WebVTT as text/plain', () => {
    expect(transcriptionAnswer(plan({ format: 'text' }), true)).toEqual({ contentType: 'text/plain; charset=utf-8', body: `${plan().text}\n` });
    expect(transcriptionAnswer(plan({ format: 'srt' }), true).body).toBe(
      '1\n00:00:00,000 --> 00:00:05,000\nSimulated transcript of a.wav.\n\n2\n00:00:05,000 --> 00:00:07,250\nPart 2 of 2.\n\n',
    );
    expect(transcriptionAnswer(plan({ format: 'vtt' }), true).body).toBe('WEBVTT\n\n00:00:00.000 --> 00:00:05.000\nSimulated transcript of a.wav.\n\n00:00:05.000 --> 00:00:07.250\nPart 2 of 2.\n\n');
  });
});

describe('timestamp', () => {
  it('writes hours, minutes, seconds and milliseconds', () => {
    expect(timestamp(3_723_004, ',')).toBe('01:02:03,004');
    expect(timestamp(59_999, '.')).toBe('00:00:59.999');
  });
});

describe('speechSseFrames', () => {
  it('carries the audio in base64 deltas, one paced step each, then done with the usage', () => {
    const audio = Buffer.alloc(20_000, 7);
    const frames = speechSseFrames(audio, { inputTokens: 3, outputTokens: 50 });
    expect(frames).toHaveLength(4);
    const events = frames.map((f) => JSON.parse(f.text.replace(/^data: /, '')));
    expect(Buffer.concat(events.slice(0, 3).map((e) => Buffer.from(e.audio, 'base64')))).toEqual(audio);
    expect(events.slice(0, 3).every((e) => e.type === 'speech.audio.delta')).toBe(true);
    expect(frames.map((f) => f.tokenStep)).toEqual([0, 1, 2, undefined]);
    expect(events[3]).toEqual({ type: 'speech.audio.done', usage: { input_tokens: 3, output_tokens: 50, total_tokens: 53 } });
    expect(frames.every((f) => f.text.endsWith('\n\n'))).toBe(true);
    expect(JSON.parse(speechSseFrames(audio, undefined).at(-1)?.text.slice(6) ?? '')).toEqual({ type: 'speech.audio.done' });
  });
});

describe('speechAudioFrames', () => {
  it('cuts the audio into 8 KiB pieces, one paced step each, each byte one char, losing none', () => {
    const audio = Buffer.from(Array.from({ length: 20_000 }, (_, i) => i % 256));
    const frames = speechAudioFrames(audio);
    expect(frames.map((f) => [f.text.length, f.tokenStep])).toEqual([
      [SPEECH_SSE_CHUNK_BYTES, 0],
      [SPEECH_SSE_CHUNK_BYTES, 1],
      [20_000 - 2 * SPEECH_SSE_CHUNK_BYTES, 2],
    ]);
    expect(Buffer.concat(frames.map((f) => Buffer.from(f.text, 'latin1')))).toEqual(audio);
    expect(speechAudioFrames(Buffer.alloc(0))).toEqual([]);
  });
});
