import type { chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { codePoints, cueText, lastCueEndMs, speechResponse, transcriptionResponse } from './audio-response';
import { countTextTokens } from './text-tokens';

const request = (fields: Partial<chatv1.AudioTranscriptionRequest> = {}): chatv1.AudioTranscriptionRequest => ({
  model: 'm',
  file: Buffer.alloc(0),
  filename: 'a.mp3',
  contentType: 'audio/mpeg',
  translate: false,
  extraFields: [],
  durationMs: 0,
  ...fields,
});

describe('subtitle files', () => {
  it('end at their latest cue, whatever the notation: SRT commas, WebVTT dots, hours left out, short fractions', () => {
    expect(lastCueEndMs('1\r\n00:00:00,000 --> 00:00:04,200\r\nHello\r\n\r\n2\r\n00:00:04,200 --> 00:01:02,345\r\nthere\r\n')).toBe(62_345);
    expect(lastCueEndMs('WEBVTT\n\n00:01.000 --> 00:03.5 align:start\nHi\n\n01:00:00.000 --> 01:00:00.050\nlate\n')).toBe(3_600_050);
    // Cues out of order: the latest end counts, not the last written.
    expect(lastCueEndMs('00:00:09,000 --> 00:00:10,000\nb\n\n00:00:01,000 --> 00:00:02,000\na\n')).toBe(10_000);
    expect(lastCueEndMs('no cues here')).toBeUndefined();
    expect(lastCueEndMs('')).toBeUndefined();
  });

  it('speak the text of their cues, without the header, numbers, timings or notes', () => {
    expect(cueText('WEBVTT\n\nNOTE made by a model\n\n1\n00:00.000 --> 00:02.000\nFirst line\nsecond line\n\n00:02.000 --> 00:03.000\nThird\n')).toBe('First line\nsecond line\nThird');
    expect(cueText('1\r\n00:00:00,000 --> 00:00:01,000\r\nHello\r\n')).toBe('Hello');
    expect(cueText('plain words')).toBe('plain words');
  });
});

describe('transcriptionResponse', () => {
  it("serves text from the JSON the provider was asked for, and refuses a text answer where JSON was asked", () => {
    const answer = transcriptionResponse(request({ responseFormat: 'text' }), { body: '{"text":"hi there"}', json: { text: 'hi there', usage: { type: 'duration', seconds: 1.2 } } }, 'p');
    expect(answer).toMatchObject({ body: 'hi there', contentType: 'text/plain; charset=utf-8', audioMs: 1_200 });
    expect(() => transcriptionResponse(request({ responseFormat: 'text' }), { body: 'hi there' }, 'p')).toThrow(GatewayError);
  });

  it('bills the provider’s seconds over verbose duration over the file’s length, and a JSON answer never by cues', () => {
    const json = (usage?: { type: 'duration'; seconds: number }, durationSeconds?: number) => ({ body: '{}', json: { text: '00:00:01,000 --> 00:00:09,000', usage, durationSeconds } });
    expect(transcriptionResponse(request({ durationMs: 4_000 }), json({ type: 'duration', seconds: 3 }, 2.5), 'p').audioMs).toBe(3_000);
    expect(transcriptionResponse(request({ durationMs: 4_000 }), json(undefined, 2.5), 'p').audioMs).toBe(2_500);
    expect(transcriptionResponse(request({ durationMs: 4_000 }), json(), 'p').audioMs).toBe(4_000);
    expect(transcriptionResponse(request(), json(), 'p').audioMs).toBe(0);
    // A length no usage record could carry is held to the largest whole number it can, as token counts are.
    expect(transcriptionResponse(request(), json({ type: 'duration', seconds: 2e16 }), 'p').audioMs).toBe(Number.MAX_SAFE_INTEGER);
    expect(transcriptionResponse(request(), json(undefined, 1e300), 'p').audioMs).toBe(Number.MAX_SAFE_INTEGER);
    expect(transcriptionResponse(request({ responseFormat: 'srt' }), { body: '1\n00:00:01,000 --> 00:00:09,000\nx\n' }, 'p').audioMs).toBe(9_000);
  });

  it('bills a subtitle answer at its last cue when the file’s header says less (a header is the client’s word), and at the header when it says more', () => {
    const srt = { body: '1\n00:00:00,000 --> 00:09:59,000\nten minutes of talk\n' };
    // A header forged to read 4 ms of a ten-minute file.
    expect(transcriptionResponse(request({ responseFormat: 'srt', durationMs: 4 }), srt, 'p').audioMs).toBe(599_000);
    // Silence after the last words: the header's length, which is what was sent.
    expect(transcriptionResponse(request({ responseFormat: 'srt', durationMs: 600_000 }), srt, 'p').audioMs).toBe(600_000);
    expect(transcriptionResponse(request({ responseFormat: 'vtt', durationMs: 2_000 }), { body: 'WEBVTT\n\nno cues' }, 'p').audioMs).toBe(2_000);
  });

  it("takes a token-billed model's tokens as reported, and estimates the others from the prompt and the text", () => {
    const tokens = transcriptionResponse(request({ prompt: 'ignored' }), { body: '{}', json: { text: 'x', usage: { type: 'tokens', inputTokens: 30, outputTokens: 5, totalTokens: 35 } } }, 'p');
    expect(tokens.usage).toEqual({ promptTokens: 30, completionTokens: 5, totalTokens: 35, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, estimated: false });
    const estimate = transcriptionResponse(request({ prompt: 'Glossary: Kubernetes' }), { body: '{}', json: { text: 'We deployed to Kubernetes today.' } }, 'p');
    expect(estimate.usage).toMatchObject({ promptTokens: countTextTokens('Glossary: Kubernetes'), completionTokens: countTextTokens('We deployed to Kubernetes today.'), estimated: true });
  });
});

describe('speechResponse', () => {
  const speech: chatv1.SpeechRequest = { model: 'm', input: 'e\u0301 👩‍💻', voice: 'alloy', extraJson: '' };

  /** The audio as a body read in `chunks`. */
  async function* body(...chunks: Buffer[]): AsyncGenerator<Buffer> {
    for (const chunk of chunks) yield chunk;
  }
  const pieces = async (audio: AsyncIterable<Buffer>, contentType: string | undefined, fallbackType = 'audio/mpeg'): Promise<chatv1.SpeechResponse[]> => {
    const out: chatv1.SpeechResponse[] = [];
    for await (const piece of speechResponse(speech, audio, contentType, fallbackType, 'p')) out.push(piece);
    return out;
  };

  it('counts code points: a combining accent and each part of a joined emoji count, a surrogate pair once', async () => {
    // e, U+0301, space, 👩 (a pair), ZWJ, 💻 (a pair): 6 code points, 8 UTF-16 units.
    expect(speech.input.length).toBe(8);
    expect(codePoints(speech.input)).toBe(6);
    expect((await pieces(body(Buffer.from([1])), 'audio/mpeg')).at(-1)?.characters).toBe(6);
  });

  it('answers a piece per chunk of the body: the media type on the first, the usage and characters on the last, empty chunks skipped', async () => {
    const answer = await pieces(body(Buffer.from([1, 2]), Buffer.alloc(0), Buffer.from([3])), 'audio/wav');
    const promptTokens = countTextTokens(speech.input);
    expect(answer).toEqual([
      { audio: Buffer.from([1, 2]), contentType: 'audio/wav', characters: 0 },
      { audio: Buffer.from([3]), contentType: '', characters: 0 },
      {
        audio: Buffer.alloc(0),
        contentType: '',
        characters: 6,
        usage: { promptTokens, completionTokens: 0, totalTokens: promptTokens, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, estimated: true },
      },
    ]);
  });

  it("keeps the provider's media type with its parameters, falls back to the format's, and refuses text or JSON as audio before reading any", async () => {
    expect((await pieces(body(Buffer.from([1])), 'audio/L16; rate=24000', 'audio/pcm'))[0]?.contentType).toBe('audio/L16; rate=24000');
    expect((await pieces(body(Buffer.from([1])), undefined, 'audio/ogg'))[0]?.contentType).toBe('audio/ogg');
    let read = false;
    async function* unread(): AsyncGenerator<Buffer> {
      read = true;
      yield Buffer.from('{}');
    }
    await expect(pieces(unread(), 'application/json; charset=utf-8')).rejects.toThrow(/application\/json instead of audio/);
    await expect(pieces(unread(), 'text/html')).rejects.toThrow(/text\/html instead of audio/);
    expect(read).toBe(false);
  });

  it('refuses an answer without audio once it has ended, having answered no piece', async () => {
    const answered: chatv1.SpeechResponse[] = [];
    const failure = await (async () => {
      for await (const piece of speechResponse(speech, body(Buffer.alloc(0)), 'audio/mpeg', 'audio/mpeg', 'p')) answered.push(piece);
    })().catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(GatewayError);
    expect(failure).toMatchObject({ kind: 'upstream_error', message: 'The provider "p" returned a malformed speech answer (no audio).' });
    expect(answered).toEqual([]);
  });
});
