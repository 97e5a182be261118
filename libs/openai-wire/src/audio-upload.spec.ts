import { AUDIO_ENDPOINTS, isAudioUpload, isAudioUploadEndpoint, isFormBody, isSpeechEndpoint, markFormBody, wavDurationMs } from './audio-upload';

interface Chunk {
  id: string;
  body: Uint8Array;
  /** The size the chunk header states, when it is not the body's (a streamed or truncated file). */
  statedSize?: number;
}

function chunk(id: string, body: Uint8Array, statedSize?: number): Chunk {
  return { id, body, statedSize };
}

/** A `fmt ` chunk's fields; those left out are what a well-formed PCM header says. */
interface FmtFields {
  format?: number;
  byteRate?: number;
  blockAlign?: number;
  /** WAVE_FORMAT_EXTENSIBLE's real format tag (its sub-format GUID's first two bytes): a 40-byte chunk. */
  subFormat?: number;
}

/** A `fmt ` chunk of PCM audio (or as `fields` say). */
function fmt(sampleRate: number, channels: number, bitsPerSample: number, fields: FmtFields = {}): Chunk {
  const body = Buffer.alloc(fields.subFormat === undefined ? 16 : 40);
  const blockAlign = fields.blockAlign ?? channels * Math.ceil(bitsPerSample / 8);
  body.writeUInt16LE(fields.format ?? (fields.subFormat === undefined ? 1 : 0xfffe), 0);
  body.writeUInt16LE(channels, 2);
  body.writeUInt32LE(sampleRate, 4);
  body.writeUInt32LE(fields.byteRate ?? sampleRate * blockAlign, 8);
  body.writeUInt16LE(blockAlign, 12);
  body.writeUInt16LE(bitsPerSample, 14);
  if (fields.subFormat !== undefined) {
    body.writeUInt16LE(22, 16);
    body.writeUInt16LE(bitsPerSample, 18);
    body.writeUInt16LE(fields.subFormat, 24);
  }
  return chunk('fmt ', body);
}

/** A RIFF/WAVE file of these chunks, each padded to an even size as RIFF requires. */
function riff(chunks: Chunk[], form = 'WAVE'): Buffer {
  const parts = chunks.map((c) => {
    const header = Buffer.alloc(8);
    header.write(c.id, 0, 'latin1');
    header.writeUInt32LE(c.statedSize ?? c.body.length, 4);
    return Buffer.concat([header, c.body, Buffer.alloc(c.body.length % 2)]);
  });
  const body = Buffer.concat(parts);
  const head = Buffer.alloc(12);
  head.write('RIFF', 0, 'latin1');
  head.writeUInt32LE(body.length + 4, 4);
  head.write(form, 8, 'latin1');
  return Buffer.concat([head, body]);
}

/** `ms` of silence as a plain 44-byte-header WAV. */
function wav(ms: number, sampleRate = 16_000, channels = 1, bitsPerSample = 16): Buffer {
  const bytes = Math.round((sampleRate * channels * bitsPerSample) / 8 / 1000 * ms);
  return riff([fmt(sampleRate, channels, bitsPerSample), chunk('data', new Uint8Array(bytes))]);
}

describe('wavDurationMs', () => {
  it('reads the length of a plain WAV from its byte rate and data size', () => {
    expect(wavDurationMs(wav(1_000))).toBe(1_000);
    expect(wavDurationMs(wav(2_500, 24_000))).toBe(2_500);
    expect(wavDurationMs(wav(750, 44_100, 2, 16))).toBe(750);
    expect(wavDurationMs(wav(0))).toBe(0);
  });

  it('walks past other chunks before the audio, odd-sized ones padded', () => {
    const audio = new Uint8Array(32_000);
    const file = riff([chunk('LIST', new Uint8Array(27)), fmt(16_000, 1, 16), chunk('fact', new Uint8Array(4)), chunk('data', audio)]);
    expect(wavDurationMs(file)).toBe(1_000);
  });

  it('counts only the bytes present when the header says more (a cut file), and all of them when it says 0 or 0xFFFFFFFF (a stream)', () => {
    const present = new Uint8Array(16_000);
    expect(wavDurationMs(riff([fmt(16_000, 1, 16), chunk('data', present, 64_000)]))).toBe(500);
    expect(wavDurationMs(riff([fmt(16_000, 1, 16), chunk('data', present, 0)]))).toBe(500);
    expect(wavDurationMs(riff([fmt(16_000, 1, 16), chunk('data', present, 0xffffffff)]))).toBe(500);
    // Fewer bytes stated than present: what the header says (a trailing chunk follows).
    expect(wavDurationMs(riff([fmt(16_000, 1, 16), chunk('data', present, 8_000)]))).toBe(250);
  });

  it('reads a WAV inside a larger buffer (a view with an offset)', () => {
    const file = wav(1_000);
    const padded = Buffer.concat([Buffer.from('garbage!'), file, Buffer.from('tail')]);
    expect(wavDurationMs(new Uint8Array(padded.buffer, padded.byteOffset + 8, file.length))).toBe(1_000);
  });

  it('reads the length a decoder plays from the sample rate and frame size, never from the byte rate alone', () => {
    // Ten minutes of 16 kHz mono 16-bit audio whose header claims 4 GB a second: still ten minutes, not 4 ms.
    const tenMinutes = new Uint8Array(16_000 * 2 * 600);
    expect(wavDurationMs(riff([fmt(16_000, 1, 16, { byteRate: 0xffffffff }), chunk('data', tenMinutes)]))).toBeUndefined();
    expect(wavDurationMs(riff([fmt(16_000, 1, 16), chunk('data', tenMinutes)]))).toBe(600_000);
    // A frame of 24-bit stereo is 6 bytes; a trailing part of a frame plays nothing.
    expect(wavDurationMs(riff([fmt(48_000, 2, 24), chunk('data', new Uint8Array(48_000 * 6 + 5))]))).toBe(1_000);
  });

  it('reads IEEE float, A-law and µ-law audio, and PCM or float in WAVE_FORMAT_EXTENSIBLE', () => {
    expect(wavDurationMs(riff([fmt(16_000, 1, 32, { format: 3 }), chunk('data', new Uint8Array(64_000))]))).toBe(1_000);
    expect(wavDurationMs(riff([fmt(8_000, 1, 8, { format: 6 }), chunk('data', new Uint8Array(4_000))]))).toBe(500);
    expect(wavDurationMs(riff([fmt(8_000, 1, 8, { format: 7 }), chunk('data', new Uint8Array(8_000))]))).toBe(1_000);
    expect(wavDurationMs(riff([fmt(44_100, 2, 16, { subFormat: 1 }), chunk('data', new Uint8Array(176_400))]))).toBe(1_000);
    expect(wavDurationMs(riff([fmt(48_000, 1, 32, { subFormat: 3 }), chunk('data', new Uint8Array(96_000))]))).toBe(500);
  });

  it.each([
    ['a byte rate that disagrees with the rate and frame', fmt(16_000, 1, 16, { byteRate: 0xffffffff })],
    ['a byte rate a little off', fmt(16_000, 1, 16, { byteRate: 32_001 })],
    ['a frame size that disagrees with channels and sample size', fmt(16_000, 1, 16, { blockAlign: 4096, byteRate: 16_000 * 4096 })],
    ['compressed audio (IMA ADPCM), whose length needs decoding', fmt(16_000, 1, 4, { format: 0x11, blockAlign: 256, byteRate: 8_110 })],
    ['MP3 inside a WAV', fmt(16_000, 1, 0, { format: 0x55, blockAlign: 1, byteRate: 4_000 })],
    ['compressed audio in WAVE_FORMAT_EXTENSIBLE', fmt(16_000, 1, 16, { subFormat: 0x11 })],
    ['WAVE_FORMAT_EXTENSIBLE cut to 16 bytes', fmt(16_000, 1, 16, { format: 0xfffe })],
    ['no channels', fmt(16_000, 0, 16, { blockAlign: 0, byteRate: 0 })],
    ['a sample rate no audio is recorded at (4 GHz)', fmt(0xffffffff, 1, 8, { byteRate: 0xffffffff })],
    ['a sample rate no audio is recorded at (10 Hz)', fmt(10, 1, 16)],
  ])('is undefined for a header with %s', (_name, format) => {
    expect(wavDurationMs(riff([format, chunk('data', new Uint8Array(32_000))]))).toBeUndefined();
  });

  it.each([
    ['an empty file', new Uint8Array(0)],
    ['a file shorter than the RIFF header', Buffer.from('RIFF\0\0\0\0WAV')],
    ['MP3 bytes', Buffer.from([0x49, 0x44, 0x33, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xfb, 0x90, 0x64])],
    ['a RIFF file of another form (AVI)', riff([fmt(16_000, 1, 16), chunk('data', new Uint8Array(100))], 'AVI ')],
    ['audio before its format', riff([chunk('data', new Uint8Array(100)), fmt(16_000, 1, 16)])],
    ['no data chunk', riff([fmt(16_000, 1, 16)])],
    ['a byte rate of 0', riff([chunk('fmt ', new Uint8Array(16)), chunk('data', new Uint8Array(100))])],
    ['a format chunk cut short', riff([chunk('fmt ', new Uint8Array(8)), chunk('data', new Uint8Array(100))])],
    ['a chunk whose size runs past the end', riff([chunk('LIST', new Uint8Array(4), 0xfffffff0), fmt(16_000, 1, 16), chunk('data', new Uint8Array(100))])],
    ['the audio after more chunks than are walked', riff([...Array.from({ length: 64 }, () => chunk('junk', new Uint8Array(2))), fmt(16_000, 1, 16), chunk('data', new Uint8Array(100))])],
  ])('is undefined for %s', (_name, data) => {
    expect(wavDurationMs(data)).toBeUndefined();
  });
});

describe('isAudioUpload', () => {
  it('is an upload with bytes, a name and a media type', () => {
    expect(isAudioUpload({ data: new Uint8Array([1]), filename: 'a.wav', contentType: 'audio/wav' })).toBe(true);
    expect(isAudioUpload({ data: Buffer.from('x'), filename: '', contentType: '' })).toBe(true);
  });

  it.each([
    ['text', 'a.wav'],
    ['null', null],
    ['bytes as a list of numbers (JSON)', { data: [1, 2], filename: 'a.wav', contentType: 'audio/wav' }],
    ['no filename', { data: new Uint8Array([1]), contentType: 'audio/wav' }],
    ['no media type', { data: new Uint8Array([1]), filename: 'a.wav' }],
  ])('is not %s', (_name, value) => {
    expect(isAudioUpload(value)).toBe(false);
  });
});

describe('the audio endpoints', () => {
  it('tells the upload routes from the speech route by their pattern', () => {
    expect(isAudioUploadEndpoint(AUDIO_ENDPOINTS.transcriptions)).toBe(true);
    expect(isAudioUploadEndpoint('/v1/audio/translations')).toBe(true);
    expect(isAudioUploadEndpoint('/v1/audio/speech')).toBe(false);
    expect(isAudioUploadEndpoint(undefined)).toBe(false);
    expect(isSpeechEndpoint(AUDIO_ENDPOINTS.speech)).toBe(true);
    expect(isSpeechEndpoint('/v1/audio/transcriptions')).toBe(false);
    expect(isSpeechEndpoint('/v1/chat/completions')).toBe(false);
  });
});

describe('markFormBody', () => {
  it('marks a body read from a form without adding a field anyone reads or sends', () => {
    const body = markFormBody({ model: 'whisper-1' });
    expect(isFormBody(body)).toBe(true);
    expect(Object.keys(body)).toEqual(['model']);
    expect(JSON.stringify(body)).toBe('{"model":"whisper-1"}');
    // A copy (as a JSON body would be) is not a form.
    expect(isFormBody({ ...body })).toBe(false);
    expect(isFormBody(JSON.parse('{"model":"whisper-1"}'))).toBe(false);
    expect(isFormBody(null)).toBe(false);
    expect(isFormBody('form')).toBe(false);
  });
});
