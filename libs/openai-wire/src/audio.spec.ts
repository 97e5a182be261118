import { wavClip } from '@openrouter/provider-simulator';
import { codePoints, isJsonTranscription, MAX_SPEECH_INPUT_CHARS, parseSpeechRequest, parseTranscriptionRequest, speechContentType } from './audio';
import { markFormBody, type AudioUpload } from './audio-upload';
import { errorOf } from './gateway-error.testing';


const upload = (data: Uint8Array = wavClip(1_000), filename = 'hello.wav', contentType = 'audio/wav'): AudioUpload => ({ data, filename, contentType });

/** A body as ingress reads a multipart form. */
const form = (fields: Record<string, unknown>): Record<string, unknown> => markFormBody({ ...fields });

describe('parseTranscriptionRequest', () => {
  it('reads the fields the gateway models, the audio with its length, and carries every other field in order', () => {
    const file = upload();
    const request = parseTranscriptionRequest(
      form({
        file,
        model: 'whisper-1',
        language: 'en',
        prompt: 'A talk about gateways.',
        response_format: 'verbose_json',
        temperature: '0.2',
        'timestamp_granularities[]': ['word', 'segment'],
        chunking_strategy: 'auto',
        stream: 'false',
      }),
      { translate: false },
    );
    expect(request).toEqual({
      model: 'whisper-1',
      file: Buffer.from(file.data),
      filename: 'hello.wav',
      contentType: 'audio/wav',
      translate: false,
      language: 'en',
      prompt: 'A talk about gateways.',
      responseFormat: 'verbose_json',
      temperature: 0.2,
      extraFields: [
        { name: 'timestamp_granularities[]', value: 'word' },
        { name: 'timestamp_granularities[]', value: 'segment' },
        { name: 'chunking_strategy', value: 'auto' },
      ],
      durationMs: 1_000,
    });
    // The bytes are the upload's own, not a copy.
    expect(request.file.buffer).toBe(file.data.buffer);
  });

  it('reads a translation with only the required fields: no format, no temperature, the length of a file it cannot read as 0', () => {
    const mp3 = upload(Buffer.from([0xff, 0xfb, 0x90, 0x64, 0, 0, 0, 0]), 'talk.mp3', 'audio/mpeg');
    expect(parseTranscriptionRequest(form({ model: 'whisper-1', file: mp3 }), { translate: true })).toEqual({
      model: 'whisper-1',
      file: Buffer.from(mp3.data),
      filename: 'talk.mp3',
      contentType: 'audio/mpeg',
      translate: true,
      language: undefined,
      prompt: undefined,
      responseFormat: undefined,
      temperature: undefined,
      extraFields: [],
      durationMs: 0,
    });
  });

  it.each(['json', 'text', 'srt', 'verbose_json', 'vtt', 'diarized_json'])('takes response_format %s', (format) => {
    expect(parseTranscriptionRequest(form({ file: upload(), model: 'whisper-1', response_format: format }), { translate: false }).responseFormat).toBe(format);
  });

  it.each([
    ['0', 0],
    ['1', 1],
    [' 0.5 ', 0.5],
    ['1e-1', 0.1],
  ])('reads temperature %j as %d', (text, value) => {
    expect(parseTranscriptionRequest(form({ file: upload(), model: 'whisper-1', temperature: text }), { translate: false }).temperature).toBe(value);
  });

  it.each([
    ['no file', { model: 'whisper-1' }, 'file', 'missing_required_parameter', "Missing required parameter: 'file'."],
    ['an empty file', { model: 'whisper-1', file: upload(new Uint8Array(0)) }, 'file', 'invalid_value', "Invalid value for 'file': expected an audio file, but got an empty file instead."],
    ['a file sent as text', { model: 'whisper-1', file: 'hello.wav' }, 'file', 'invalid_type', "Invalid type for 'file': expected a file, but got a text field instead."],
    ['two files', { model: 'whisper-1', file: [upload(), upload()] }, 'file', 'invalid_value', "Invalid value for 'file': expected one file, but got several instead."],
    ['no model', { file: upload() }, 'model', 'missing_required_parameter', "Missing required parameter: 'model'."],
    ['an empty model', { file: upload(), model: '' }, 'model', 'invalid_value', undefined],
    ['a model sent twice', { file: upload(), model: ['whisper-1', 'whisper-1'] }, 'model', 'invalid_type', "Invalid type for 'model': expected a string, but got an array instead."],
    ['a model sent as a file', { file: upload(), model: upload() }, 'model', 'invalid_type', undefined],
    ['an unknown response_format', { file: upload(), model: 'whisper-1', response_format: 'xml' }, 'response_format', 'invalid_value', undefined],
    ['a temperature that is not a number', { file: upload(), model: 'whisper-1', temperature: 'warm' }, 'temperature', 'invalid_type', "Invalid type for 'temperature': expected a number, but got a string instead."],
    ['an empty temperature', { file: upload(), model: 'whisper-1', temperature: '' }, 'temperature', 'invalid_type', undefined],
    ['a temperature above 1', { file: upload(), model: 'whisper-1', temperature: '1.5' }, 'temperature', 'invalid_value', "Invalid value for 'temperature': expected a value <= 1, but got '1.5' instead."],
    ['a negative temperature', { file: upload(), model: 'whisper-1', temperature: '-0.1' }, 'temperature', 'invalid_value', undefined],
    ['stream that is not a boolean', { file: upload(), model: 'whisper-1', stream: 'yes' }, 'stream', 'invalid_value', undefined],
    ['a second file under another name', { file: upload(), model: 'whisper-1', other: upload() }, 'other', 'invalid_type', "Invalid type for 'other': expected a text field, but got a file instead."],
    ['a file among the values of a repeated field', { file: upload(), model: 'whisper-1', 'include[]': ['logprobs', upload()] }, 'include[]', 'invalid_type', undefined],
  ])('refuses %s with 400 naming the param', (_name, fields, param, code, message) => {
    const error = errorOf(() => parseTranscriptionRequest(form(fields), { translate: false }));
    expect(error).toMatchObject({ kind: 'bad_request', param, code });
    if (message) expect(error.message).toBe(message);
  });

  it('refuses a streamed transcription or translation by name', () => {
    const transcription = errorOf(() => parseTranscriptionRequest(form({ file: upload(), model: 'gpt-4o-transcribe', stream: 'true' }), { translate: false }));
    expect(transcription).toMatchObject({ kind: 'bad_request', param: 'stream', code: 'unsupported_parameter' });
    expect(transcription.message).toBe("'stream' is not supported by this gateway: streamed transcription is not served.");
    expect(errorOf(() => parseTranscriptionRequest(form({ file: upload(), model: 'whisper-1', stream: 'true' }), { translate: true })).message).toBe(
      "'stream' is not supported by this gateway: streamed translation is not served.",
    );
  });

  it.each([
    ['a JSON object', { model: 'whisper-1', file: 'aGVsbG8=' }],
    ['a JSON object without a file', { model: 'whisper-1' }],
    ['a JSON string', 'hello'],
    ['no body', undefined],
    ['null', null],
  ])('refuses %s: the upload routes take a multipart form', (_name, body) => {
    const error = errorOf(() => parseTranscriptionRequest(body, { translate: false }));
    expect(error).toMatchObject({ kind: 'bad_request', param: 'file', code: 'invalid_content_type' });
    expect(error.message).toBe("The request body must be multipart/form-data, with the audio in the 'file' field.");
  });
});

describe('parseSpeechRequest', () => {
  it('reads the fields the gateway models and carries instructions, speed and every other parameter', () => {
    expect(
      parseSpeechRequest({
        model: 'gpt-4o-mini-tts',
        input: 'Hello there.',
        voice: 'coral',
        instructions: 'Speak cheerfully.',
        response_format: 'wav',
        speed: 1.25,
        stream_format: 'audio',
        user: 'u-1',
        future_option: { a: 1 },
      }),
    ).toEqual({
      model: 'gpt-4o-mini-tts',
      input: 'Hello there.',
      voice: 'coral',
      responseFormat: 'wav',
      user: 'u-1',
      extraJson: '{"instructions":"Speak cheerfully.","speed":1.25,"future_option":{"a":1}}',
    });
  });

  it('reads a custom voice as its JSON text, and nulls as not given', () => {
    expect(parseSpeechRequest({ model: 'tts-1', input: 'Hi', voice: { id: 'voice_123' }, response_format: null, speed: null, instructions: null, user: null, stream_format: null })).toEqual({
      model: 'tts-1',
      input: 'Hi',
      voice: '{"id":"voice_123"}',
      responseFormat: undefined,
      user: undefined,
      extraJson: '',
    });
  });

  it('takes exactly 4096 characters, counted as OpenAI counts them (an emoji is one)', () => {
    expect(parseSpeechRequest({ model: 'tts-1', voice: 'alloy', input: 'a'.repeat(MAX_SPEECH_INPUT_CHARS) }).input).toHaveLength(4096);
    // 4096 emoji are 8192 UTF-16 units, and 4096 characters.
    const emoji = '🙂'.repeat(MAX_SPEECH_INPUT_CHARS);
    expect(parseSpeechRequest({ model: 'tts-1', voice: 'alloy', input: emoji }).input).toBe(emoji);
    expect(errorOf(() => parseSpeechRequest({ model: 'tts-1', voice: 'alloy', input: `${emoji}!` })).message).toBe(
      "Invalid value for 'input': expected at most 4096 characters, but got 4097 characters instead.",
    );
  });

  it.each([0.25, 1, 4])('takes speed %d', (speed) => {
    expect(parseSpeechRequest({ model: 'tts-1', voice: 'alloy', input: 'x', speed }).extraJson).toBe(`{"speed":${speed}}`);
  });

  it.each([
    ['no model', { input: 'x', voice: 'alloy' }, 'model', 'missing_required_parameter'],
    ['no input', { model: 'tts-1', voice: 'alloy' }, 'input', 'missing_required_parameter'],
    ['an empty input', { model: 'tts-1', voice: 'alloy', input: '' }, 'input', 'invalid_value'],
    ['an input longer than 4096 characters', { model: 'tts-1', voice: 'alloy', input: 'a'.repeat(4097) }, 'input', 'invalid_value'],
    ['an input that is not text', { model: 'tts-1', voice: 'alloy', input: ['a'] }, 'input', 'invalid_type'],
    ['no voice', { model: 'tts-1', input: 'x' }, 'voice', 'missing_required_parameter'],
    ['a voice of the wrong type', { model: 'tts-1', input: 'x', voice: 7 }, 'voice', 'invalid_type'],
    ['a custom voice without an id', { model: 'tts-1', input: 'x', voice: {} }, 'voice.id', 'missing_required_parameter'],
    ['an unknown response_format', { model: 'tts-1', input: 'x', voice: 'alloy', response_format: 'ogg' }, 'response_format', 'invalid_value'],
    ['speed below 0.25', { model: 'tts-1', input: 'x', voice: 'alloy', speed: 0.2 }, 'speed', 'invalid_value'],
    ['speed above 4', { model: 'tts-1', input: 'x', voice: 'alloy', speed: 4.5 }, 'speed', 'invalid_value'],
    ['speed as text', { model: 'tts-1', input: 'x', voice: 'alloy', speed: '1' }, 'speed', 'invalid_type'],
    ['instructions that are not text', { model: 'tts-1', input: 'x', voice: 'alloy', instructions: 3 }, 'instructions', 'invalid_type'],
    ['an unknown stream_format', { model: 'tts-1', input: 'x', voice: 'alloy', stream_format: 'chunks' }, 'stream_format', 'invalid_value'],
  ])('rejects %s with 400 naming the param', (_name, body, param, code) => {
    expect(errorOf(() => parseSpeechRequest(body))).toMatchObject({ kind: 'bad_request', param, code });
  });

  it('names what is wrong in the words OpenAI uses', () => {
    expect(errorOf(() => parseSpeechRequest({ model: 'tts-1', voice: 'alloy' })).message).toBe("Missing required parameter: 'input'.");
    expect(errorOf(() => parseSpeechRequest({ model: 'tts-1', voice: 'alloy', input: '' })).message).toBe("Invalid value for 'input': expected a non-empty string, but got an empty string instead.");
    expect(errorOf(() => parseSpeechRequest({ model: 'tts-1', voice: 'alloy', input: 'x', speed: 5 })).message).toBe("Invalid value for 'speed': expected a value <= 4, but got 5 instead.");
    expect(errorOf(() => parseSpeechRequest('say hi')).kind).toBe('bad_request');
  });

  it('refuses speech streamed as server-sent events by name', () => {
    const error = errorOf(() => parseSpeechRequest({ model: 'gpt-4o-mini-tts', input: 'x', voice: 'alloy', stream_format: 'sse' }));
    expect(error).toMatchObject({ kind: 'bad_request', param: 'stream_format', code: 'unsupported_parameter' });
  });
});

describe('audio formats', () => {
  it('names the media type of each speech format as OpenAI sends it', () => {
    expect([undefined, 'mp3', 'opus', 'aac', 'flac', 'wav', 'pcm'].map(speechContentType)).toEqual(['audio/mpeg', 'audio/mpeg', 'audio/opus', 'audio/aac', 'audio/flac', 'audio/wav', 'audio/pcm']);
  });

  it('tells JSON transcriptions from text ones', () => {
    expect([undefined, 'json', 'verbose_json', 'diarized_json', 'text', 'srt', 'vtt'].map(isJsonTranscription)).toEqual([true, true, true, true, false, false, false]);
  });

  it('counts code points', () => {
    expect(codePoints('')).toBe(0);
    expect(codePoints('héllo')).toBe(5);
    expect(codePoints('🙂🙂')).toBe(2);
  });
});
