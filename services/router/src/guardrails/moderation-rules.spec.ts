import type { GuardrailsInput } from '@openrouter/config';
import { chatv1, type adapterv1, type routerv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { RouterService, type AdapterPort } from '../router.service';
import { POLICY_MODELS, policyConfig } from '../routing/policy-config.testing';
import { contextFor, engineFor } from '../routing/test-engine.testing';
import { categoryHit, CONTENT_POLICY_VIOLATION, Guardrails, GUARDRAILS_UNAVAILABLE } from './guardrails';
import { readSpeech, speechStream } from '../speech.testing';

const MODELS = [
  ...POLICY_MODELS,
  { id: 'emb', capabilities: ['embeddings'], pricing: { input: '0.1', output: '0' }, deployments: [{ id: 'emb-eu', provider: 'eu-1', model: 'emb' }] },
  { id: 'img', capabilities: ['images'], pricing: { input: '5', output: '40' }, deployments: [{ id: 'img-eu', provider: 'eu-1', model: 'gpt-image-1' }] },
  { id: 'stt', capabilities: ['transcription'], pricing: { perAudioMinute: '0.006' }, deployments: [{ id: 'stt-eu', provider: 'eu-1', model: 'whisper-1' }] },
  { id: 'tts', capabilities: ['speech'], pricing: { perMillionCharacters: '15' }, deployments: [{ id: 'tts-eu', provider: 'eu-1', model: 'tts-1' }] },
  {
    id: 'mod',
    capabilities: ['moderation'],
    pricing: { input: '0' },
    deployments: [
      { id: 'mod-eu', provider: 'eu-1', model: 'omni-moderation-latest' },
      { id: 'mod-us', provider: 'us', model: 'omni-moderation-latest' },
    ],
  },
  { id: 'mod-eu-only', capabilities: ['moderation'], pricing: { input: '0' }, deployments: [{ id: 'mod2-eu', provider: 'eu-2', model: 'text-moderation-latest' }] },
];

/** Scores as a moderation model would: "kill" is violence, "sad" a low self-harm score, anything else nothing. */
function judge(text: string): chatv1.ModerationResult {
  const violence = /kill/i.test(text) ? 0.95 : 0.0001;
  const selfHarm = /sad/i.test(text) ? 0.3 : 0.0001;
  return {
    flagged: violence >= 0.5 || selfHarm >= 0.5,
    categories: { violence: violence >= 0.5, 'self-harm': selfHarm >= 0.5, hate: false },
    categoryScores: { violence, 'self-harm': selfHarm, hate: 0.0001 },
    extraJson: '',
  };
}

interface ModerationCallRecord {
  deployment: string;
  texts: string[];
}

/** Adapters in process: moderation answered by `judge` (or failed while `failing`), chats and embeddings recorded. */
class FakeAdapters implements AdapterPort {
  readonly chats: chatv1.ChatRequest[] = [];
  readonly embeds: chatv1.EmbeddingRequest[] = [];
  readonly moderations: ModerationCallRecord[] = [];
  failing: GatewayError | undefined;
  /** Set: each moderation call is told to it, and answers only by failing when its signal aborts. */
  hanging: (() => void) | undefined;

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

  async moderate(request: adapterv1.ModerateRequest, signal: AbortSignal, deployment: string): Promise<adapterv1.ModerateResponse> {
    const texts = request.request?.texts ?? [];
    this.moderations.push({ deployment, texts });
    if (this.hanging) {
      this.hanging();
      await new Promise((_, reject) => signal.addEventListener('abort', () => reject(new GatewayError('cancelled', 'The call was cancelled.')), { once: true }));
    }
    if (this.failing) throw this.failing;
    return { response: chatv1.ModerationResponse.fromPartial({ id: 'modr-1', model: request.upstreamModel, results: texts.map(judge) }) };
  }

  readonly images: chatv1.ImageGenerationRequest[] = [];
  async generateImages(request: adapterv1.GenerateImagesRequest): Promise<adapterv1.GenerateImagesResponse> {
    if (request.request) this.images.push(request.request);
    return { response: chatv1.ImageGenerationResponse.fromPartial({ created: 1, data: [{ url: 'https://example.com/a.png' }] }) };
  }

  readonly transcriptions: chatv1.AudioTranscriptionRequest[] = [];
  async transcribe(request: adapterv1.TranscribeRequest): Promise<adapterv1.TranscribeResponse> {
    if (request.request) this.transcriptions.push(request.request);
    // The transcript is not screened, however unsafe the model would judge it.
    return { response: { body: '{"text":"I will kill the lights."}', contentType: 'application/json', usage: chatv1.Usage.fromPartial({ completionTokens: 6, totalTokens: 6, estimated: true }), audioMs: 1_000 } };
  }

  readonly speeches: chatv1.SpeechRequest[] = [];
  speak(request: adapterv1.SpeakRequest): AsyncIterator<adapterv1.SpeakResponse> {
    if (request.request) this.speeches.push(request.request);
    return speechStream({ audio: Buffer.from('ID3'), contentType: 'audio/mpeg', usage: chatv1.Usage.fromPartial({ promptTokens: 1, totalTokens: 1, estimated: true }), characters: request.request?.input.length ?? 0 });
  }
}

const user = (text: string): chatv1.Message => ({ role: 'user', text, contentIsNull: false, toolCalls: [], extraJson: '' });
const system = (text: string): chatv1.Message => ({ ...user(text), role: 'system' });
const chatRequest = (messages: chatv1.Message[]): chatv1.ChatRequest => ({ model: 'other', messages, tools: [], stop: [], stream: false, logitBias: {}, metadata: {}, modalities: [], extraJson: '' }) as chatv1.ChatRequest;
const embedRequest = (texts: string[], tokenInputs: chatv1.TokenIds[] = []): chatv1.EmbeddingRequest => ({ model: 'emb', texts, tokenInputs, extraJson: '' });
const withRules = (guardrails: string[], policy: Partial<routerv1.TenantPolicy> = {}, overrides: Partial<routerv1.RequestContext> = {}): routerv1.RequestContext =>
  contextFor({ policy: { excludeProviders: [], guardrails, ...policy }, ...overrides });

const RULES: GuardrailsInput['rules'] = [
  { id: 'unsafe', moderation: { model: 'mod' }, action: 'block' },
  { id: 'violence-only', moderation: { model: 'mod', categories: ['violence'] }, action: 'block' },
  { id: 'self-harm-watch', moderation: { model: 'mod', categories: ['self-harm'], threshold: 0.25 }, action: 'flag' },
  { id: 'self-harm-strict', moderation: { model: 'mod', categories: ['self-harm'] }, action: 'block' },
  { id: 'user-only', moderation: { model: 'mod' }, action: 'block', roles: ['user'] },
  { id: 'eu-only', moderation: { model: 'mod-eu-only' }, action: 'block' },
  { id: 'eu-only-flag', moderation: { model: 'mod-eu-only' }, action: 'flag' },
  { id: 'emails', detect: 'email', action: 'redact' },
];

interface Setup {
  adapters: FakeAdapters;
  service: RouterService;
  matches: Array<[string, string, number]>;
  failures: Array<[string, string, string, string]>;
}

function setup(failMode: 'closed' | 'open' = 'closed', options: { moderationTimeoutMs?: number; routing?: Record<string, unknown> } = {}): Setup {
  const adapters = new FakeAdapters();
  const matches: Array<[string, string, number]> = [];
  const failures: Array<[string, string, string, string]> = [];
  const guardrails = new Guardrails(
    { rules: RULES, moderationFailMode: failMode, moderationTimeoutMs: options.moderationTimeoutMs },
    (rule, action, count) => matches.push([rule, action, count]),
    () => undefined,
    (rule, model, failure, outcome) => failures.push([rule, model, failure.kind, outcome]),
  );
  return { adapters, matches, failures, service: new RouterService(engineFor(policyConfig(options.routing ?? {}, MODELS)), adapters, guardrails) };
}

async function drain(stream: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of stream) {
    // drained
  }
}

const chat = (service: RouterService, context: routerv1.RequestContext, request: chatv1.ChatRequest, signal = new AbortController().signal): Promise<void> => drain(service.chat({ context, request }, signal));

describe('moderation rules in the router service', () => {
  it('refuses a request whose text the model judges unsafe, naming the rule, the category and the field but never the text, before any chat route', async () => {
    const { adapters, service, matches } = setup();
    const refused = chat(service, withRules(['unsafe']), chatRequest([system('You help.'), user('hello'), user('I will kill him tonight')]));
    await expect(refused).rejects.toMatchObject({ kind: 'content_filtered', retryable: false, code: CONTENT_POLICY_VIOLATION, param: 'messages[2].content' });
    await expect(refused).rejects.toMatchObject({ message: expect.stringMatching(/guardrail rule "unsafe".*messages\[2\]\.content.*category "violence"/) });
    await expect(refused).rejects.toMatchObject({ message: expect.not.stringContaining('kill') });
    expect(adapters.chats).toEqual([]);
    expect(adapters.moderations).toEqual([{ deployment: expect.any(String), texts: ['You help.', 'hello', 'I will kill him tonight'] }]);
    expect(matches).toEqual([['unsafe', 'block', 1]]);
  });

  it('serves a benign request after one moderation call, with every text of the request: string content, text parts and tool-call arguments', async () => {
    const { adapters, service, matches } = setup();
    const parts = { ...user(''), text: undefined, parts: { parts: [{ text: 'look at this' }, { text: 'and this' }] } } as chatv1.Message;
    const call: chatv1.Message = { role: 'assistant', contentIsNull: true, toolCalls: [{ id: 't', type: 'function', function: { name: 'f', arguments: '{"q":"weather"}' } }], extraJson: '' };
    await chat(service, withRules(['unsafe']), { ...chatRequest([user('hi'), parts, call, user('   ')]), model: 'gpt' });
    // Blank texts are not sent.
    expect(adapters.moderations).toEqual([{ deployment: expect.any(String), texts: ['hi', 'look at this', 'and this', '{"q":"weather"}'] }]);
    expect(adapters.chats).toHaveLength(1);
    expect(matches).toEqual([]);
    // A hit in a tool call's arguments names them as other rules do.
    const killer: chatv1.Message = { ...call, toolCalls: [{ id: 't', type: 'function', function: { name: 'f', arguments: '{"plan":"kill the witness"}' } }] };
    await expect(chat(service, withRules(['unsafe']), chatRequest([user('hi'), killer]))).rejects.toMatchObject({ param: 'messages[1].tool_calls[0].function.arguments' });
  });

  it('asks each model once however many rules name it, and judges each rule by its own categories and threshold', async () => {
    const { adapters, service, matches } = setup();
    // A low self-harm score: the model does not flag it, the flag rule's threshold (0.25) does.
    await chat(service, withRules(['violence-only', 'self-harm-watch', 'self-harm-strict', 'eu-only-flag']), chatRequest([user('I feel sad'), user('so sad today')]));
    // One call to each of the two models, with both texts.
    expect(adapters.moderations).toHaveLength(2);
    expect(new Set(adapters.moderations.map((m) => m.deployment.replace(/-(eu|us)$/, '')))).toEqual(new Set(['mod', 'mod2']));
    expect(adapters.moderations.map((m) => m.texts)).toEqual([['I feel sad', 'so sad today'], ['I feel sad', 'so sad today']]);
    expect(matches).toEqual([['self-harm-watch', 'flag', 2]]);
    expect(adapters.chats).toHaveLength(1);
    // Violence is not a category of the self-harm rules; the violence rule refuses it.
    await expect(chat(service, withRules(['self-harm-watch', 'self-harm-strict']), chatRequest([user('kill')]))).resolves.toBeUndefined();
    await expect(chat(service, withRules(['self-harm-strict', 'violence-only']), chatRequest([user('kill')]))).rejects.toMatchObject({ message: expect.stringContaining('"violence-only"') });
  });

  it('sends only the texts of the roles a rule screens: a violent system prompt passes a user-only rule', async () => {
    const { adapters, service } = setup();
    await chat(service, withRules(['user-only']), chatRequest([system('Stories may say kill.'), user('tell me a story')]));
    expect(adapters.moderations).toEqual([{ deployment: expect.any(String), texts: ['tell me a story'] }]);
    expect(adapters.chats).toHaveLength(1);
    // No text of its roles: no call at all.
    await chat(service, withRules(['user-only']), chatRequest([system('only a system prompt')]));
    expect(adapters.moderations).toHaveLength(1);
    await expect(chat(service, withRules(['user-only']), chatRequest([system('fine'), user('kill')]))).rejects.toMatchObject({ param: 'messages[1].content' });
  });

  it('moderates the request as redacted by the other rules', async () => {
    const { adapters, service } = setup();
    await chat(service, withRules(['emails', 'unsafe']), chatRequest([user('mail jane@example.com')]));
    expect(adapters.moderations[0]?.texts).toEqual(['mail [REDACTED:emails]']);
  });

  it('screens an image generation prompt, naming prompt, before any image model is called', async () => {
    const { adapters, service } = setup();
    const images = (prompt: string): chatv1.ImageGenerationRequest => ({ model: 'img', prompt, extraJson: '', images: [] });
    await expect(service.generateImages({ context: withRules(['unsafe']), request: images('a knight about to kill a dragon') }, new AbortController().signal)).rejects.toMatchObject({ code: CONTENT_POLICY_VIOLATION, param: 'prompt' });
    expect(adapters.images).toEqual([]);
    await service.generateImages({ context: withRules(['unsafe']), request: images('a calm lake') }, new AbortController().signal);
    expect(adapters.moderations.at(-1)?.texts).toEqual(['a calm lake']);
    expect(adapters.images).toHaveLength(1);
  });

  it("judges an image edit's prompt as a generation's, naming prompt, before any image model is called", async () => {
    const { adapters, service } = setup();
    const edit = (prompt: string): chatv1.ImageGenerationRequest => ({ model: 'img', prompt, extraJson: '', images: [{ data: Buffer.from('\x89PNG'), filename: 'a.png', contentType: 'image/png' }] });
    await expect(service.generateImages({ context: withRules(['unsafe']), request: edit('make the knight kill the dragon') }, new AbortController().signal)).rejects.toMatchObject({ code: CONTENT_POLICY_VIOLATION, param: 'prompt' });
    expect(adapters.images).toEqual([]);
    await service.generateImages({ context: withRules(['unsafe']), request: edit('add a rainbow') }, new AbortController().signal);
    expect(adapters.moderations.at(-1)?.texts).toEqual(['add a rainbow']);
    expect(adapters.images.map((r) => r.images.length)).toEqual([1]);
  });

  it('screens a speech input (naming input) and a transcription prompt (naming prompt) before any audio model is called; asks nothing of a transcription without a prompt', async () => {
    const { adapters, service } = setup();
    const speech = (input: string): chatv1.SpeechRequest => ({ model: 'tts', input, voice: 'alloy', extraJson: '' });
    const transcription = (prompt?: string): chatv1.AudioTranscriptionRequest => ({ model: 'stt', file: Buffer.from('RIFF'), filename: 'a.wav', contentType: 'audio/wav', translate: false, ...(prompt !== undefined && { prompt }), extraFields: [], durationMs: 0 });
    await expect(readSpeech(service.speak({ context: withRules(['unsafe']), request: speech('I will kill you') }, new AbortController().signal))).rejects.toMatchObject({ code: CONTENT_POLICY_VIOLATION, param: 'input', message: expect.stringContaining('"violence"') });
    await expect(service.transcribe({ context: withRules(['unsafe']), request: transcription('kill list') }, new AbortController().signal)).rejects.toMatchObject({ code: CONTENT_POLICY_VIOLATION, param: 'prompt' });
    expect(adapters.speeches).toEqual([]);
    expect(adapters.transcriptions).toEqual([]);
    await readSpeech(service.speak({ context: withRules(['emails', 'unsafe']), request: speech('Mail jane@example.com') }, new AbortController().signal));
    expect(adapters.moderations.at(-1)?.texts).toEqual(['Mail [REDACTED:emails]']);
    await service.transcribe({ context: withRules(['unsafe']), request: transcription('A calm meeting') }, new AbortController().signal);
    expect(adapters.moderations.at(-1)?.texts).toEqual(['A calm meeting']);
    const asked = adapters.moderations.length;
    const answer = await service.transcribe({ context: withRules(['unsafe']), request: transcription() }, new AbortController().signal);
    expect(adapters.moderations).toHaveLength(asked);
    expect(JSON.parse(answer.response?.body ?? '{}')).toEqual({ text: 'I will kill the lights.' });
    expect(adapters.speeches).toHaveLength(1);
    expect(adapters.transcriptions).toHaveLength(2);
  });

  it('marks a speech or transcription route unscreened when a block rule failed open, and refuses it when failing closed', async () => {
    const open = setup('open');
    open.adapters.failing = new GatewayError('timeout', 'the moderation call timed out');
    const speech: chatv1.SpeechRequest = { model: 'tts', input: 'hello', voice: 'alloy', extraJson: '' };
    const transcription: chatv1.AudioTranscriptionRequest = { model: 'stt', file: Buffer.from('RIFF'), filename: 'a.wav', contentType: 'audio/wav', translate: true, prompt: 'hello', extraFields: [], durationMs: 0 };
    expect((await readSpeech(open.service.speak({ context: withRules(['unsafe']), request: speech }, new AbortController().signal))).decision?.unscreened).toBe(true);
    expect((await open.service.transcribe({ context: withRules(['unsafe']), request: transcription }, new AbortController().signal)).decision?.unscreened).toBe(true);
    expect(open.failures).toEqual([['unsafe', 'mod', 'timeout', 'skipped'], ['unsafe', 'mod', 'timeout', 'skipped']]);
    open.adapters.failing = undefined;
    expect((await readSpeech(open.service.speak({ context: withRules(['unsafe']), request: speech }, new AbortController().signal))).decision?.unscreened).toBeUndefined();
    const closed = setup('closed');
    closed.adapters.failing = new GatewayError('upstream_error', 'provider said 500', { upstreamStatus: 500 });
    await expect(readSpeech(closed.service.speak({ context: withRules(['unsafe']), request: speech }, new AbortController().signal))).rejects.toMatchObject({ kind: 'unavailable', code: GUARDRAILS_UNAVAILABLE });
    await expect(closed.service.transcribe({ context: withRules(['unsafe']), request: transcription }, new AbortController().signal)).rejects.toMatchObject({ kind: 'unavailable', code: GUARDRAILS_UNAVAILABLE });
    expect(closed.adapters.speeches).toEqual([]);
    expect(closed.adapters.transcriptions).toEqual([]);
  });

  it('screens embeddings text inputs, naming input[i], and leaves token-id inputs out', async () => {
    const { adapters, service } = setup();
    await expect(service.embed({ context: withRules(['unsafe']), request: embedRequest(['fine', 'kill them all']) }, new AbortController().signal)).rejects.toMatchObject({
      code: CONTENT_POLICY_VIOLATION,
      param: 'input[1]',
    });
    expect(adapters.embeds).toEqual([]);
    await service.embed({ context: withRules(['unsafe']), request: embedRequest(['a calm sentence'], [{ ids: [1, 2] }]) }, new AbortController().signal);
    expect(adapters.moderations.at(-1)?.texts).toEqual(['a calm sentence']);
    await service.embed({ context: withRules(['unsafe']), request: embedRequest([], [{ ids: [1, 2] }]) }, new AbortController().signal);
    expect(adapters.moderations).toHaveLength(2);
    expect(adapters.embeds).toHaveLength(2);
  });

  it('fails closed by default: a block rule whose model did not answer refuses the request with a retryable 503 naming the rule', async () => {
    const { adapters, service, failures } = setup('closed');
    adapters.failing = new GatewayError('upstream_error', 'provider said 500', { upstreamStatus: 500 });
    // The flag rule on the same model lets nothing through: the request is refused, and only the block rule told of.
    const refused = chat(service, withRules(['unsafe', 'self-harm-watch']), chatRequest([user('a private sentence')]));
    await expect(refused).rejects.toMatchObject({ kind: 'unavailable', retryable: true, code: GUARDRAILS_UNAVAILABLE, message: expect.stringMatching(/guardrail rule "unsafe".*moderation model "mod" did not answer \(upstream_error\)/) });
    await expect(refused).rejects.toMatchObject({ message: expect.not.stringContaining('private sentence') });
    expect(adapters.chats).toEqual([]);
    expect(failures).toEqual([['unsafe', 'mod', 'upstream_error', 'refused']]);
    // A flag rule never refuses: it is skipped, and the request served.
    await chat(service, withRules(['self-harm-watch']), chatRequest([user('hello')]));
    expect(adapters.chats).toHaveLength(1);
    expect(failures.at(-1)).toEqual(['self-harm-watch', 'mod', 'upstream_error', 'skipped']);
  });

  it('fails open when configured: the request is served unscreened by the rule, and the skip reported', async () => {
    const { adapters, service, failures, matches } = setup('open');
    adapters.failing = new GatewayError('timeout', 'the moderation call timed out');
    const events: routerv1.ChatResponse[] = [];
    for await (const event of service.chat({ context: withRules(['unsafe']), request: chatRequest([user('kill')]) }, new AbortController().signal)) events.push(event);
    expect(adapters.chats).toHaveLength(1);
    expect(failures).toEqual([['unsafe', 'mod', 'timeout', 'skipped']]);
    expect(matches).toEqual([]);
    // The route says so, and ingress does not store the answer in the response cache.
    expect(events.find((e) => e.routed)?.routed?.decision?.unscreened).toBe(true);
    adapters.failing = undefined;
    const screened: routerv1.ChatResponse[] = [];
    for await (const event of service.chat({ context: withRules(['unsafe']), request: chatRequest([user('hello')]) }, new AbortController().signal)) screened.push(event);
    expect(screened.find((e) => e.routed)?.routed?.decision?.unscreened).toBeUndefined();
  });

  describe('a moderation model that hangs', () => {
    // A whole answer's attempt timeout far beyond this test's own: only the guardrails' budget can end the call.
    const routing = { retry: { baseDelayMs: 0, maxDelayMs: 0, completionTimeoutMs: 600_000 } };
    const streamed = (text: string): chatv1.ChatRequest => ({ ...chatRequest([user(text)]), stream: true });

    it('is given up after moderationTimeoutMs, not completionTimeoutMs: failing open, the streamed chat is served unscreened', async () => {
      const { adapters, service, failures } = setup('open', { moderationTimeoutMs: 50, routing });
      adapters.hanging = () => undefined;
      const events: routerv1.ChatResponse[] = [];
      for await (const event of service.chat({ context: withRules(['unsafe']), request: streamed('hello') }, new AbortController().signal)) events.push(event);
      expect(adapters.chats).toHaveLength(1);
      expect(failures).toEqual([['unsafe', 'mod', 'timeout', 'skipped']]);
      expect(events.find((e) => e.routed)?.routed?.decision?.unscreened).toBe(true);
    }, 15_000);

    it('failing closed, refuses the request with the documented retryable 503 guardrails_unavailable, nothing routed', async () => {
      const { adapters, service, failures } = setup('closed', { moderationTimeoutMs: 50, routing });
      adapters.hanging = () => undefined;
      await expect(chat(service, withRules(['unsafe']), streamed('hello'))).rejects.toMatchObject({ kind: 'unavailable', retryable: true, code: GUARDRAILS_UNAVAILABLE, message: expect.stringContaining('did not answer (timeout)') });
      expect(adapters.chats).toEqual([]);
      expect(failures).toEqual([['unsafe', 'mod', 'timeout', 'refused']]);
    }, 15_000);

    it('is given no more than routing.retry.deadlineMs, when that is the shorter', async () => {
      const { adapters, service, failures } = setup('open', { moderationTimeoutMs: 600_000, routing: { retry: { ...routing.retry, deadlineMs: 50 } } });
      adapters.hanging = () => undefined;
      await chat(service, withRules(['unsafe']), streamed('hello'));
      expect(adapters.chats).toHaveLength(1);
      expect(failures).toEqual([['unsafe', 'mod', 'timeout', 'skipped']]);
    }, 15_000);
  });

  it('applies the tenant policy to the moderation call: routed within its residency, refused (closed) when the model has no permitted deployment', async () => {
    const { adapters, service, failures } = setup('closed');
    await chat(service, withRules(['unsafe'], { residency: { values: ['us'] } }), { ...chatRequest([user('hello')]), model: 'us-only' });
    expect(adapters.moderations).toEqual([{ deployment: 'mod-us', texts: ['hello'] }]);
    // mod-eu-only has no US deployment: it cannot screen a US-only tenant's request.
    await expect(chat(service, withRules(['eu-only'], { residency: { values: ['us'] } }), { ...chatRequest([user('hello')]), model: 'us-only' })).rejects.toMatchObject({ code: GUARDRAILS_UNAVAILABLE });
    expect(adapters.moderations).toHaveLength(1);
    expect(failures).toEqual([['eu-only', 'mod-eu-only', expect.any(String), 'refused']]);
    // The key's allowed models are the client's choice of chat models: they do not stop the operator's moderation model.
    await chat(service, withRules(['unsafe'], {}, { allowedModels: ['other'] }), chatRequest([user('hello')]));
    expect(adapters.moderations).toHaveLength(2);
    expect(adapters.chats).toHaveLength(2);
  });

  it("plans the moderation call under routing.defaults, not the tenant's routing.policies entry, which still applies to the tenant's own requests", async () => {
    // The org's route settings allow only the US provider: mod-eu-only (eu-2) is outside them.
    const policies = [{ id: 'us-providers', match: { org: 'org' }, route: { providers: { only: ['us'] }, minQuality: 0.8 }, allowOverrides: false }];
    for (const failMode of ['closed', 'open'] as const) {
      const { adapters, service, failures } = setup(failMode, { routing: { policies } });
      // Screened by the operator's model wherever the tenant prefers its own requests served: neither refused (closed) nor skipped (open).
      await expect(chat(service, withRules(['eu-only']), { ...chatRequest([user('kill')]), model: 'gpt' })).rejects.toMatchObject({ code: CONTENT_POLICY_VIOLATION });
      await chat(service, withRules(['eu-only']), { ...chatRequest([user('hello')]), model: 'gpt' });
      expect(adapters.moderations.map((m) => m.deployment)).toEqual(['mod2-eu', 'mod2-eu']);
      expect(adapters.chats).toHaveLength(1);
      expect(failures).toEqual([]);
      // The tenant's own moderation request is routed under its policy.
      await expect(service.moderate({ context: withRules([]), request: { model: 'mod-eu-only', texts: ['hi'], parts: [], extraJson: '' } }, new AbortController().signal)).rejects.toMatchObject({ code: 'provider_not_allowed' });
    }
  });

  it('passes a cancelled client on as a cancellation, not as a failure of the model, even failing open', async () => {
    const { adapters, service, failures } = setup('open');
    const controller = new AbortController();
    const called = new Promise<void>((resolve) => (adapters.hanging = resolve));
    const served = chat(service, withRules(['unsafe']), chatRequest([user('hello')]), controller.signal);
    await called;
    controller.abort();
    await expect(served).rejects.toMatchObject({ kind: 'cancelled' });
    expect(adapters.chats).toEqual([]);
    expect(failures).toEqual([]);
  });

  it('does not send a moderation request to the moderation rules (it is one already), nor call anything when no moderation rule applies', async () => {
    const { adapters, service } = setup();
    await service.moderate({ context: withRules(['unsafe']), request: { model: 'mod', texts: ['kill'], parts: [], extraJson: '' } }, new AbortController().signal);
    expect(adapters.moderations).toEqual([{ deployment: expect.any(String), texts: ['kill'] }]);
    await chat(service, withRules(['emails']), chatRequest([user('kill')]));
    expect(adapters.moderations).toHaveLength(1);
  });
});

describe('categoryHit', () => {
  const result = judge('kill, and so sad');
  it('takes the model\'s own verdict without a threshold, and the scores with one, the highest-scoring category first', () => {
    expect(categoryHit({ model: 'm' }, result)).toBe('violence');
    expect(categoryHit({ model: 'm', categories: ['self-harm'] }, result)).toBeUndefined();
    expect(categoryHit({ model: 'm', categories: ['self-harm'], threshold: 0.3 }, result)).toBe('self-harm');
    expect(categoryHit({ model: 'm', categories: ['self-harm'], threshold: 0.31 }, result)).toBeUndefined();
    expect(categoryHit({ model: 'm', threshold: 0.2 }, result)).toBe('violence');
    expect(categoryHit({ model: 'm', categories: ['hate', 'self-harm'], threshold: 0.2 }, result)).toBe('self-harm');
    expect(categoryHit({ model: 'm' }, judge('a calm day'))).toBeUndefined();
    expect(categoryHit({ model: 'm' }, undefined)).toBeUndefined();
  });
});
