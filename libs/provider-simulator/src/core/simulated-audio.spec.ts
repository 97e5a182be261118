import { COMPRESSED_AUDIO_BYTES_PER_SECOND, measureAudio, SPEECH_SAMPLE_RATE, synthesizeSpeech } from './simulated-audio';
import { readWavInfo } from './wav-audio';

describe('synthesizeSpeech', () => {
  it('writes wav as a valid 24 kHz mono 16-bit WAV of the asked length, and pcm as its samples alone', () => {
    const wav = synthesizeSpeech('wav', 1234);
    expect(readWavInfo(wav)).toMatchObject({ audioFormat: 1, channels: 1, sampleRate: SPEECH_SAMPLE_RATE, bitsPerSample: 16, durationMs: 1234 });
    const pcm = synthesizeSpeech('pcm', 1234);
    expect(pcm).toHaveLength(1234 * 24 * 2);
    expect(wav.subarray(44)).toEqual(pcm);
  });

  it('starts mp3 with MPEG-1 Layer III frame headers, every 417 bytes', () => {
    const mp3 = synthesizeSpeech('mp3', 1000);
    expect(mp3.length % 417).toBe(0);
    for (let at = 0; at < mp3.length; at += 417) expect([...mp3.subarray(at, at + 4)]).toEqual([0xff, 0xfb, 0x90, 0xc0]);
  });

  it('writes aac as ADTS frames whose headers give their own length', () => {
    const aac = synthesizeSpeech('aac', 1000);
    let frames = 0;
    for (let at = 0; at < aac.length; frames++) {
      expect([aac[at], aac[at + 1]]).toEqual([0xff, 0xf1]);
      const frameLength = (((aac[at + 3] ?? 0) & 0x03) << 11) | ((aac[at + 4] ?? 0) << 3) | ((aac[at + 5] ?? 0) >> 5);
      expect(frameLength).toBeGreaterThan(7);
      at += frameLength;
    }
    expect(frames).toBeGreaterThan(20);
  });

  it('starts opus with an Ogg page carrying OpusHead, and flac with fLaC and a STREAMINFO of the length', () => {
    const opus = synthesizeSpeech('opus', 500);
    expect(opus.toString('ascii', 0, 4)).toBe('OggS');
    expect(opus[5]).toBe(0x02);
    expect(opus.toString('ascii', 28, 36)).toBe('OpusHead');
    const flac = synthesizeSpeech('flac', 500);
    expect(flac.toString('ascii', 0, 4)).toBe('fLaC');
    expect(flac[4]).toBe(0x80);
    const packed = flac.readBigUInt64BE(18);
    expect(Number(packed >> 44n)).toBe(SPEECH_SAMPLE_RATE);
    expect(Number(packed & 0xfffffffffn)).toBe(12_000);
  });

  it('sizes the compressed formats at 16 kB/s, so measureAudio reads their length back (to a frame)', () => {
    for (const format of ['mp3', 'opus', 'aac', 'flac'] as const) {
      const audio = synthesizeSpeech(format, 3000);
      expect(Math.abs(audio.length - 3 * COMPRESSED_AUDIO_BYTES_PER_SECOND)).toBeLessThan(700);
      expect(measureAudio(audio)).toEqual({ durationMs: expect.any(Number), measured: false });
      expect(Math.abs(measureAudio(audio).durationMs - 3000)).toBeLessThan(45);
    }
  });

  it('is the same for the same arguments', () => {
    expect(synthesizeSpeech('wav', 300)).toEqual(synthesizeSpeech('wav', 300));
    expect(synthesizeSpeech('opus', 300)).toEqual(synthesizeSpeech('opus', 300));
  });
});

describe('measureAudio', () => {
  it('reads a WAV header, and takes anything else at 16 kB/s', () => {
    expect(measureAudio(synthesizeSpeech('wav', 2500))).toEqual({ durationMs: 2500, measured: true });
    expect(measureAudio(Buffer.alloc(8000))).toEqual({ durationMs: 500, measured: false });
    expect(measureAudio(Buffer.alloc(0))).toEqual({ durationMs: 0, measured: false });
  });
});
