import { chatv1, routerv1, type adapterv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { RouterService, type AdapterPort } from './router.service';
import { chatRequestTraits } from './routing/route-planner';
import { configWith, contextFor, engineFor, ManualClock, TWO_MODELS } from './routing/test-engine.testing';
import { unusedAdapters } from './adapter-port.testing';
import { readSpeech, speechStream } from './speech.testing';

const message = (text: string): chatv1.Message => ({ role: 'user', text, contentIsNull: false, toolCalls: [], extraJson: '' });
function chatRequest(model: string, text: string, extra: Record<string, unknown> = {}): chatv1.ChatRequest {
  return { model, messages: [message(text)], tools: [], stop: [], stream: false, logitBias: {}, metadata: {}, modalities: [], extraJson: JSON.stringify(extra) } as chatv1.ChatRequest;
}
const completion = (model: string): chatv1.ChatCompletion => ({ id: 'c', created: 1, model, choices: [] });

class FakeAdapters implements AdapterPort {
  readonly seen: adapterv1.ChatRequest[] = [];
  failures: Record<string, GatewayError[]> = {};
  chat(request: adapterv1.ChatRequest): AsyncIterator<adapterv1.ChatResponse> {
    this.seen.push(request);
    const failure = this.failures[request.upstreamModel]?.shift();
    return (async function* () {
      if (failure) throw failure;
      yield { completion: completion(request.upstreamModel) };
    })();
  }
  embed(): Promise<adapterv1.EmbedResponse> {
    return Promise.resolve({ response: { model: 'e', data: [] } as never });
  }
  readonly moderations: adapterv1.ModerateRequest[] = [];
  moderate(request: adapterv1.ModerateRequest): Promise<adapterv1.ModerateResponse> {
    this.moderations.push(request);
    const failure = this.failures[request.upstreamModel]?.shift();
    if (failure) return Promise.reject(failure);
    return Promise.resolve({ response: { id: 'modr-1', model: request.upstreamModel, results: [{ flagged: true, categories: { violence: true }, categoryScores: { violence: 0.91 }, extraJson: '' }] } });
  }
  readonly images: adapterv1.GenerateImagesRequest[] = [];
  generateImages(request: adapterv1.GenerateImagesRequest): Promise<adapterv1.GenerateImagesResponse> {
    this.images.push(request);
    const failure = this.failures[request.upstreamModel]?.shift();
    if (failure) return Promise.reject(failure);
    const n = request.request?.n ?? 1;
    return Promise.resolve({ response: chatv1.ImageGenerationResponse.fromPartial({ created: 1, data: Array.from({ length: n }, () => ({ b64Json: 'iVBORw0KGgo=' })), usage: { promptTokens: 9, completionTokens: 272 * n, totalTokens: 9 + 272 * n } }) });
  }
  /** Failures of the next audio calls, whichever deployment they go to. */
  failNext: GatewayError[] = [];
  readonly transcriptions: adapterv1.TranscribeRequest[] = [];
  transcribe(request: adapterv1.TranscribeRequest): Promise<adapterv1.TranscribeResponse> {
    this.transcriptions.push(request);
    const failure = this.failNext.shift() ?? this.failures[request.upstreamModel]?.shift();
    if (failure) return Promise.reject(failure);
    const body = JSON.stringify({ text: request.request?.translate ? 'Hello.' : 'Bonjour.', usage: { type: 'duration', seconds: 2 } });
    return Promise.resolve({ response: { body, contentType: 'application/json', usage: chatv1.Usage.fromPartial({ completionTokens: 3, totalTokens: 3, estimated: true }), audioMs: 2_000 } });
  }
  readonly speeches: adapterv1.SpeakRequest[] = [];
  /** The audio of each speech answer and the pieces it is sent in. */
  speech = { audio: Buffer.from('ID3'), pieces: 1 };
  /** Failures of the next speech answers, after the pieces they sent (an empty one first: the media type only). */
  cutNext: Array<{ after: 'media-type' | 'audio'; failure: GatewayError }> = [];
  /** The signal of each speech call. */
  readonly speechSignals: AbortSignal[] = [];
  speak(request: adapterv1.SpeakRequest, signal: AbortSignal): AsyncIterator<adapterv1.SpeakResponse> {
    this.speeches.push(request);
    this.speechSignals.push(signal);
    const failure = this.failNext.shift() ?? this.failures[request.upstreamModel]?.shift();
    const cut = this.cutNext.shift();
    const input = request.request?.input ?? '';
    const answer = speechStream({ audio: this.speech.audio, contentType: 'audio/mpeg', usage: chatv1.Usage.fromPartial({ promptTokens: 2, totalTokens: 2 }), characters: [...input].length }, this.speech.pieces);
    return (async function* (): AsyncGenerator<adapterv1.SpeakResponse> {
      if (failure) throw failure;
      if (cut?.after === 'media-type') {
        yield { response: { audio: Buffer.alloc(0), contentType: 'audio/mpeg', characters: 0 } };
        throw cut.failure;
      }
      const first = await answer.next();
      if (!first.done) yield first.value;
      if (cut) throw cut.failure;
      yield* answer;
    })();
  }
}

const decisionOf = (events: routerv1.ChatResponse[]) => events.find((e) => e.routed)?.routed?.decision;
const kinds = (events: routerv1.ChatResponse[]) => events.map((e) => Object.keys(e).filter((k) => e[k as keyof routerv1.ChatResponse] !== undefined));

async function collect(stream: AsyncGenerator<routerv1.ChatResponse>): Promise<routerv1.ChatResponse[]> {
  const out: routerv1.ChatResponse[] = [];
  for await (const e of stream) out.push(e);
  return out;
}

describe('RouterService', () => {
  const config = configWith(TWO_MODELS, { retry: { baseDelayMs: 0, maxDelayMs: 0 }, aliases: { smart: { models: ['cheap', 'premium'], route: { strategy: 'quality' } } } });

  it('names each deployment before calling it, then emits the decision with the first answer, with attempts, task type and reason', async () => {
    const adapters = new FakeAdapters();
    adapters.failures['p'] = [new GatewayError('upstream_error', 'boom', { upstreamStatus: 500 })];
    const service = new RouterService(engineFor(config), adapters);
    const events = await collect(service.chat({ context: contextFor(), request: chatRequest('smart', 'Solve 3x + 1 = 10 for x', { models: ['cheap'], route: { strategy: 'quality' }, seed_extra: 1 }) }, new AbortController().signal));
    // Before the first call, after its failure (no call in progress while backing off), before the second.
    expect(kinds(events)).toEqual([['calling'], ['calling'], ['calling'], ['routed']]);
    const [first, failed, second] = [events[0]?.calling, events[1]?.calling, events[2]?.calling];
    const { ROUTE_ATTEMPT_STATUS_IN_PROGRESS: IN_PROGRESS, ROUTE_ATTEMPT_STATUS_ERROR: ERROR } = routerv1.RouteAttemptStatus;
    expect(first).toMatchObject({ model: 'premium', attempts: 1, taskType: 'math', attemptDetails: [{ deployment: first?.deployment, status: IN_PROGRESS, latencyMs: 0 }] });
    expect(failed).toMatchObject({ attempts: 1, attemptDetails: [{ deployment: first?.deployment, status: ERROR, errorKind: 'upstream_error' }] });
    expect(second).toMatchObject({ model: 'premium', attempts: 2, attemptDetails: [{ deployment: first?.deployment, errorKind: 'upstream_error' }, { deployment: second?.deployment, status: IN_PROGRESS }] });
    expect(second?.deployment).not.toBe(first?.deployment);
    const decision = events[3]?.routed?.decision;
    expect(decision).toMatchObject({ model: 'premium', deployment: second?.deployment, attempts: 2, taskType: 'math', strategy: 'quality', reason: 'smart: quality strategy; failover after 1 failed attempt' });
    expect(decision?.attemptDetails.map((a) => a.errorKind)).toEqual(['upstream_error', '']);
    expect(decision?.attemptDetails.map((a) => a.status)).toEqual([routerv1.RouteAttemptStatus.ROUTE_ATTEMPT_STATUS_ERROR, routerv1.RouteAttemptStatus.ROUTE_ATTEMPT_STATUS_OK]);
    expect(events[3]?.routed?.completion).toBeDefined();
    expect(adapters.seen.every((r) => JSON.parse(r.request?.extraJson ?? '{}').route === undefined)).toBe(true);
    expect(JSON.parse(adapters.seen[0]?.request?.extraJson ?? '{}')).toEqual({ seed_extra: 1 });
  });

  it('sends a caller that does not ask for route calls the decision, then the answer, as before', async () => {
    const adapters = new FakeAdapters();
    adapters.failures['p'] = [new GatewayError('upstream_error', 'boom', { upstreamStatus: 500 })];
    const service = new RouterService(engineFor(config), adapters);
    const events = await collect(service.chat({ context: contextFor(), request: chatRequest('premium', 'hi') }, new AbortController().signal, false));
    expect(kinds(events)).toEqual([['decision'], ['completion']]);
    expect(events[0]?.decision).toMatchObject({ model: 'premium', attempts: 2 });
    expect(adapters.seen).toHaveLength(2);
  });

  it('ends a call whose reader left before it answered, and one that answers after its reader left', async () => {
    for (const answersAfterLeaving of [false, true]) {
      const engine = engineFor(config);
      let called!: () => void;
      const reached = new Promise<void>((resolve) => (called = resolve));
      let answer!: () => void;
      const answered = new Promise<void>((resolve) => (answer = resolve));
      const closed: string[] = [];
      const adapters: AdapterPort = {
        ...unusedAdapters(),
        chat: (request, signal) =>
          (async function* () {
            try {
              called();
              if (answersAfterLeaving) await answered;
              else await new Promise((_, reject) => signal.addEventListener('abort', () => reject(new GatewayError('cancelled', 'gone')), { once: true }));
              yield { completion: completion(request.upstreamModel) };
            } finally {
              closed.push(request.upstreamModel);
            }
          })(),
      };
      const client = new AbortController();
      const stream = new RouterService(engine, adapters).chat({ context: contextFor(), request: chatRequest('cheap', 'hi') }, answersAfterLeaving ? new AbortController().signal : client.signal);
      expect((await stream.next()).value).toMatchObject({ calling: { model: 'cheap', deployment: 'cheap-a' } });
      await reached;
      expect(engine.stats.of('cheap-a').outstanding).toBe(1);
      if (answersAfterLeaving) {
        // The reader stops at the announcement (as a cancelled gRPC call's writer does), then the call answers.
        await expect(stream.return(undefined)).resolves.toMatchObject({ done: true });
        answer();
        await answered;
      } else {
        const next = stream.next();
        client.abort();
        await expect(next).rejects.toMatchObject({ kind: 'cancelled' });
      }
      await new Promise((resolve) => setImmediate(resolve));
      expect(closed).toEqual(['c']);
      expect(engine.stats.of('cheap-a').outstanding).toBe(0);
      expect(engine.breakers.of('cheap-a').current()).toBe('closed');
    }
  });

  it('ends a call that answered while its reader was still at an announcement, when the reader leaves there', async () => {
    const engine = engineFor(config);
    const stream = new RouterService(engine, new FakeAdapters()).chat({ context: contextFor(), request: chatRequest('cheap', 'hi') }, new AbortController().signal);
    expect((await stream.next()).value).toMatchObject({ calling: { deployment: 'cheap-a' } });
    // The answer comes while the reader holds the announcement.
    await new Promise((resolve) => setImmediate(resolve));
    expect(engine.stats.of('cheap-a').outstanding).toBe(1);
    await stream.return(undefined);
    await new Promise((resolve) => setImmediate(resolve));
    expect(engine.stats.of('cheap-a').outstanding).toBe(0);
  });

  it('answers a bad route control with a 400-kind error naming the parameter', async () => {
    const service = new RouterService(engineFor(config), new FakeAdapters());
    await expect(collect(service.chat({ context: contextFor(), request: chatRequest('smart', 'hi', { route: { strategy: 'nope' } }) }, new AbortController().signal))).rejects.toMatchObject({ kind: 'bad_request', param: 'route.strategy' });
  });

  it('refuses a request the model cannot serve with a 400-kind error, without calling a provider', async () => {
    const adapters = new FakeAdapters();
    const service = new RouterService(engineFor(config), adapters);
    const withTools = { ...chatRequest('cheap', 'hi'), tools: [{ type: 'function', function: { name: 'f' } } as chatv1.Tool] };
    await expect(collect(service.chat({ context: contextFor(), request: withTools }, new AbortController().signal))).rejects.toMatchObject({ kind: 'bad_request', code: 'model_not_supported', param: 'tools' });
    await expect(collect(service.chat({ context: contextFor(), request: chatRequest('premium', 'x'.repeat(600_000)) }, new AbortController().signal))).rejects.toMatchObject({ kind: 'context_length_exceeded', param: 'messages' });
    expect(adapters.seen).toHaveLength(0);
    expect(service.explain({ context: contextFor(), request: withTools }).error).toBe('The model `cheap` cannot serve this request: does not support tools.');
  });

  it('judges a gray release only on server-side failures of the arm’s own model', async () => {
    const releaseConfig = (minRequests: number) =>
      configWith(TWO_MODELS, {
        retry: { baseDelayMs: 0, maxDelayMs: 0 },
        aliases: { gr: { models: ['cheap'] } },
        grayReleases: [{ id: 'g', target: 'gr', baseline: 'cheap', canary: 'premium', steps: [{ afterMinutes: 0, percent: 100 }], rollback: { minRequests, errorRateMargin: 0.1 } }],
      });
    const ask = (service: RouterService, i: number) => collect(service.chat({ context: contextFor({ endUser: `u${i}` }), request: chatRequest('gr', 'hi') }, new AbortController().signal));

    // One caller's bad requests are its own: the canary refusing them does not roll the release back.
    const engine = engineFor(releaseConfig(3));
    const adapters = new FakeAdapters();
    const service = new RouterService(engine, adapters);
    adapters.failures['p'] = Array.from({ length: 5 }, () => new GatewayError('bad_request', 'bad', { upstreamStatus: 400 }));
    for (let i = 0; i < 5; i++) await expect(ask(service, i)).rejects.toMatchObject({ kind: 'bad_request' });
    expect(engine.grayReleases.byId('g')?.state()).toMatchObject({ status: 'completed', canaryStats: { requests: 0 } });

    // A canary left out by its breaker is served by the baseline: the canary failed to take its
    // share, so each such request is its error; the baseline's call counts for neither arm.
    for (const id of ['premium-a', 'premium-b']) for (let i = 0; i < 5; i++) engine.breakers.of(id).failure();
    for (let i = 0; i < 5; i++) expect(decisionOf(await ask(service, i))?.model).toBe('cheap');
    expect(engine.grayReleases.byId('g')?.state()).toMatchObject({ status: 'completed', canaryStats: { requests: 5, errors: 5 }, baselineStats: { requests: 0 } });

    // Server-side failures of the canary roll it back, while every request is still served (the
    // baseline has had its own minimum of calls in the window to be compared with).
    const failing = engineFor(releaseConfig(3));
    for (let i = 0; i < 3; i++) failing.grayReleases.byId('g')?.record('baseline', true, 50);
    const down = new FakeAdapters();
    down.failures['p'] = Array.from({ length: 6 }, () => new GatewayError('upstream_error', 'boom', { upstreamStatus: 500 }));
    for (let i = 0; i < 3; i++) expect(decisionOf(await ask(new RouterService(failing, down), i))?.model).toBe('cheap');
    expect(failing.grayReleases.byId('g')?.state()).toMatchObject({ status: 'rolled_back', canaryStats: { requests: 3, errors: 3 } });
  });

  it("calls no more of a canary's deployments once this very request's failure rolled the release back", async () => {
    const engine = engineFor(
      configWith(TWO_MODELS, {
        retry: { baseDelayMs: 0, maxDelayMs: 0 },
        aliases: { gr: { models: ['cheap'] } },
        grayReleases: [{ id: 'g', target: 'gr', baseline: 'cheap', canary: 'premium', steps: [{ afterMinutes: 0, percent: 100 }], rollback: { minRequests: 1, errorRateMargin: 0 } }],
      }),
    );
    engine.grayReleases.byId('g')?.record('baseline', true, 50);
    const adapters = new FakeAdapters();
    // The canary's first deployment fails: one failure in one call rolls the release back.
    adapters.failures['p'] = [new GatewayError('upstream_error', 'boom', { upstreamStatus: 500 })];
    const served = await collect(new RouterService(engine, adapters).chat({ context: contextFor({ endUser: 'u1' }), request: chatRequest('gr', 'hi') }, new AbortController().signal));
    expect(engine.grayReleases.byId('g')?.status()).toBe('rolled_back');
    // Its other deployment is not tried: the baseline serves.
    expect(adapters.seen.map((r) => r.upstreamModel)).toEqual(['p', 'c']);
    expect(decisionOf(served)?.model).toBe('cheap');
  });

  it('explains every candidate without calling a provider', () => {
    const adapters = new FakeAdapters();
    const service = new RouterService(engineFor(config), adapters);
    const explained = service.explain({ context: contextFor(), request: chatRequest('auto', 'Write a Python function to reverse a string', { route: { strategy: 'cost', min_quality: 0.6 } }) });
    expect(adapters.seen).toHaveLength(0);
    expect(explained).toMatchObject({ taskType: 'code', strategy: 'cost', decision: { model: 'premium' }, error: '' });
    expect(explained.candidates.find((c) => c.model === 'cheap')).toMatchObject({ eligible: false, filteredReason: 'quality 0.4 for code < min_quality 0.6' });
    expect(explained.candidates.filter((c) => c.eligible).map((c) => c.rank)).toEqual([1, 2]);
    for (const c of explained.candidates.filter((c) => c.eligible)) expect(c.scoreDetail).toMatch(/^cost \d/);
    expect(service.explain({ context: contextFor(), request: chatRequest('ghost', 'hi') }).error).toContain('ghost');
  });

  it('reports provider and deployment health and lists aliases and auto as models', () => {
    const engine = engineFor(config);
    const service = new RouterService(engine, new FakeAdapters());
    for (let i = 0; i < 5; i++) engine.breakers.of('premium-b').failure();
    const health = service.providersHealth();
    expect(health.deployments.find((d) => d.deployment === 'premium-b')).toMatchObject({ breakerState: 'open', healthy: false, consecutiveFailures: 5 });
    expect(health.providers).toEqual([
      { provider: 'a', healthy: true, deployments: 2, openCircuits: 0 },
      { provider: 'b', healthy: false, deployments: 1, openCircuits: 1 },
    ]);
    expect(service.listModels(contextFor()).models.map((m) => m.id)).toEqual(['cheap', 'premium', 'smart', 'auto']);
    expect(service.listModels(contextFor()).models.find((m) => m.id === 'auto')).toMatchObject({ ownedBy: 'open-router', created: 0 });
  });

  it('lists an alias only when the key may use one of its chat models, with what those can do', () => {
    const models = [
      ...TWO_MODELS,
      { id: 'emb', capabilities: ['embeddings'], contextWindow: 999_999, deployments: [{ id: 'emb-a', provider: 'a', model: 'e' }] },
      { id: 'vision', capabilities: ['chat', 'vision'], contextWindow: 64_000, deployments: [{ id: 'vision-a', provider: 'a', model: 'v' }] },
    ];
    const service = new RouterService(engineFor(configWith(models, { aliases: { vectors: { models: ['emb'] }, mixed: { models: ['emb', 'vision'] } } })), new FakeAdapters());
    const listed = (allowedModels: string[] = []) => service.listModels(contextFor({ allowedModels })).models;
    expect(listed().map((m) => m.id)).toEqual(['cheap', 'premium', 'emb', 'vision', 'mixed', 'auto']);
    expect(listed().find((m) => m.id === 'mixed')).toMatchObject({ capabilities: ['chat', 'vision'], contextWindow: 64_000 });
    // Allowed by name, an alias of embedding models still has nothing to chat with.
    expect(listed(['vectors', 'emb']).map((m) => m.id)).toEqual(['emb']);
    expect(listed(['mixed']).map((m) => m.id)).toEqual(['mixed']);
  });

  it('charges a request without max_tokens an answer of the default length against its deployment’s tokens per minute', async () => {
    const engine = engineFor(config);
    const service = new RouterService(engine, new FakeAdapters());
    const request = chatRequest('cheap', 'x'.repeat(400));
    const prompt = chatRequestTraits(request).promptTokens;
    await collect(service.chat({ context: contextFor(), request }, new AbortController().signal));
    expect(engine.stats.of('cheap-a').usage(engine.stats.clock.now()).tokens).toBe(prompt + 256);
    await collect(service.chat({ context: contextFor(), request: { ...request, maxTokens: 10 } }, new AbortController().signal));
    expect(engine.stats.of('cheap-a').usage(engine.stats.clock.now()).tokens).toBe(2 * prompt + 256 + 10);
  });
  it('charges image parts at the serving model’s imageTokens against its deployment’s tokens per minute', async () => {
    const models = [{ id: 'eye', capabilities: ['chat', 'vision'], imageTokens: { max: 3_000, low: 100 }, deployments: [{ id: 'eye-a', provider: 'a', model: 'e' }] }];
    const engine = engineFor(configWith(models));
    const service = new RouterService(engine, new FakeAdapters());
    const image = (detail?: string): chatv1.ContentPart => ({ imageUrl: { url: 'https://example.com/a.png', ...(detail ? { detail } : {}) } });
    const request = { ...chatRequest('eye', 'hi'), messages: [{ ...message(''), text: undefined, parts: { parts: [{ text: 'look' }, image(), image('low')] } }] };
    const prompt = chatRequestTraits(request).promptTokens;
    await collect(service.chat({ context: contextFor(), request }, new AbortController().signal));
    expect(engine.stats.of('eye-a').usage(engine.stats.clock.now()).tokens).toBe(prompt + 3_000 + 100 + 256);
  });
});

describe('RouterService judging a gray release', () => {
  const chunk = (text: string) => ({ chunk: { id: 'c', created: 1, model: 'm', choices: [{ index: 0, delta: { role: 'assistant', content: text, toolCalls: [] } }] } }) as unknown as adapterv1.ChatResponse;
  /** Adapters answering each deployment's calls with `answer(upstream model, signal)`. */
  const adapters = (answer: (model: string, signal: AbortSignal) => AsyncGenerator<adapterv1.ChatResponse>): AdapterPort => ({
    ...unusedAdapters(),
    chat: (request, signal) => answer(request.upstreamModel, signal),
  });
  const releaseConfig = (percent: number, routing: Record<string, unknown> = {}, models: unknown[] = TWO_MODELS) =>
    configWith(models, {
      retry: { baseDelayMs: 0, maxDelayMs: 0 },
      aliases: { gr: { models: ['cheap'] } },
      grayReleases: [{ id: 'g', target: 'gr', baseline: 'cheap', canary: 'premium', steps: [{ afterMinutes: 0, percent }] }],
      ...routing,
    });
  const ask = (service: RouterService, i: number, stream = false) =>
    collect(service.chat({ context: contextFor({ endUser: `u${i}` }), request: { ...chatRequest('gr', 'hi'), stream } }, new AbortController().signal));

  it('rolls back a canary that fails every call, with the default breaker and rollback settings: requests its open circuit keeps from it are its errors', async () => {
    const clock = new ManualClock();
    const engine = engineFor(releaseConfig(50), clock);
    const service = new RouterService(
      engine,
      adapters(async function* (model) {
        if (model === 'p') throw new GatewayError('upstream_error', 'boom', { upstreamStatus: 502 });
        yield { completion: completion(model) };
      }),
    );
    const release = engine.grayReleases.byId('g');
    // One request a second for 30 minutes, every one served (the baseline takes the canary's).
    for (let i = 0; i < 30 * 60 && release?.status() !== 'rolled_back'; i++) {
      clock.advance(1000);
      expect(decisionOf(await ask(service, i))?.model).toBe('cheap');
    }
    expect(release?.state()).toMatchObject({ status: 'rolled_back', rollbackReason: expect.stringContaining('error rate') });
    // Judged within its rollback window, once both arms had their 20 calls: not after half an hour.
    expect((release?.rollback()?.at ?? Infinity) - release!.startedAt()).toBeLessThanOrEqual(release!.config.rollback.windowMs);
  });

  it('judges arms whose circuits are all open alike: an outage of both does not roll the canary back', async () => {
    const engine = engineFor(releaseConfig(50, { grayReleases: [{ id: 'g', target: 'gr', baseline: 'cheap', canary: 'premium', steps: [{ afterMinutes: 0, percent: 50 }], rollback: { minRequests: 5 } }] }));
    const service = new RouterService(engine, adapters(async function* (model) { yield { completion: completion(model) }; }));
    for (const id of ['cheap-a', 'premium-a', 'premium-b']) for (let i = 0; i < 5; i++) engine.breakers.of(id).failure();
    for (let i = 0; i < 40; i++) await expect(ask(service, i)).rejects.toMatchObject({ kind: 'unavailable' });
    const state = engine.grayReleases.byId('g')?.state();
    expect(state).toMatchObject({ status: 'active', canaryStats: { errorRate: 1 }, baselineStats: { errorRate: 1 } });
    expect(state?.canaryStats?.requests).toBeGreaterThanOrEqual(5);
    expect(state?.baselineStats?.requests).toBeGreaterThanOrEqual(5);
  });

  it('counts a canary stream broken after its first token as an error, not a success', async () => {
    // A breaker that never opens: the canary is judged on its broken streams alone.
    const engine = engineFor(releaseConfig(50, { breaker: { consecutiveFailures: 1000, minRequests: 1000 } }));
    const service = new RouterService(
      engine,
      adapters(async function* (model) {
        yield chunk('first');
        if (model === 'p') throw new GatewayError('upstream_error', 'stream dropped');
        yield chunk('second');
      }),
    );
    let broken = 0;
    for (let i = 0; i < 200; i++) await ask(service, i, true).catch(() => broken++);
    expect(broken).toBeGreaterThan(0);
    const state = engine.grayReleases.byId('g')?.state();
    expect(state).toMatchObject({ status: 'rolled_back', rollbackReason: expect.stringContaining('error rate') });
    expect(state?.canaryStats?.errors).toBe(state?.canaryStats?.requests);
  });

  it('leaves a canary caller whose canary cannot take the request out of the release: the baseline’s answer is not labelled canary, nor counted', async () => {
    const models = [{ ...TWO_MODELS[0], capabilities: ['chat', 'tools'] }, TWO_MODELS[1]];
    const engine = engineFor(releaseConfig(100, {}, models));
    const service = new RouterService(engine, adapters(async function* (model) { yield { completion: completion(model) }; }));
    const tool: chatv1.Tool = { type: 'function', function: { name: 'f', parametersJson: '' }, rawJson: '' };
    const withTools = { ...chatRequest('gr', 'hi'), tools: [tool] };
    const decision = decisionOf(await collect(service.chat({ context: contextFor({ endUser: 'u1' }), request: withTools }, new AbortController().signal)));
    expect(decision).toMatchObject({ model: 'cheap', experiment: '', experimentArm: '' });
    // A request the canary can take is still its own.
    expect(decisionOf(await ask(service, 1))).toMatchObject({ model: 'premium', experiment: 'g', experimentArm: 'canary' });
    expect(engine.grayReleases.byId('g')?.state()).toMatchObject({ canaryStats: { requests: 1 }, baselineStats: { requests: 0 } });
  });

  it('does not judge the canary on an attempt the request’s deadline stopped', async () => {
    const clock = new ManualClock();
    const models = [
      { id: 'cheap', deployments: [{ id: 'cheap-a', provider: 'a', model: 'c' }] },
      { id: 'premium', expectedLatencyMs: 10, deployments: [{ id: 'premium-a', provider: 'a', model: 'p' }] },
    ];
    const engine = engineFor(releaseConfig(100, {}, models), clock);
    const calls: string[] = [];
    const service = new RouterService(
      engine,
      adapters(async function* (model, signal) {
        calls.push(model);
        if (model === 'c') {
          // The baseline fails 40 ms before the deadline, leaving the canary less than its attempt timeout.
          clock.advance(60_000 - 40);
          throw new GatewayError('upstream_error', 'boom', { upstreamStatus: 502 });
        }
        await new Promise((_, reject) => signal.addEventListener('abort', () => reject(new GatewayError('cancelled', 'stopped')), { once: true }));
        yield { completion: completion(model) };
      }),
    );
    // A short Retry-After puts the canary after its baseline in the plan; it is over by the canary's turn.
    engine.breakers.coolDown('premium-a', clock.now() + 1000);
    await expect(ask(service, 0, true)).rejects.toMatchObject({ kind: 'upstream_error', upstreamStatus: 502 });
    expect(calls).toEqual(['c', 'p']);
    expect(engine.grayReleases.byId('g')?.state()).toMatchObject({ canaryStats: { requests: 0 }, baselineStats: { requests: 0 } });
    expect(engine.breakers.of('premium-a').snapshot()).toMatchObject({ consecutiveFailures: 0, windowRequests: 0 });
  });
});

describe('RouterService.moderate', () => {
  const MODERATION = [
    ...TWO_MODELS,
    { id: 'text-mod', capabilities: ['moderation'], pricing: { input: '0', output: '0' }, deployments: [{ id: 'text-mod-a', provider: 'a', model: 'text-moderation-latest' }] },
    { id: 'omni-mod', capabilities: ['moderation', 'vision'], pricing: { input: '0.01', output: '0' }, deployments: [{ id: 'omni-a', provider: 'a', model: 'omni-a' }, { id: 'omni-b', provider: 'b', model: 'omni-b' }] },
  ];
  const config = configWith(MODERATION, { retry: { baseDelayMs: 0, maxDelayMs: 0 } });
  const request = (model: string, parts: chatv1.ModerationPart[] = []): chatv1.ModerationRequest => ({ model, texts: parts.length ? [] : ['I will kill the process'], parts, extraJson: '' });

  it('serves a named moderation model and tells the route it took', async () => {
    const adapters = new FakeAdapters();
    const answer = await new RouterService(engineFor(config), adapters).moderate({ context: contextFor(), request: request('text-mod') }, new AbortController().signal);
    expect(answer.response?.results[0]).toMatchObject({ flagged: true, categories: { violence: true } });
    expect(answer.decision).toMatchObject({ model: 'text-mod', deployment: 'text-mod-a', upstreamModel: 'text-moderation-latest', attempts: 1 });
    expect(adapters.moderations[0]?.request?.texts).toEqual(['I will kill the process']);
  });

  it('sends a request without a model to a moderation model (never a chat model), as OpenAI picks its latest', async () => {
    const adapters = new FakeAdapters();
    const answer = await new RouterService(engineFor(config), adapters).moderate({ context: contextFor(), request: request('') }, new AbortController().signal);
    expect(['text-mod', 'omni-mod']).toContain(answer.decision?.model);
  });

  it('fails over between the deployments of a moderation model on a provider failure', async () => {
    const adapters = new FakeAdapters();
    const engine = engineFor(config);
    const service = new RouterService(engine, adapters);
    // omni-a fails whenever it is called; omni-b serves, whichever was tried first.
    adapters.failures['omni-a'] = [1, 2, 3].map(() => new GatewayError('upstream_error', 'boom', { upstreamStatus: 500 }));
    const answer = await service.moderate({ context: contextFor(), request: request('omni-mod') }, new AbortController().signal);
    expect(answer.decision).toMatchObject({ model: 'omni-mod', deployment: 'omni-b' });
    expect(answer.decision?.attemptDetails.at(-1)).toMatchObject({ deployment: 'omni-b', status: routerv1.RouteAttemptStatus.ROUTE_ATTEMPT_STATUS_OK });
    expect(answer.decision?.attemptDetails.slice(0, -1).every((a) => a.deployment === 'omni-a' && a.status === routerv1.RouteAttemptStatus.ROUTE_ATTEMPT_STATUS_ERROR)).toBe(true);
    // Two calls at most: the failing deployment is not called again once the other answered.
    expect(adapters.moderations.length).toBe(answer.decision?.attemptDetails.length);
  });

  it('refuses a chat model, and images for a model without vision, naming the field (400, not retried)', async () => {
    const service = new RouterService(engineFor(config), new FakeAdapters());
    await expect(service.moderate({ context: contextFor(), request: request('cheap') }, new AbortController().signal)).rejects.toMatchObject({ kind: 'bad_request', code: 'model_not_supported', param: 'model' });
    const withImage = request('text-mod', [{ text: 'look' }, { imageUrl: 'https://example.com/a.png' }]);
    await expect(service.moderate({ context: contextFor(), request: withImage }, new AbortController().signal)).rejects.toMatchObject({ kind: 'bad_request', code: 'model_not_supported', param: 'input' });
    // The omni model takes images.
    const answer = await service.moderate({ context: contextFor(), request: { ...withImage, model: 'omni-mod' } }, new AbortController().signal);
    expect(answer.decision?.model).toBe('omni-mod');
  });

  it('passes a provider refusal of the request itself straight to the client', async () => {
    const adapters = new FakeAdapters();
    adapters.failures['text-moderation-latest'] = [new GatewayError('bad_request', 'input too long', { upstreamStatus: 400, param: 'input' })];
    await expect(new RouterService(engineFor(config), adapters).moderate({ context: contextFor(), request: request('text-mod') }, new AbortController().signal)).rejects.toMatchObject({ kind: 'bad_request', param: 'input' });
    expect(adapters.moderations).toHaveLength(1);
  });
});

describe('RouterService.embed', () => {
  const EMBEDDINGS = [
    { id: 'emb-small', capabilities: ['embeddings'], contextWindow: 8191, pricing: { input: '0.02', output: '0' }, deployments: [{ id: 'small-a', provider: 'a', model: 'text-embedding-3-small' }] },
    { id: 'emb-other', capabilities: ['embeddings'], contextWindow: 8192, pricing: { input: '0.1', output: '0' }, deployments: [{ id: 'other-b', provider: 'b', model: 'amazon.titan-embed-text-v2:0' }] },
  ];
  const config = configWith(EMBEDDINGS, { retry: { baseDelayMs: 0, maxDelayMs: 0 }, aliases: { embed: { models: ['emb-small', 'emb-other'], route: { strategy: 'cost' } } } });
  const request = (model: string): chatv1.EmbeddingRequest => ({ model, texts: ['a very long text'], tokenInputs: [], user: '', extraJson: '' }) as chatv1.EmbeddingRequest;

  it('passes a context-length refusal to the client: never a model with a larger window, whose vectors would be of another size', async () => {
    const calls: string[] = [];
    const embed = (req: adapterv1.EmbedRequest, _signal: AbortSignal, deployment: string): Promise<adapterv1.EmbedResponse> => {
      calls.push(deployment);
      if (deployment === 'small-a') return Promise.reject(new GatewayError('context_length_exceeded', "This model's maximum context length is 8192 tokens", { code: 'context_length_exceeded', upstreamStatus: 400 }));
      return Promise.resolve({ response: { model: req.upstreamModel, data: [] } as never });
    };
    const service = new RouterService(engineFor(config), { ...unusedAdapters(), embed });
    // Named by id: not the larger-context fallback.
    await expect(service.embed({ context: contextFor(), request: request('emb-small') }, new AbortController().signal)).rejects.toMatchObject({ kind: 'context_length_exceeded', code: 'context_length_exceeded' });
    expect(calls).toEqual(['small-a']);
    // Through an alias whose next model has a larger window: not the next candidate either.
    await expect(service.embed({ context: contextFor(), request: request('embed') }, new AbortController().signal)).rejects.toMatchObject({ kind: 'context_length_exceeded' });
    expect(calls).toEqual(['small-a', 'small-a']);
  });
});

describe('RouterService.generateImages', () => {
  const IMAGES = [
    ...TWO_MODELS,
    { id: 'gpt-image-1', capabilities: ['images'], pricing: { input: '5', output: '40' }, deployments: [{ id: 'img-a', provider: 'a', model: 'gpt-image-a' }, { id: 'img-b', provider: 'b', model: 'gpt-image-b' }] },
  ];
  const config = configWith(IMAGES, { retry: { baseDelayMs: 0, maxDelayMs: 0 } });
  const request = (model: string, n?: number): chatv1.ImageGenerationRequest => ({ model, prompt: 'a red fox', ...(n !== undefined && { n }), extraJson: '{"size":"1024x1024"}', images: [] });

  it('serves a named image model, or one with the images capability when none is named, and tells the route', async () => {
    const adapters = new FakeAdapters();
    const service = new RouterService(engineFor(config), adapters);
    const named = await service.generateImages({ context: contextFor(), request: request('gpt-image-1', 2) }, new AbortController().signal);
    expect(named.response?.data).toHaveLength(2);
    expect(named.decision).toMatchObject({ model: 'gpt-image-1', attempts: 1 });
    expect(adapters.images[0]?.request).toMatchObject({ prompt: 'a red fox', n: 2, extraJson: '{"size":"1024x1024"}' });
    const unnamed = await service.generateImages({ context: contextFor(), request: request('') }, new AbortController().signal);
    expect(unnamed.decision?.model).toBe('gpt-image-1');
  });

  it('fails over to another deployment when one fails on its side', async () => {
    const adapters = new FakeAdapters();
    adapters.failures['gpt-image-a'] = [1, 2, 3].map(() => new GatewayError('upstream_error', 'boom', { upstreamStatus: 500 }));
    const answer = await new RouterService(engineFor(config), adapters).generateImages({ context: contextFor(), request: request('gpt-image-1') }, new AbortController().signal);
    expect(answer.decision).toMatchObject({ deployment: 'img-b' });
  });

  it('refuses a chat model (400 model_not_supported) and passes a provider refusal of the request on', async () => {
    const adapters = new FakeAdapters();
    const service = new RouterService(engineFor(config), adapters);
    await expect(service.generateImages({ context: contextFor(), request: request('cheap') }, new AbortController().signal)).rejects.toMatchObject({ kind: 'bad_request', code: 'model_not_supported', param: 'model' });
    adapters.failures['gpt-image-a'] = [new GatewayError('bad_request', 'n must be 1', { upstreamStatus: 400, param: 'n' })];
    adapters.failures['gpt-image-b'] = [new GatewayError('bad_request', 'n must be 1', { upstreamStatus: 400, param: 'n' })];
    await expect(service.generateImages({ context: contextFor(), request: request('gpt-image-1', 2) }, new AbortController().signal)).rejects.toMatchObject({ kind: 'bad_request', param: 'n' });
    expect(adapters.images).toHaveLength(1);
  });
});

describe('RouterService.transcribe and RouterService.speak', () => {
  const AUDIO = [
    ...TWO_MODELS,
    { id: 'whisper-1', capabilities: ['transcription'], pricing: { perAudioMinute: '0.006' }, deployments: [{ id: 'whisper-a', provider: 'a', model: 'whisper-a' }, { id: 'whisper-b', provider: 'b', model: 'whisper-b' }] },
    { id: 'tts-1', capabilities: ['speech'], pricing: { perMillionCharacters: '15' }, deployments: [{ id: 'tts-a', provider: 'a', model: 'tts-a' }, { id: 'tts-b', provider: 'b', model: 'tts-b' }] },
  ];
  const config = configWith(AUDIO, { retry: { baseDelayMs: 0, maxDelayMs: 0 } });
  const transcription = (model: string, extra: Partial<chatv1.AudioTranscriptionRequest> = {}): chatv1.AudioTranscriptionRequest => ({
    model,
    file: Buffer.from('RIFF....WAVE'),
    filename: 'hello.wav',
    contentType: 'audio/wav',
    translate: false,
    extraFields: [{ name: 'timestamp_granularities[]', value: 'word' }],
    durationMs: 2_000,
    ...extra,
  });
  const speech = (model: string, input = 'Hello there.'): chatv1.SpeechRequest => ({ model, input, voice: 'alloy', responseFormat: 'mp3', extraJson: '{"speed":1.25}' });
  const signal = () => new AbortController().signal;
  const { ROUTE_ATTEMPT_STATUS_OK: OK, ROUTE_ATTEMPT_STATUS_ERROR: ERROR } = routerv1.RouteAttemptStatus;

  it('serves a named transcription model, a translation on the same capability, and the request as the client sent it; tells the route', async () => {
    const adapters = new FakeAdapters();
    const service = new RouterService(engineFor(config), adapters);
    const answer = await service.transcribe({ context: contextFor(), request: transcription('whisper-1', { language: 'fr', responseFormat: 'verbose_json' }) }, signal());
    expect(answer.response).toMatchObject({ contentType: 'application/json', audioMs: 2_000 });
    expect(JSON.parse(answer.response?.body ?? '{}')).toMatchObject({ text: 'Bonjour.' });
    expect(answer.decision).toMatchObject({ model: 'whisper-1', attempts: 1, strategy: 'balanced', reason: 'requested model' });
    expect(answer.decision?.unscreened).toBeUndefined();
    expect(['whisper-a', 'whisper-b']).toContain(answer.decision?.deployment);
    expect(answer.decision?.attemptDetails).toEqual([expect.objectContaining({ deployment: answer.decision?.deployment, status: OK })]);
    const sent = adapters.transcriptions[0];
    expect(sent).toMatchObject({ requestId: 'r1', upstreamModel: answer.decision?.upstreamModel, provider: answer.decision?.provider });
    expect(sent?.request).toMatchObject({ language: 'fr', responseFormat: 'verbose_json', filename: 'hello.wav', durationMs: 2_000, extraFields: [{ name: 'timestamp_granularities[]', value: 'word' }] });
    expect(Buffer.from(sent?.request?.file ?? []).toString()).toBe('RIFF....WAVE');
    const translated = await service.transcribe({ context: contextFor(), request: transcription('whisper-1', { translate: true }) }, signal());
    expect(JSON.parse(translated.response?.body ?? '{}')).toMatchObject({ text: 'Hello.' });
    expect(translated.decision?.model).toBe('whisper-1');
  });

  it('serves a named speech model with the request as the client sent it, and tells the route', async () => {
    const adapters = new FakeAdapters();
    const answer = await readSpeech(new RouterService(engineFor(config), adapters).speak({ context: contextFor(), request: speech('tts-1') }, signal()));
    expect(answer.response).toMatchObject({ contentType: 'audio/mpeg', characters: 12 });
    expect(answer.decision).toMatchObject({ model: 'tts-1', attempts: 1 });
    expect(adapters.speeches[0]?.request).toEqual(speech('tts-1'));
  });

  it('streams the audio as the adapter sends it: the decision first, with the first piece, then every piece', async () => {
    const adapters = new FakeAdapters();
    adapters.speech = { audio: Buffer.from('abcdefgh'), pieces: 4 };
    const { messages, response } = await readSpeech(new RouterService(engineFor(config), adapters).speak({ context: contextFor(), request: speech('tts-1') }, signal()));
    expect(messages.map((m) => Buffer.from(m.response?.audio ?? []).toString())).toEqual(['ab', 'cd', 'ef', 'gh', '']);
    expect(messages[0]).toMatchObject({ decision: { model: 'tts-1', attempts: 1 }, response: { contentType: 'audio/mpeg' } });
    expect(messages.slice(1).every((m) => m.decision === undefined)).toBe(true);
    expect(messages.at(-1)?.response).toMatchObject({ characters: 12, usage: expect.objectContaining({ promptTokens: 2 }) });
    expect(response).toMatchObject({ contentType: 'audio/mpeg', characters: 12 });
    expect(Buffer.from(response.audio).toString()).toBe('abcdefgh');
  });

  it('fails over when a deployment fails after its media type but before any audio: the caller gets nothing of the failed attempt', async () => {
    const adapters = new FakeAdapters();
    adapters.speech = { audio: Buffer.from('abcd'), pieces: 2 };
    adapters.cutNext = [{ after: 'media-type', failure: new GatewayError('upstream_error', 'boom', { upstreamStatus: 502 }) }];
    const { decision, messages, response } = await readSpeech(new RouterService(engineFor(config), adapters).speak({ context: contextFor(), request: speech('tts-1') }, signal()));
    const [failed, served] = decision?.attemptDetails ?? [];
    expect(decision).toMatchObject({ attempts: 2, deployment: served?.deployment });
    expect(failed).toMatchObject({ status: ERROR, errorKind: 'upstream_error', upstreamStatus: 502 });
    expect(served?.deployment).not.toBe(failed?.deployment);
    expect(messages.map((m) => Buffer.from(m.response?.audio ?? []).toString())).toEqual(['ab', 'cd', '']);
    expect(Buffer.from(response.audio).toString()).toBe('abcd');
  });

  it('does not fail over once audio was sent: the error reaches the caller after the pieces it got, and counts against the canary', async () => {
    const models = [...AUDIO, { id: 'tts-2', capabilities: ['speech'], pricing: { perMillionCharacters: '15' }, deployments: [{ id: 'tts2-a', provider: 'a', model: 'tts-2' }] }];
    const engine = engineFor(
      configWith(models, {
        retry: { baseDelayMs: 0, maxDelayMs: 0 },
        aliases: { voice: { models: ['tts-1'] } },
        grayReleases: [{ id: 'g', target: 'voice', baseline: 'tts-1', canary: 'tts-2', steps: [{ afterMinutes: 0, percent: 100 }] }],
      }),
    );
    const adapters = new FakeAdapters();
    adapters.speech = { audio: Buffer.from('abcdef'), pieces: 3 };
    adapters.cutNext = [{ after: 'audio', failure: new GatewayError('upstream_error', 'The provider closed the connection mid-stream.') }];
    const received: routerv1.SpeakResponse[] = [];
    const reading = (async () => {
      for await (const message of new RouterService(engine, adapters).speak({ context: contextFor({ endUser: 'u1' }), request: speech('voice') }, signal())) received.push(message);
    })();
    await expect(reading).rejects.toMatchObject({ kind: 'upstream_error', message: expect.stringContaining('mid-stream') });
    expect(received).toHaveLength(1);
    expect(received[0]).toMatchObject({ decision: { model: 'tts-2', attempts: 1, experimentArm: 'canary' } });
    expect(Buffer.from(received[0]?.response?.audio ?? []).toString()).toBe('ab');
    expect(adapters.speeches).toHaveLength(1);
    // Its success at the first audio is taken back.
    expect(engine.grayReleases.byId('g')?.state()).toMatchObject({ canaryStats: { requests: 1, errors: 1 } });
  });

  it("aborts the adapter's call when the caller cancels the stream, and ends it when the reader leaves", async () => {
    const calls: Array<{ signal: AbortSignal; ended: boolean }> = [];
    const adapters: AdapterPort = {
      ...unusedAdapters(),
      speak: (_request, callSignal) => {
        const call = { signal: callSignal, ended: false };
        calls.push(call);
        return (async function* (): AsyncGenerator<adapterv1.SpeakResponse> {
          try {
            yield { response: { audio: Buffer.from('ab'), contentType: 'audio/mpeg', characters: 0 } };
            // The provider's next piece never comes: only an abort ends the wait.
            await new Promise((_resolve, reject) => callSignal.addEventListener('abort', () => reject(new GatewayError('cancelled', 'aborted')), { once: true }));
          } finally {
            call.ended = true;
          }
        })();
      },
    };
    const service = new RouterService(engineFor(config), adapters);
    const caller = new AbortController();
    const cancelled = service.speak({ context: contextFor(), request: speech('tts-1') }, caller.signal);
    expect((await cancelled.next()).value).toMatchObject({ decision: { model: 'tts-1' } });
    const waiting = cancelled.next();
    caller.abort();
    await expect(waiting).rejects.toMatchObject({ kind: 'cancelled' });
    expect(calls[0]).toMatchObject({ ended: true });
    expect(calls[0]?.signal.aborted).toBe(true);

    const left = service.speak({ context: contextFor(), request: speech('tts-1') }, signal());
    await left.next();
    await left.return(undefined);
    expect(calls[1]?.ended).toBe(true);
  });

  it('sends a request without a model to auto over the models with its capability, never a chat model or the other audio one', async () => {
    const adapters = new FakeAdapters();
    const service = new RouterService(engineFor(config), adapters);
    for (let i = 0; i < 5; i++) {
      expect((await service.transcribe({ context: contextFor(), request: transcription('') }, signal())).decision).toMatchObject({ model: 'whisper-1', reason: expect.stringMatching(/^auto: /) });
      expect((await readSpeech(service.speak({ context: contextFor(), request: speech('') }, signal()))).decision).toMatchObject({ model: 'tts-1', reason: expect.stringMatching(/^auto: /) });
    }
    // A key limited to the chat models has no audio model behind auto.
    const limited = contextFor({ allowedModels: ['cheap', 'premium'] });
    await expect(readSpeech(service.speak({ context: limited, request: speech('') }, signal()))).rejects.toMatchObject({ param: 'model' });
    await expect(readSpeech(service.speak({ context: limited, request: speech('tts-1') }, signal()))).rejects.toMatchObject({ kind: 'not_found', code: 'model_not_found', param: 'model' });
  });

  it('refuses a model without the capability (400 model_not_supported naming model), before any adapter call', async () => {
    const adapters = new FakeAdapters();
    const service = new RouterService(engineFor(config), adapters);
    const unsupported = { kind: 'bad_request', code: 'model_not_supported', param: 'model' };
    await expect(service.transcribe({ context: contextFor(), request: transcription('cheap') }, signal())).rejects.toMatchObject(unsupported);
    await expect(service.transcribe({ context: contextFor(), request: transcription('tts-1', { translate: true }) }, signal())).rejects.toMatchObject(unsupported);
    await expect(readSpeech(service.speak({ context: contextFor(), request: speech('whisper-1') }, signal()))).rejects.toMatchObject(unsupported);
    await expect(readSpeech(service.speak({ context: contextFor(), request: speech('premium') }, signal()))).rejects.toMatchObject(unsupported);
    expect(adapters.transcriptions).toEqual([]);
    expect(adapters.speeches).toEqual([]);
  });

  it('fails over to the second deployment when the first fails on its side, both attempts in the decision', async () => {
    const adapters = new FakeAdapters();
    const service = new RouterService(engineFor(config), adapters);
    const boom = (): GatewayError => new GatewayError('upstream_error', 'boom', { upstreamStatus: 500 });
    adapters.failNext = [boom()];
    const transcribed = await service.transcribe({ context: contextFor(), request: transcription('whisper-1') }, signal());
    adapters.failNext = [boom()];
    const spoken = await readSpeech(service.speak({ context: contextFor(), request: speech('tts-1') }, signal()));
    for (const { decision } of [transcribed, spoken]) {
      const [failed, served] = decision?.attemptDetails ?? [];
      expect(decision).toMatchObject({ attempts: 2, deployment: served?.deployment, upstreamModel: served?.deployment });
      expect(failed).toMatchObject({ status: ERROR, errorKind: 'upstream_error', upstreamStatus: 500 });
      expect(served).toMatchObject({ status: OK });
      expect(served?.deployment).not.toBe(failed?.deployment);
    }
    expect(adapters.transcriptions.map((r) => r.upstreamModel)).toEqual(transcribed.decision?.attemptDetails.map((a) => a.deployment));
    expect(adapters.speeches.map((r) => r.upstreamModel)).toEqual(spoken.decision?.attemptDetails.map((a) => a.deployment));
  });

  it('passes a provider refusal of the request itself straight to the client, once', async () => {
    const adapters = new FakeAdapters();
    const refusal = () => [new GatewayError('bad_request', 'Invalid file format.', { upstreamStatus: 400, param: 'file' })];
    adapters.failures['whisper-a'] = refusal();
    adapters.failures['whisper-b'] = refusal();
    await expect(new RouterService(engineFor(config), adapters).transcribe({ context: contextFor(), request: transcription('whisper-1') }, signal())).rejects.toMatchObject({ kind: 'bad_request', param: 'file' });
    expect(adapters.transcriptions).toHaveLength(1);
  });

  it("counts the audio's tokens (known length) and the speech input's against a deployment's tpm", async () => {
    const limited = AUDIO.map((m) => (m.id === 'whisper-1' || m.id === 'tts-1' ? { ...m, deployments: m.deployments.slice(0, 1).map((d) => ({ ...d, tpm: 1_000 })) } : m));
    const service = new RouterService(engineFor(configWith(limited)), new FakeAdapters());
    // 60 s at budgets.audio.tokensPerSecond (25): 1,500 tokens, more than a whole minute of the deployment.
    await expect(service.transcribe({ context: contextFor(), request: transcription('whisper-1', { durationMs: 60_000 }) }, signal())).rejects.toMatchObject({ code: 'exceeds_deployment_capacity', param: 'file' });
    await expect(readSpeech(service.speak({ context: contextFor(), request: speech('tts-1', 'a'.repeat(4_096)) }, signal()))).rejects.toMatchObject({ code: 'exceeds_deployment_capacity', param: 'input' });
    // Of unknown length, the audio counts for nothing but its prompt.
    expect((await service.transcribe({ context: contextFor(), request: transcription('whisper-1', { durationMs: 0 }) }, signal())).decision?.deployment).toBe('whisper-a');
  });

  it('judges a gray release of a transcription model on its calls: a failing canary counts its errors, its callers served by the baseline', async () => {
    const models = [...AUDIO, { id: 'whisper-2', capabilities: ['transcription'], pricing: { perAudioMinute: '0.003' }, deployments: [{ id: 'whisper2-a', provider: 'a', model: 'whisper-2' }] }];
    const engine = engineFor(
      configWith(models, {
        retry: { baseDelayMs: 0, maxDelayMs: 0 },
        aliases: { stt: { models: ['whisper-1'] } },
        grayReleases: [{ id: 'g', target: 'stt', baseline: 'whisper-1', canary: 'whisper-2', steps: [{ afterMinutes: 0, percent: 100 }] }],
      }),
    );
    const adapters = new FakeAdapters();
    adapters.failures['whisper-2'] = [1, 2, 3].map(() => new GatewayError('upstream_error', 'boom', { upstreamStatus: 502 }));
    const service = new RouterService(engine, adapters);
    for (let i = 0; i < 3; i++) {
      const { decision } = await service.transcribe({ context: contextFor({ endUser: `u${i}` }), request: transcription('stt') }, signal());
      expect(decision).toMatchObject({ model: 'whisper-1', experiment: 'g', experimentArm: 'canary' });
      expect(decision?.attemptDetails[0]).toMatchObject({ model: 'whisper-2', status: ERROR });
    }
    expect(engine.grayReleases.byId('g')?.state()).toMatchObject({ canaryStats: { requests: 3, errorRate: 1 } });
  });

  it('refuses a call that carries no request or context', async () => {
    const service = new RouterService(engineFor(config), new FakeAdapters());
    await expect(service.transcribe({ context: contextFor() }, signal())).rejects.toMatchObject({ kind: 'bad_request' });
    await expect(readSpeech(service.speak({ request: speech('tts-1') }, signal()))).rejects.toMatchObject({ kind: 'bad_request' });
  });

  it('lists the audio models with their capability, and leaves them out of the listed auto (a chat model)', () => {
    const { models } = new RouterService(engineFor(config), new FakeAdapters()).listModels(contextFor());
    expect(models.find((m) => m.id === 'whisper-1')?.capabilities).toEqual(['transcription']);
    expect(models.find((m) => m.id === 'tts-1')?.capabilities).toEqual(['speech']);
    expect(models.find((m) => m.id === 'auto')?.capabilities).not.toContain('speech');
  });
});
