import { guardrailsSchema, type GuardrailsInput } from '@openrouter/config';
import { chatv1, type adapterv1, type routerv1 } from '@openrouter/contracts';
import { messagesToChatBody, parseChatRequest } from '@openrouter/openai-wire';
import { unusedAdapters } from '../adapter-port.testing';
import { RouterService, type AdapterPort } from '../router.service';
import { POLICY_MODELS, policyConfig } from '../routing/policy-config.testing';
import { contextFor, engineFor } from '../routing/test-engine.testing';
import { CONTENT_POLICY_VIOLATION, Guardrails, GUARDRAILS_UNAVAILABLE } from './guardrails';
import { readSpeech, speechStream } from '../speech.testing';

const GUARDRAILS: GuardrailsInput = {
  rules: [
    { id: 'secrets', detect: 'secret', action: 'block' },
    { id: 'emails', detect: 'email', action: 'redact' },
    { id: 'cards', detect: 'credit_card', action: 'redact', replacement: '<card>' },
    { id: 'codename', terms: ['falcon'], action: 'block' },
  ],
  default: ['secrets'],
};

const KEY = 'sk-proj-AbCdEfGhIjKlMnOpQrStUvWx123';
const withRules = (...guardrails: string[]): routerv1.RequestContext => contextFor({ policy: { excludeProviders: [], guardrails } });

const user = (text: string): chatv1.Message => ({ role: 'user', text, contentIsNull: false, toolCalls: [], extraJson: '' });
const chatRequest = (messages: chatv1.Message[]): chatv1.ChatRequest => ({ model: 'other', messages, tools: [], stop: [], stream: false, logitBias: {}, metadata: {}, modalities: [], extraJson: '' }) as chatv1.ChatRequest;
const embedRequest = (texts: string[], tokenInputs: chatv1.TokenIds[] = []): chatv1.EmbeddingRequest => ({ model: 'emb', texts, tokenInputs, extraJson: '' });

/** Adapters in process that record the requests a provider would get. */
class RecordingAdapters implements AdapterPort {
  readonly chats: chatv1.ChatRequest[] = [];
  readonly embeds: chatv1.EmbeddingRequest[] = [];
  chat(request: adapterv1.ChatRequest): AsyncIterator<adapterv1.ChatResponse> {
    if (request.request) this.chats.push(request.request);
    return (async function* () {
      yield { completion: { id: 'c', created: 1, model: request.upstreamModel, choices: [] } };
    })();
  }
  async embed(request: adapterv1.EmbedRequest): Promise<adapterv1.EmbedResponse> {
    if (request.request) this.embeds.push(request.request);
    return { response: chatv1.EmbeddingResponse.fromPartial({ model: request.upstreamModel, data: [], usage: { promptTokens: 1, totalTokens: 1 } }) };
  }

  readonly moderations: chatv1.ModerationRequest[] = [];
  async moderate(request: adapterv1.ModerateRequest): Promise<adapterv1.ModerateResponse> {
    if (request.request) this.moderations.push(request.request);
    return { response: chatv1.ModerationResponse.fromPartial({ id: 'modr-1', model: request.upstreamModel, results: [] }) };
  }

  readonly images: chatv1.ImageGenerationRequest[] = [];
  async generateImages(request: adapterv1.GenerateImagesRequest): Promise<adapterv1.GenerateImagesResponse> {
    if (request.request) this.images.push(request.request);
    return { response: chatv1.ImageGenerationResponse.fromPartial({ created: 1, data: [{ url: 'https://example.com/a.png' }] }) };
  }

  readonly transcriptions: chatv1.AudioTranscriptionRequest[] = [];
  /** The transcript every transcription answers with. */
  transcript = 'Hello.';
  async transcribe(request: adapterv1.TranscribeRequest): Promise<adapterv1.TranscribeResponse> {
    if (request.request) this.transcriptions.push(request.request);
    return { response: { body: JSON.stringify({ text: this.transcript }), contentType: 'application/json', usage: chatv1.Usage.fromPartial({ completionTokens: 2, totalTokens: 2, estimated: true }), audioMs: 1_000 } };
  }

  readonly speeches: chatv1.SpeechRequest[] = [];
  speak(request: adapterv1.SpeakRequest): AsyncIterator<adapterv1.SpeakResponse> {
    if (request.request) this.speeches.push(request.request);
    return speechStream({ audio: Buffer.from('ID3'), contentType: 'audio/mpeg', usage: chatv1.Usage.fromPartial({ promptTokens: 1, totalTokens: 1, estimated: true }), characters: request.request?.input.length ?? 0 });
  }
}

const MODELS = [...POLICY_MODELS, { id: 'emb', capabilities: ['embeddings'], pricing: { input: '0.1', output: '0' }, deployments: [{ id: 'emb-eu', provider: 'eu-1', model: 'emb' }] },
  { id: 'mod', capabilities: ['moderation', 'vision'], pricing: { input: '0', output: '0' }, deployments: [{ id: 'mod-eu', provider: 'eu-1', model: 'omni-moderation-latest' }] },
  { id: 'img', capabilities: ['images'], pricing: { input: '5', output: '40' }, deployments: [{ id: 'img-eu', provider: 'eu-1', model: 'gpt-image-1' }] },
  { id: 'vis', capabilities: ['chat', 'vision'], pricing: { input: '1', output: '1' }, deployments: [{ id: 'vis-eu', provider: 'eu-1', model: 'vis' }] },
  { id: 'stt', capabilities: ['transcription'], pricing: { perAudioMinute: '0.006' }, deployments: [{ id: 'stt-eu', provider: 'eu-1', model: 'whisper-1' }] },
  { id: 'tts', capabilities: ['speech'], pricing: { perMillionCharacters: '15' }, deployments: [{ id: 'tts-eu', provider: 'eu-1', model: 'tts-1' }] },
];

const speechRequest = (input: string): chatv1.SpeechRequest => ({ model: 'tts', input, voice: 'alloy', extraJson: '{"instructions":"Speak calmly."}' });
const transcriptionRequest = (prompt?: string, translate = false): chatv1.AudioTranscriptionRequest => ({
  model: 'stt',
  file: Buffer.from('RIFF'),
  filename: 'a.wav',
  contentType: 'audio/wav',
  translate,
  ...(prompt !== undefined && { prompt }),
  extraFields: [],
  durationMs: 1_000,
});

function serviceWith(adapters: RecordingAdapters, matches: Array<[string, string, number]> = []): RouterService {
  return new RouterService(engineFor(policyConfig({}, MODELS)), adapters, new Guardrails(GUARDRAILS, (rule, action, count) => matches.push([rule, action, count])));
}

async function drain(stream: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of stream) {
    // drained
  }
}

describe('input guardrails in the router service', () => {
  it('refuses a request a block rule matches in any message, naming the rule and where but never the text, before any call', async () => {
    const adapters = new RecordingAdapters();
    const matches: Array<[string, string, number]> = [];
    const service = serviceWith(adapters, matches);
    const request = chatRequest([user('hello'), { ...user('fine'), role: 'system' }, { ...user(''), role: 'assistant', text: `my key is ${KEY}` }]);
    // `secrets` is the configured default: it applies with no policy at all.
    const refused = drain(service.chat({ context: contextFor(), request }, new AbortController().signal));
    // content_filtered (a 400 content_policy_violation to the client), so usage records tell it from a malformed request.
    await expect(refused).rejects.toMatchObject({ kind: 'content_filtered', retryable: false, code: CONTENT_POLICY_VIOLATION, param: 'messages[2].content', message: expect.stringContaining('"secrets"') });
    await expect(refused).rejects.toMatchObject({ message: expect.not.stringContaining(KEY) });
    // A tenant's rule, in a text part.
    const parts = { ...user(''), text: undefined, parts: { parts: [{ text: 'about Falcon' }] } } as chatv1.Message;
    await expect(drain(service.chat({ context: withRules('codename'), request: chatRequest([parts]) }, new AbortController().signal))).rejects.toMatchObject({ code: CONTENT_POLICY_VIOLATION, param: 'messages[0].content[0].text' });
    // Without the tenant's rule the same text passes.
    await drain(service.chat({ context: contextFor(), request: chatRequest([parts]) }, new AbortController().signal));
    expect(adapters.chats).toHaveLength(1);
    expect(matches).toEqual([['secrets', 'block', 1], ['codename', 'block', 1]]);
  });

  it('redacts string content, text parts and tool-call arguments in the request the provider gets', async () => {
    const adapters = new RecordingAdapters();
    const matches: Array<[string, string, number]> = [];
    const service = serviceWith(adapters, matches);
    const image = { imageUrl: { url: 'https://example.com/a@b.png' } };
    const request = chatRequest([
      user('mail jane@example.com and bob@example.org'),
      { ...user(''), text: undefined, parts: { parts: [{ text: 'card 4111 1111 1111 1111' }, image] } } as chatv1.Message,
      { role: 'assistant', contentIsNull: true, toolCalls: [{ id: 't1', type: 'function', function: { name: 'send', arguments: '{"to":"jane@example.com"}' } }], extraJson: '' },
    ]);
    await drain(service.chat({ context: withRules('emails', 'cards'), request: { ...request, model: 'vis' } }, new AbortController().signal));
    const sent = adapters.chats[0]?.messages;
    expect(sent?.[0]?.text).toBe('mail [REDACTED:emails] and [REDACTED:emails]');
    expect(sent?.[1]?.parts?.parts).toEqual([{ text: 'card <card>' }, image]);
    expect(JSON.parse(sent?.[2]?.toolCalls[0]?.function?.arguments ?? '')).toEqual({ to: '[REDACTED:emails]' });
    expect(sent?.[2]?.contentIsNull).toBe(true);
    expect(matches).toEqual(expect.arrayContaining([['emails', 'redact', 3], ['cards', 'redact', 1]]));
  });

  it('screens embeddings text inputs, passing token-id inputs as they are', async () => {
    const adapters = new RecordingAdapters();
    const service = serviceWith(adapters);
    await service.embed({ context: withRules('emails'), request: embedRequest(['plain', 'to jane@example.com']) }, new AbortController().signal);
    expect(adapters.embeds[0]?.texts).toEqual(['plain', 'to [REDACTED:emails]']);
    await expect(service.embed({ context: contextFor(), request: embedRequest(['ok', `key ${KEY}`]) }, new AbortController().signal)).rejects.toMatchObject({ code: CONTENT_POLICY_VIOLATION, param: 'input[1]' });
    await service.embed({ context: withRules('emails'), request: embedRequest([], [{ ids: [1, 2, 3] }]) }, new AbortController().signal);
    expect(adapters.embeds[1]?.tokenInputs).toEqual([{ ids: [1, 2, 3] }]);
    expect(adapters.embeds).toHaveLength(2);
  });

  it('screens a text part kept as JSON for its other keys (cache_control) as any text part: blocked, or redacted keeping those keys', async () => {
    const guardrails = new Guardrails(guardrailsSchema.parse({ rules: [{ id: 'codename', terms: ['falcon'], action: 'block' }, { id: 'emails', pattern: '[\\w.]+@[\\w.]+', action: 'redact' }], default: ['codename', 'emails'] }));
    const cached = (text: string) => parseChatRequest({ model: 'm', messages: [{ role: 'user', content: [{ type: 'text', text, cache_control: { type: 'ephemeral' } }] }] });
    expect(cached('x').messages[0]?.parts?.parts[0]?.rawJson).toBeDefined();
    expect(() => guardrails.screenChat(contextFor(), cached('tell me about Falcon'))).toThrow(expect.objectContaining({ code: CONTENT_POLICY_VIOLATION, param: 'messages[0].content[0].text' }));
    // The Messages API's automatic caching marks the last user block so.
    const messages = parseChatRequest(messagesToChatBody({ model: 'm', max_tokens: 10, cache_control: { type: 'ephemeral' }, messages: [{ role: 'user', content: 'tell me about Falcon' }] }));
    expect(() => guardrails.screenChat(contextFor(), messages)).toThrow(expect.objectContaining({ code: CONTENT_POLICY_VIOLATION }));
    const redacted = guardrails.screenChat(contextFor(), cached('mail jane@example.com'));
    expect(JSON.parse(redacted.messages[0]?.parts?.parts[0]?.rawJson ?? '')).toEqual({ type: 'text', text: 'mail [REDACTED:emails]', cache_control: { type: 'ephemeral' } });
  });

  it('screens moderation inputs, texts and text parts alike, passing image parts as they are', async () => {
    const adapters = new RecordingAdapters();
    const service = serviceWith(adapters);
    const moderation = (texts: string[], parts: chatv1.ModerationPart[] = []): chatv1.ModerationRequest => ({ model: 'mod', texts, parts, extraJson: '' });
    await service.moderate({ context: withRules('emails'), request: moderation(['plain', 'to jane@example.com']) }, new AbortController().signal);
    expect(adapters.moderations[0]?.texts).toEqual(['plain', 'to [REDACTED:emails]']);
    const image = { imageUrl: 'https://example.com/cat.png' };
    await service.moderate({ context: withRules('emails'), request: moderation([], [{ text: 'mail jane@example.com' }, image]) }, new AbortController().signal);
    expect(adapters.moderations[1]?.parts).toEqual([{ text: 'mail [REDACTED:emails]' }, image]);
    await expect(service.moderate({ context: contextFor(), request: moderation([], [image, { text: `key ${KEY}` }]) }, new AbortController().signal)).rejects.toMatchObject({ code: CONTENT_POLICY_VIOLATION, param: 'input[1].text' });
    expect(adapters.moderations).toHaveLength(2);
  });

  it('screens an image generation prompt: redacted before the provider sees it, or refused naming prompt', async () => {
    const adapters = new RecordingAdapters();
    const service = serviceWith(adapters);
    const images = (prompt: string): chatv1.ImageGenerationRequest => ({ model: 'img', prompt, extraJson: '', images: [] });
    await service.generateImages({ context: withRules('emails'), request: images('a poster for jane@example.com') }, new AbortController().signal);
    expect(adapters.images[0]?.prompt).toBe('a poster for [REDACTED:emails]');
    await expect(service.generateImages({ context: contextFor(), request: images(`a sign saying ${KEY}`) }, new AbortController().signal)).rejects.toMatchObject({ code: CONTENT_POLICY_VIOLATION, param: 'prompt' });
    expect(adapters.images).toHaveLength(1);
  });

  it("screens an image edit's prompt as a generation's, passing its images and mask on untouched", async () => {
    const adapters = new RecordingAdapters();
    const service = serviceWith(adapters);
    const photo: chatv1.UploadedFile = { data: Buffer.from('\x89PNG photo'), filename: 'photo.png', contentType: 'image/png' };
    const mask: chatv1.UploadedFile = { data: Buffer.from('\x89PNG mask'), filename: 'mask.png', contentType: 'image/png' };
    const edit = (prompt: string): chatv1.ImageGenerationRequest => ({ model: 'img', prompt, extraJson: '{"size":"1024x1024"}', images: [photo, photo], mask });
    await service.generateImages({ context: withRules('emails'), request: edit('add jane@example.com to the sign') }, new AbortController().signal);
    expect(adapters.images[0]).toEqual({ ...edit('add [REDACTED:emails] to the sign'), images: [photo, photo], mask });
    await expect(service.generateImages({ context: contextFor(), request: edit(`write ${KEY} on the wall`) }, new AbortController().signal)).rejects.toMatchObject({ code: CONTENT_POLICY_VIOLATION, param: 'prompt' });
    expect(adapters.images).toHaveLength(1);
  });

  it('screens a speech input before any voice says it: redacted, or refused naming input, never the text', async () => {
    const adapters = new RecordingAdapters();
    const matches: Array<[string, string, number]> = [];
    const service = serviceWith(adapters, matches);
    const spoken = await readSpeech(service.speak({ context: withRules('emails', 'cards'), request: speechRequest('Write to jane@example.com, card 4111 1111 1111 1111.') }, new AbortController().signal));
    expect(spoken.response?.characters).toBe('Write to [REDACTED:emails], card <card>.'.length);
    expect(adapters.speeches[0]).toEqual({ ...speechRequest(''), input: 'Write to [REDACTED:emails], card <card>.' });
    const refused = readSpeech(service.speak({ context: contextFor(), request: speechRequest(`My key is ${KEY}`) }, new AbortController().signal));
    await expect(refused).rejects.toMatchObject({ kind: 'content_filtered', code: CONTENT_POLICY_VIOLATION, param: 'input', message: expect.stringContaining('"secrets"') });
    await expect(refused).rejects.toMatchObject({ message: expect.not.stringContaining(KEY) });
    await expect(readSpeech(service.speak({ context: withRules('codename'), request: speechRequest('Falcon is go') }, new AbortController().signal))).rejects.toMatchObject({ code: CONTENT_POLICY_VIOLATION, param: 'input' });
    expect(adapters.speeches).toHaveLength(1);
    expect(matches).toEqual([['emails', 'redact', 1], ['cards', 'redact', 1], ['secrets', 'block', 1], ['codename', 'block', 1]]);
  });

  it("screens a transcription's or translation's prompt (redacted, or refused naming prompt); one without a prompt passes as it is", async () => {
    const adapters = new RecordingAdapters();
    const service = serviceWith(adapters);
    await service.transcribe({ context: withRules('emails'), request: transcriptionRequest('Names: jane@example.com') }, new AbortController().signal);
    expect(adapters.transcriptions[0]?.prompt).toBe('Names: [REDACTED:emails]');
    await expect(service.transcribe({ context: contextFor(), request: transcriptionRequest(`key ${KEY}`, true) }, new AbortController().signal)).rejects.toMatchObject({ code: CONTENT_POLICY_VIOLATION, param: 'prompt' });
    await service.transcribe({ context: withRules('emails', 'codename'), request: transcriptionRequest() }, new AbortController().signal);
    expect(adapters.transcriptions[1]).toEqual(transcriptionRequest());
    expect(adapters.transcriptions).toHaveLength(2);
  });

  it("does not screen a transcript: it is the audio's own text, returned as the provider gave it", async () => {
    const adapters = new RecordingAdapters();
    adapters.transcript = 'Write to jane@example.com.';
    const rules: GuardrailsInput = { rules: [{ id: 'emails-both', detect: 'email', action: 'redact', screen: ['input', 'output'] }], default: ['emails-both'] };
    const service = new RouterService(engineFor(policyConfig({}, MODELS)), adapters, new Guardrails(rules));
    const answer = await service.transcribe({ context: contextFor(), request: transcriptionRequest('Cc jane@example.com') }, new AbortController().signal);
    expect(adapters.transcriptions[0]?.prompt).toBe('Cc [REDACTED:emails-both]');
    expect(JSON.parse(answer.response?.body ?? '{}')).toEqual({ text: 'Write to jane@example.com.' });
  });

  it('refuses, rather than pass unscreened, a request naming a rule this router does not have: unavailable (503), retryable, while the configuration rolls out', async () => {
    const adapters = new RecordingAdapters();
    const unknown: string[] = [];
    const service = new RouterService(engineFor(policyConfig({}, MODELS)), adapters, new Guardrails(GUARDRAILS, () => undefined, (id) => unknown.push(id)));
    const refused = drain(service.chat({ context: withRules('emails', 'newer-rule'), request: chatRequest([user('mail jane@example.com')]) }, new AbortController().signal));
    await expect(refused).rejects.toMatchObject({ kind: 'unavailable', retryable: true, code: GUARDRAILS_UNAVAILABLE, message: expect.stringMatching(/guardrail configuration is being updated.*"newer-rule"/) });
    await expect(refused).rejects.toMatchObject({ message: expect.not.stringContaining('jane@example.com') });
    await expect(service.embed({ context: withRules('newer-rule'), request: embedRequest(['hi']) }, new AbortController().signal)).rejects.toMatchObject({ kind: 'unavailable', code: GUARDRAILS_UNAVAILABLE });
    await expect(readSpeech(service.speak({ context: withRules('newer-rule'), request: speechRequest('hi') }, new AbortController().signal))).rejects.toMatchObject({ kind: 'unavailable', code: GUARDRAILS_UNAVAILABLE });
    // A transcription with no prompt too: the rule may screen what the request carries next time.
    await expect(service.transcribe({ context: withRules('newer-rule'), request: transcriptionRequest() }, new AbortController().signal)).rejects.toMatchObject({ kind: 'unavailable', code: GUARDRAILS_UNAVAILABLE });
    expect(adapters.chats).toEqual([]);
    expect(adapters.embeds).toEqual([]);
    expect(adapters.speeches).toEqual([]);
    expect(adapters.transcriptions).toEqual([]);
    // The operator is told which rule is missing (the router warns of it).
    expect(unknown).toEqual(['newer-rule', 'newer-rule', 'newer-rule', 'newer-rule']);
  });

  it('screens answers by output rules: redacts a whole answer, and stops reading a stream once a block rule cut it', async () => {
    const rules: GuardrailsInput = {
      rules: [
        { id: 'emails-out', detect: 'email', action: 'redact', screen: ['output'] },
        { id: 'secrets-out', detect: 'secret', action: 'block', screen: ['input', 'output'] },
      ],
      default: ['emails-out'],
      outputHoldbackChars: 8,
    };
    const pieces = ['Write to ', 'jane@example.com', ' with ', KEY, ' and', ' more', ' words', '.'];
    let read = 0;
    let ended = false;
    const adapters: AdapterPort = {
      ...unusedAdapters(),
      chat: (call) =>
        (async function* () {
          try {
            if (!call.request?.stream) {
              yield { completion: { id: 'c', created: 1, model: 'm', choices: [{ index: 0, message: { role: 'assistant', content: pieces.join(''), toolCalls: [], extraJson: '' }, finishReason: 'stop', logprobsJson: '' }] } };
              return;
            }
            for (const [i, piece] of pieces.entries()) {
              read++;
              yield { chunk: { id: 'c', created: 1, model: 'm', choices: [{ index: 0, delta: { content: piece, toolCalls: [], extraJson: '' }, logprobsJson: '', ...(i === pieces.length - 1 && { finishReason: 'stop' }) }] } };
            }
          } finally {
            ended = true;
          }
        })(),
    };
    const service = new RouterService(engineFor(policyConfig({}, MODELS)), adapters, new Guardrails(rules));
    const events: routerv1.ChatResponse[] = [];
    for await (const event of service.chat({ context: withRules('secrets-out'), request: { ...chatRequest([user('hi')]), stream: true } }, new AbortController().signal)) events.push(event);
    const chunks = events.flatMap((e) => [e.routed?.chunk, e.chunk]).filter((c): c is chatv1.ChatChunk => c !== undefined);
    expect(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('')).toBe('Write to [REDACTED:emails-out] with ');
    expect(chunks.at(-1)?.choices[0]?.finishReason).toBe('content_filter');
    // The provider's stream was ended at the cut, not read to its end: the chunk after the key's shows it is whole.
    expect(ended).toBe(true);
    expect(read).toBe(5);

    const whole: routerv1.ChatResponse[] = [];
    for await (const event of service.chat({ context: contextFor(), request: chatRequest([user('hi')]) }, new AbortController().signal)) whole.push(event);
    // Without the tenant's block rule, only the default redaction applies.
    expect(whole.find((e) => e.routed)?.routed?.completion?.choices[0]?.message?.content).toBe(`Write to [REDACTED:emails-out] with ${KEY} and more words.`);
  });

  it('screens only the roles a rule is limited to: a system prompt keeps its support address, embeddings inputs count as user', () => {
    const guardrails = new Guardrails({
      rules: [
        { id: 'user-emails', detect: 'email', action: 'redact', roles: ['user', 'tool'] },
        { id: 'system-only', terms: ['falcon'], action: 'block', roles: ['system'] },
      ],
      default: ['user-emails', 'system-only'],
    });
    const request = chatRequest([{ ...user('Write from support@acme.example'), role: 'system' }, user('I am jane@example.com, about Falcon')]);
    const screened = guardrails.screenChat(contextFor(), request);
    expect(screened.messages.map((m) => m.text)).toEqual(['Write from support@acme.example', 'I am [REDACTED:user-emails], about Falcon']);
    expect(() => guardrails.screenChat(contextFor(), chatRequest([{ ...user('Falcon rules'), role: 'system' }]))).toThrow(expect.objectContaining({ code: CONTENT_POLICY_VIOLATION, param: 'messages[0].content' }));
    expect(guardrails.screenEmbeddings(contextFor(), embedRequest(['falcon at jane@example.com'])).texts).toEqual(['falcon at [REDACTED:user-emails]']);
  });

  it('counts a flag rule\'s matches and leaves the request as it is', async () => {
    const matches: Array<[string, string, number]> = [];
    const guardrails = new Guardrails({ rules: [{ id: 'watch', terms: ['invoice'], action: 'flag' }], default: ['watch'] }, (rule, action, count) => matches.push([rule, action, count]));
    const request = chatRequest([user('the invoice'), user('another Invoice, and an invoice')]);
    expect(guardrails.screenChat(contextFor(), request)).toBe(request);
    expect(matches).toEqual([['watch', 'flag', 3]]);
  });

  it('keeps redacted tool-call arguments valid JSON: after an escape sequence and in a bare number', () => {
    const guardrails = new Guardrails({ rules: [{ id: 'emails', detect: 'email', action: 'redact' }, { id: 'cards', detect: 'credit_card', action: 'redact' }], default: ['emails', 'cards'] });
    const call = (args: string): chatv1.Message => ({ role: 'assistant', contentIsNull: true, toolCalls: [{ id: 't', type: 'function', function: { name: 'f', arguments: args } }], extraJson: '' });
    const screened = guardrails.screenChat(contextFor(), chatRequest([call('{"to":"hi\\njane@corp.io","card":4111111111111111}')]));
    expect(JSON.parse(screened.messages[0]?.toolCalls[0]?.function?.arguments ?? '')).toEqual({ to: 'hi\n[REDACTED:emails]', card: '[REDACTED:cards]' });
    // A match in a number takes the whole number, its sign, decimals and exponent; decimals are no card.
    const numbers = '{"n":-4111111111111111,"amt":4111111111111111.5,"v":0.4111111111111111}';
    expect(JSON.parse(guardrails.screenChat(contextFor(), chatRequest([call(numbers)])).messages[0]?.toolCalls[0]?.function?.arguments ?? '')).toEqual({ n: '[REDACTED:cards]', amt: 4111111111111111.5, v: 0.4111111111111111 });
    const digits = new Guardrails({ rules: [{ id: 'digits', pattern: '\\d{4}', action: 'redact' }], default: ['digits'] });
    const byDigits = digits.screenChat(contextFor(), chatRequest([call('{"a":-12345.5e+3,"b":[1234, 7]}')]));
    expect(JSON.parse(byDigits.messages[0]?.toolCalls[0]?.function?.arguments ?? '')).toEqual({ a: '[REDACTED:digits]', b: ['[REDACTED:digits]', 7] });
  });

  it('finds a key or a term right after an escape sequence in tool-call arguments', () => {
    const guardrails = new Guardrails(GUARDRAILS);
    const call = (args: string): chatv1.Message => ({ role: 'assistant', contentIsNull: true, toolCalls: [{ id: 't', type: 'function', function: { name: 'f', arguments: args } }], extraJson: '' });
    expect(() => guardrails.screenChat(contextFor(), chatRequest([call(`{"env":"A=1\\n${KEY}"}`)]))).toThrow(expect.objectContaining({ code: CONTENT_POLICY_VIOLATION, param: 'messages[0].tool_calls[0].function.arguments' }));
    expect(() => guardrails.screenChat(withRules('codename'), chatRequest([call('{"note":"Plan:\\tFalcon"}')]))).toThrow(expect.objectContaining({ code: CONTENT_POLICY_VIOLATION }));
  });

  it('reads tool-call arguments with their JSON escapes decoded: \\u escapes and surrogate pairs hide nothing, and a redaction replaces whole escapes', () => {
    const guardrails = new Guardrails({
      rules: [
        { id: 'emails', detect: 'email', action: 'redact' },
        { id: 'codename', terms: ['falcon'], action: 'block' },
        { id: 'tickets', pattern: 'INC-\\d{3}', action: 'redact', replacement: '<ticket>' },
        { id: 'waves', pattern: '🌊+', action: 'redact', replacement: '~' },
      ],
      default: ['emails', 'tickets', 'waves'],
    });
    const call = (args: string): chatv1.Message => ({ role: 'assistant', contentIsNull: true, toolCalls: [{ id: 't', type: 'function', function: { name: 'f', arguments: args } }], extraJson: '' });
    const screened = (args: string): string => guardrails.screenChat(contextFor(), chatRequest([user('hi'), call(args)])).messages[1]?.toolCalls[0]?.function?.arguments ?? '';
    // An email written with \u0040 for its @, every character escaped, or an escaped quote before it.
    expect(screened('{"to":"alice\\u0040example.com"}')).toBe('{"to":"[REDACTED:emails]"}');
    const escaped = [...'bob@example.org'].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('');
    expect(JSON.parse(screened(`{"to":"${escaped}","cc":"x"}`))).toEqual({ to: '[REDACTED:emails]', cc: 'x' });
    expect(JSON.parse(screened('{"q":"say \\"hi\\" to jane@corp.io\\\\"}'))).toEqual({ q: 'say "hi" to [REDACTED:emails]\\' });
    // A match whose last character is written as an escape takes the whole escape sequence: INC-12\u0033 is INC-123.
    expect(JSON.parse(screened('{"t":"INC-12\\u0033\\u0034"}'))).toEqual({ t: '<ticket>4' });
    expect(screened('{"t":"x \\u0049NC-123"}')).toBe('{"t":"x <ticket>"}');
    // A character written as the two escapes of its surrogate pair is one character, replaced whole.
    expect(JSON.parse(screened('{"sea":"a\\ud83c\\udf0a🌊b"}'))).toEqual({ sea: 'a~b' });
    // A term with an escaped letter is still the term, and the block names the same param.
    expect(() => guardrails.screenChat(withRules('codename'), chatRequest([user('hi'), call('{"note":"F\\u0061lcon"}')]))).toThrow(expect.objectContaining({ kind: 'content_filtered', code: CONTENT_POLICY_VIOLATION, param: 'messages[1].tool_calls[0].function.arguments' }));
    // A number beside a match is left alone; text without a match is left as it was written, escapes and all.
    expect(JSON.parse(screened('{"n":1,"to":"a\\u0040b.io"}'))).toEqual({ n: 1, to: '[REDACTED:emails]' });
    expect(screened('{"plain":"caf\\u00e9 \\/ bar"}')).toBe('{"plain":"caf\\u00e9 \\/ bar"}');
  });

  it('matches a multi-word term across any run of white space, case aside', () => {
    const guardrails = new Guardrails({ rules: [{ id: 'codename', terms: ['Project Falcon'], action: 'block' }], default: ['codename'] });
    for (const text of ['about project falcon', 'PROJECT\tFALCON', 'project\n  falcon', 'project\u00a0falcon', 'project \r\n falcon']) {
      expect(() => guardrails.screenChat(contextFor(), chatRequest([user(text)]))).toThrow(expect.objectContaining({ code: CONTENT_POLICY_VIOLATION }));
    }
    const call: chatv1.Message = { role: 'assistant', contentIsNull: true, toolCalls: [{ id: 't', type: 'function', function: { name: 'f', arguments: '{"x":"project\\nfalcon"}' } }], extraJson: '' };
    expect(() => guardrails.screenChat(contextFor(), chatRequest([call]))).toThrow(expect.objectContaining({ param: 'messages[0].tool_calls[0].function.arguments' }));
    for (const text of ['projectfalcon', 'project-falcon', 'project falcons', 'project, falcon']) expect(guardrails.screenChat(contextFor(), chatRequest([user(text)])).messages[0]?.text).toBe(text);
  });

  it('leaves a request untouched when no rule applies, and reads its rules from a parsed configuration', () => {
    const none = new Guardrails();
    const request = chatRequest([user('jane@example.com')]);
    expect(none.screenChat(contextFor(), request)).toBe(request);
    const config = guardrailsSchema.parse({ rules: [{ id: 'emails', detect: 'email', action: 'redact', replacement: '***' }], default: ['emails'] });
    expect(new Guardrails(config).screenChat(contextFor(), request).messages[0]?.text).toBe('***');
  });
});
