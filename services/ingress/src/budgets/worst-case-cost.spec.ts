import { markFormBody, type AudioUpload } from '@openrouter/openai-wire';
import { PriceBook } from '@openrouter/usage';
import { countTextTokens } from '../access/prompt-tokens';
import { ingressTestConfig } from '../test-config.testing';
import { mp3File, upload, wavFile } from './audio-file.testing';
import { askedOutputTokens, audioDemandOf, audioPromptTokens, audioUnitMicros, imagesAsked, makesImages, requestedTier, tierLeftToProvider, WorstCasePricing } from './worst-case-cost';

const NOW = Date.parse('2025-06-14T12:00:00Z');
const TRANSCRIPTIONS = '/v1/audio/transcriptions';
const TRANSLATIONS = '/v1/audio/translations';
const SPEECH = '/v1/audio/speech';
const settings = { maxSeconds: 1_500, tokensPerSecond: 25 };

describe('audioDemandOf', () => {
  it('counts an uploaded WAV file at its length, rounded up to the second as OpenAI reports it', () => {
    for (const endpoint of [TRANSCRIPTIONS, TRANSLATIONS]) {
      expect(audioDemandOf(endpoint, { model: 'whisper-1', file: upload(wavFile(3_000)) }, settings)).toEqual({ kind: 'transcription', seconds: 3, audioTokens: 75, textTokens: 0 });
    }
    expect(audioDemandOf(TRANSCRIPTIONS, { model: 'whisper-1', file: upload(wavFile(8_470)) }, settings)).toMatchObject({ seconds: 9, audioTokens: 225 });
  });

  it('counts a file whose length it cannot read at budgets.audio.maxSeconds, and a form without a file (refused with a 400) at none', () => {
    expect(audioDemandOf(TRANSCRIPTIONS, { model: 'w', file: upload(mp3File(), 'a.mp3', 'audio/mpeg') }, settings)).toMatchObject({ seconds: 1_500, audioTokens: 37_500 });
    expect(audioDemandOf(TRANSCRIPTIONS, { model: 'w', file: upload(mp3File()) }, { maxSeconds: 60, tokensPerSecond: 10 })).toMatchObject({ seconds: 60, audioTokens: 600 });
    // A WAV header that says no more than its first bytes: still unreadable.
    expect(audioDemandOf(TRANSCRIPTIONS, { model: 'w', file: upload(wavFile(1_000).slice(0, 30)) }, settings)).toMatchObject({ seconds: 1_500 });
    expect(audioDemandOf(TRANSCRIPTIONS, { model: 'w' }, settings)).toMatchObject({ seconds: 0, audioTokens: 0 });
    expect(audioDemandOf(TRANSCRIPTIONS, { model: 'w', file: 'speech.wav' }, settings)).toMatchObject({ seconds: 0 });
    expect(audioDemandOf(TRANSCRIPTIONS, { model: 'w', file: upload(new Uint8Array(0)) }, settings)).toMatchObject({ seconds: 0 });
  });

  it('counts a transcription’s prompt hint as text, each value of a repeated field, and never the file’s bytes', () => {
    const hint = 'Names: Zyxel, Quetzalcoatl, Ngũgĩ.';
    const file = upload(mp3File(256 * 1024));
    expect(audioDemandOf(TRANSCRIPTIONS, { model: 'w', file, prompt: hint }, settings)).toMatchObject({ textTokens: countTextTokens(hint) });
    expect(audioDemandOf(TRANSCRIPTIONS, { model: 'w', file, prompt: [hint, 'again'] }, settings)).toMatchObject({ textTokens: countTextTokens(hint) + countTextTokens('again') });
    // The file, whatever field carries it, counts for its length only.
    expect(audioDemandOf(TRANSCRIPTIONS, { model: 'w', file, prompt: file }, settings)).toMatchObject({ textTokens: 0 });
  });

  it('counts a speech by its input’s code points, and its input and instructions as text', () => {
    const input = 'Bonjour 🌍 — ça va?';
    expect([...input].length).toBe(input.length - 1);
    expect(audioDemandOf(SPEECH, { model: 'tts-1', input, voice: 'alloy' }, settings)).toEqual({ kind: 'speech', characters: [...input].length, textTokens: countTextTokens(input) });
    expect(audioDemandOf(SPEECH, { model: 'tts-1', input, instructions: 'Speak cheerfully.' }, settings)).toMatchObject({ textTokens: countTextTokens(input) + countTextTokens('Speak cheerfully.') });
    // A lone surrogate is one character, as the provider counts it.
    expect(audioDemandOf(SPEECH, { model: 'tts-1', input: 'a\ud83c' }, settings)).toMatchObject({ characters: 2 });
    // An input that is not text is refused with a 400 afterwards: none counted until then.
    expect(audioDemandOf(SPEECH, { model: 'tts-1', input: ['x'] }, settings)).toMatchObject({ characters: 0 });
  });

  it('leaves every other endpoint to the token counts', () => {
    for (const endpoint of [undefined, '/v1/chat/completions', '/v1/embeddings', '/v1/images/generations']) {
      expect(audioDemandOf(endpoint, { model: 'm', input: 'text', file: upload(wavFile(1_000)) }, settings)).toBeUndefined();
    }
  });

  it('reserves a transcription’s audio tokens as they are and pads its text as a prompt is padded', () => {
    const demand = { kind: 'transcription' as const, seconds: 4, audioTokens: 100, textTokens: 10 };
    // 100 + ceil(10 × 1.1) + 16.
    expect(audioPromptTokens(demand)).toBe(127);
    expect(audioPromptTokens({ kind: 'speech', characters: 40, textTokens: 10 })).toBe(27);
  });
});

describe('WorstCasePricing for audio', () => {
  const config = ingressTestConfig({
    providers: {
      'sim-eu': { type: 'openai', baseUrl: 'http://127.0.0.1:9/v1', residency: 'eu' },
      'sim-us': { type: 'openai', baseUrl: 'http://127.0.0.1:9/v1', residency: 'us' },
    },
    models: [
      {
        id: 'whisper',
        capabilities: ['transcription'],
        pricing: { input: '0', output: '0', perAudioMinute: '0.006', deployments: { us: { perAudioMinute: '0.009' } } },
        deployments: [
          { id: 'eu', provider: 'sim-eu', model: 'whisper-1' },
          { id: 'us', provider: 'sim-us', model: 'whisper-1' },
        ],
      },
      {
        id: 'tts',
        capabilities: ['speech'],
        pricing: { input: '0', output: '0', perMillionCharacters: '15', deployments: { 'tts-us': { perMillionCharacters: '30' } } },
        deployments: [
          { id: 'tts-eu', provider: 'sim-eu', model: 'tts-1' },
          { id: 'tts-us', provider: 'sim-us', model: 'tts-1' },
        ],
      },
      { id: 'chat', pricing: { input: '1', output: '50' }, deployments: [{ id: 'c', provider: 'sim-eu', model: 'c' }] },
      { id: 'gpt-image', capabilities: ['images'], pricing: { input: '5', imageInput: '10', output: '40' }, deployments: [{ id: 'img', provider: 'sim-eu', model: 'gpt-image-1' }] },
      { id: 'claude', pricing: { input: '3', output: '15', cacheWrite: '3.75', cacheWrite1h: '6' }, deployments: [{ id: 'cl', provider: 'sim-eu', model: 'claude' }] },
      { id: 'tiered', pricing: { input: '1', output: '2', tiers: { priority: { input: '2', output: '4' }, flex: { input: '0.5', output: '1' } } }, deployments: [{ id: 'ti', provider: 'sim-eu', model: 'tiered' }] },
    ],
  });
  const pricing = new WorstCasePricing(config, PriceBook.fromModels(config.models));

  it('takes the dearest perAudioMinute and perMillionCharacters of the deployments the tenant may reach', () => {
    // 0.009 a minute: 9,000 micro-units; 30 per 1M characters: 30 micro-units a character.
    expect(pricing.priceAt(['whisper'], NOW).audioMinuteMicros.toFixed()).toBe('9000');
    expect(pricing.priceAt(['tts'], NOW).characterMicros.toFixed()).toBe('30');
    const eu = { residency: { values: ['eu'] }, excludeProviders: [], guardrails: [] };
    expect(pricing.priceAt(['whisper'], NOW, undefined, eu).audioMinuteMicros.toFixed()).toBe('6000');
    expect(pricing.priceAt(['tts'], NOW, undefined, eu).characterMicros.toFixed()).toBe('15');
    // Models that price no audio: none.
    expect(pricing.priceAt(['chat'], NOW).audioMinuteMicros.toFixed()).toBe('0');
    expect(pricing.priceAt(['chat'], NOW).characterMicros.toFixed()).toBe('0');
  });

  it("reserves input at an image model's imageInput price when it is the dearer: an edit's images are billed at it", () => {
    expect(pricing.priceAt(['gpt-image'], NOW).inputMicros.toFixed()).toBe('10');
    expect(pricing.priceAt(['chat'], NOW).inputMicros.toFixed()).toBe('1');
  });

  it("reserves a request that leaves the tier to the provider project at the dearest tier its model declares: it is billed at the tier that served it", () => {
    const reserved = (body: Record<string, unknown>) => {
      const tier = requestedTier(body);
      const price = pricing.priceAt(['tiered'], NOW, tier, undefined, tier === undefined && tierLeftToProvider(body));
      return [price.inputMicros.toFixed(), price.outputMicros.toFixed()];
    };
    // Absent, null or auto: a project set to priority serves it at priority.
    expect(reserved({})).toEqual(['2', '4']);
    expect(reserved({ service_tier: null })).toEqual(['2', '4']);
    expect(reserved({ service_tier: 'auto' })).toEqual(['2', '4']);
    // The standard tier asked for: its own prices.
    expect(reserved({ service_tier: 'default' })).toEqual(['1', '2']);
    // A tier named: the dearer of its prices and the standard ones, since the provider may serve
    // it at the standard tier (and the record is priced at the tier that served).
    expect(reserved({ service_tier: 'flex' })).toEqual(['1', '2']);
    expect(reserved({ service_tier: 'priority' })).toEqual(['2', '4']);
    // A model that declares no tier: its price.
    expect(pricing.priceAt(['chat'], NOW, undefined, undefined, true).inputMicros.toFixed()).toBe('1');
  });

  it('reserves input at the hour-long cache write price when it is the dearest: a prompt may be written for an hour', () => {
    expect(pricing.priceAt(['claude'], NOW).inputMicros.toFixed()).toBe('6');
  });

  it('prices a transcription by the minute and a speech by the character', () => {
    const price = pricing.priceAt(['whisper', 'tts'], NOW);
    expect(audioUnitMicros({ kind: 'transcription', seconds: 90, audioTokens: 0, textTokens: 0 }, price).toFixed()).toBe('13500');
    expect(audioUnitMicros({ kind: 'speech', characters: 1_000, textTokens: 0 }, price).toFixed()).toBe('30000');
  });

  it('keeps only the models with the capability a request needs', () => {
    const models = ['whisper', 'tts', 'chat', 'unknown'];
    expect(pricing.serving(models, 'transcription')).toEqual(['whisper']);
    expect(pricing.serving(models, 'speech')).toEqual(['tts']);
  });
});

describe('image requests', () => {
  const png = (bytes: number): AudioUpload => ({ data: new Uint8Array(bytes).fill(0x89, 0, 1), filename: 'a.png', contentType: 'image/png' });

  it('makes images through the generations and edits routes alone', () => {
    expect(makesImages('/v1/images/generations')).toBe(true);
    expect(makesImages('/v1/images/edits')).toBe(true);
    for (const endpoint of [undefined, '/v1/completions', '/v1/chat/completions', '/v1/images/variations', '/v1/audio/transcriptions']) expect(makesImages(endpoint)).toBe(false);
  });

  it("reads the images asked for from a JSON n or an edit form's text of one, and counts anything else as one", () => {
    expect(imagesAsked({ prompt: 'x', n: 3 })).toBe(3);
    expect(imagesAsked({ prompt: 'x' })).toBe(1);
    expect(imagesAsked(markFormBody({ image: png(8), prompt: 'x', n: '4' }))).toBe(4);
    expect(imagesAsked(markFormBody({ image: png(8), prompt: 'x', n: ' 10 ' }))).toBe(10);
    // Refused by the handler with a 400: counted as one until then, so the 400 is not a 402 or 429 first.
    for (const n of ['11', '0', '-2', '1.5', '0x2', 'two', '']) expect([n, imagesAsked(markFormBody({ image: png(8), prompt: 'x', n }))]).toEqual([n, 1]);
    expect(imagesAsked({ prompt: 'x', n: 11 })).toBe(1);
    // Text is a count in a form only: a JSON body's "4" is refused as a string.
    expect(imagesAsked({ prompt: 'x', n: '4' })).toBe(1);
  });
});

describe('askedOutputTokens', () => {
  it('reads max_completion_tokens, else max_tokens, of a chat request', () => {
    expect(askedOutputTokens({ messages: [], max_completion_tokens: 5, max_tokens: 50 })).toBe(5);
    expect(askedOutputTokens({ messages: [], max_tokens: 50 })).toBe(50);
    expect(askedOutputTokens({ messages: [] })).toBeUndefined();
  });

  it('reads only max_tokens of a legacy completion, else 16, as its handler sends it: never a max_completion_tokens it refuses', () => {
    // Budgets and rate limits both count it so: a small max_completion_tokens does not hide a large max_tokens.
    expect(askedOutputTokens({ prompt: 'hi', max_tokens: 100_000, max_completion_tokens: 1 })).toBe(100_000);
    expect(askedOutputTokens({ prompt: 'hi', max_completion_tokens: 1_000 })).toBe(16);
    expect(askedOutputTokens({ prompt: 'hi' })).toBe(16);
    // A limit it may not send (refused with a 400): the default until then.
    expect(askedOutputTokens({ prompt: 'hi', max_tokens: 0 })).toBe(16);
  });
});
