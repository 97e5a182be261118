import { generateKeyPairSync } from 'node:crypto';
import { ConfigError, providerSchema, type ProviderConfigOf } from '@openrouter/config';
import type { adapterv1, chatv1 } from '@openrouter/contracts';
import { parseChatRequest } from '@openrouter/openai-wire';
import { METADATA_TOKEN_PATH, type RunningSimulator, startSimulator, TOKEN_PATH } from '@openrouter/provider-simulator';
import { ImageSource } from '../image-source';
import type { ProviderAdapter } from '../provider-adapter';
import { createVertexAdapter } from './vertex.adapter';
import { failure } from '../gateway-failure.testing';

const CLIENT_EMAIL = 'gateway@sim-project.iam.gserviceaccount.com';
const GEMINI = 'gemini-2.5-flash';
const CLAUDE = 'claude-sonnet-4-5@20250929';
const PREFIX = '/v1/projects/sim-project/locations/europe-west4/publishers';
const WEATHER_TOOL = {
  type: 'function',
  function: { name: 'get_weather', description: 'Current weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
};

// Made at test time; no private key is committed.
const keyPair = (): { publicKey: string; privateKey: string } => {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(), privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
};
const SERVICE_ACCOUNT = keyPair();

/** Vertex AI (Gemini and Claude) against the simulated Vertex front end and Google token endpoint: real HTTP, real JWTs, real faults. */
describe('Vertex adapter against the simulated Vertex AI', () => {
  let sim: RunningSimulator;
  let adapter: ProviderAdapter;
  const context = { images: new ImageSource() };

  const configFor = (auth: Record<string, unknown>, more: Record<string, unknown> = {}): ProviderConfigOf<'vertex'> =>
    providerSchema.parse({ type: 'vertex', project: 'sim-project', location: 'europe-west4', baseUrl: sim.url, timeoutMs: 5000, headers: { 'x-team': 'search' }, ...auth, ...more }) as ProviderConfigOf<'vertex'>;
  const withKey = (privateKey = SERVICE_ACCOUNT.privateKey): Record<string, unknown> => ({ credentials: { clientEmail: CLIENT_EMAIL, privateKey, tokenUri: `${sim.url}${TOKEN_PATH}` } });

  beforeAll(async () => {
    sim = await startSimulator({ googleServiceAccounts: [{ clientEmail: CLIENT_EMAIL, publicKey: SERVICE_ACCOUNT.publicKey }] });
    adapter = createVertexAdapter('vertex-test', configFor(withKey()), context);
  });
  afterEach(() => sim.reset());
  afterAll(async () => {
    await adapter.close();
    await context.images.close();
    await sim.close();
  });

  const call = <T>(request: T, upstreamModel: string) => ({ requestId: 'req-1', upstreamModel, request, timeoutMs: 0, signal: new AbortController().signal });
  const chatRequest = (body: Record<string, unknown>): chatv1.ChatRequest => parseChatRequest({ model: 'public-model', messages: [{ role: 'user', content: 'Hello there' }], ...body });

  async function collect(body: Record<string, unknown>, model: string, using: ProviderAdapter = adapter): Promise<adapterv1.ChatResponse[]> {
    const out: adapterv1.ChatResponse[] = [];
    for await (const response of using.chat(call(chatRequest(body), model))) out.push(response);
    return out;
  }
  async function completion(body: Record<string, unknown>, model: string, using?: ProviderAdapter): Promise<chatv1.ChatCompletion> {
    const responses = await collect(body, model, using);
    expect(responses).toHaveLength(1);
    return responses[0]?.completion as chatv1.ChatCompletion;
  }
  async function chunks(body: Record<string, unknown>, model: string): Promise<chatv1.ChatChunk[]> {
    return (await collect({ stream: true, stream_options: { include_usage: true }, ...body }, model)).map((r) => r.chunk as chatv1.ChatChunk);
  }
  const contentOf = (list: chatv1.ChatChunk[]): string => list.map((c) => c.choices[0]?.delta?.content ?? '').join('');
  const modelCalls = () => sim.requests().filter((r) => r.path.startsWith('/v1/projects/'));
  const tokenCalls = () => sim.requests().filter((r) => r.path === TOKEN_PATH);

  describe('Gemini (publisher google)', () => {
    it('answers a chat at the regional path with a service-account token, fetched once and cached', async () => {
      const fresh = createVertexAdapter('vertex-test', configFor(withKey()), context);
      try {
        const answer = await completion({ messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello there' }] }, GEMINI, fresh);
        expect(answer.choices[0]?.message?.content).toMatch(/\w+/);
        expect(answer.choices[0]?.finishReason).toBe('stop');
        expect(answer.usage).toMatchObject({ completionTokens: 16, estimated: false });
        await completion({}, GEMINI, fresh);
      } finally {
        await fresh.close();
      }
      expect(tokenCalls()).toHaveLength(1);
      expect(tokenCalls()[0]?.body).toEqual({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: 'present' });
      const [first, second] = modelCalls();
      expect(first?.path).toBe(`${PREFIX}/google/models/gemini-2.5-flash:generateContent`);
      expect(first?.headers).toMatchObject({ authorization: 'present', 'x-team': 'search' });
      expect(first?.headers['x-goog-api-key']).toBeUndefined();
      expect(first?.body).toEqual({ contents: [{ role: 'user', parts: [{ text: 'Hello there' }] }], systemInstruction: { parts: [{ text: 'Be brief.' }] } });
      expect(second?.outcome).toBe('completed');
    });

    it('streams with alt=sse: text, one finish reason, the usage last', async () => {
      const list = await chunks({}, GEMINI);
      expect(modelCalls()[0]?.path).toBe(`${PREFIX}/google/models/gemini-2.5-flash:streamGenerateContent`);
      expect(contentOf(list).length).toBeGreaterThan(0);
      expect(list.flatMap((c) => c.choices.map((ch) => ch.finishReason).filter(Boolean))).toEqual(['stop']);
      expect(list[list.length - 1]?.usage?.completionTokens).toBe(16);
    });

    it('forces a tool call, streamed and not', async () => {
      const forced = { tools: [WEATHER_TOOL], tool_choice: { type: 'function', function: { name: 'get_weather' } } };
      const answer = await completion(forced, GEMINI);
      expect(answer.choices[0]?.finishReason).toBe('tool_calls');
      expect(JSON.parse(answer.choices[0]?.message?.toolCalls[0]?.function?.arguments ?? '')).toEqual({ city: expect.any(String) });
      const deltas = (await chunks(forced, GEMINI)).flatMap((c) => c.choices[0]?.delta?.toolCalls ?? []);
      expect(deltas[0]).toMatchObject({ index: 0, name: 'get_weather' });
      expect(JSON.parse(deltas.map((d) => d.arguments ?? '').join(''))).toEqual({ city: expect.any(String) });
    });

    it.each([
      [429, 'rate_limited', true],
      [403, 'permission_denied', true],
      [404, 'not_found', true],
      [500, 'upstream_error', true],
      // Google's text for a 503 says the model is overloaded, as the Gemini API's does.
      [503, 'overloaded', true],
      [400, 'bad_request', false],
    ])('maps Vertex’s Google-shaped HTTP %i to %s', async (status, kind, retryable) => {
      sim.configure({ faults: [{ kind: 'http_error', status, retryAfterSeconds: status === 429 ? 7 : undefined }] });
      const error = await failure(collect({}, GEMINI));
      expect(error).toMatchObject({ kind, retryable, upstreamStatus: status, provider: 'vertex-test' });
      if (status === 429) expect(error.retryAfterMs).toBe(7000);
    });

    it('throws when the connection drops mid-stream, after the chunks already sent and no usage: Vertex counts only on its last event', async () => {
      sim.configure({ faults: [{ kind: 'drop_mid_stream', afterTokens: 3 }] });
      const seen: adapterv1.ChatResponse[] = [];
      const error = await failure(
        (async () => {
          for await (const r of adapter.chat(call(chatRequest({ stream: true, stream_options: { include_usage: true } }), GEMINI))) seen.push(r);
        })(),
      );
      expect(error).toMatchObject({ kind: 'upstream_error' });
      expect(contentOf(seen.map((r) => r.chunk as chatv1.ChatChunk))).not.toBe('');
      // No prompt count came (only Vertex's empty usageMetadata): a usage chunk would bill a prompt
      // of 0, where without one ingress estimates the whole request.
      expect(seen.some((r) => r.chunk?.usage !== undefined)).toBe(false);
    });
  });

  describe('Claude (publisher anthropic)', () => {
    it('answers through rawPredict with anthropic_version in the body and no model, Anthropic headers left out', async () => {
      const answer = await completion({ max_tokens: 100 }, CLAUDE);
      expect(answer.id).toMatch(/^msg_/);
      expect(answer.choices[0]?.message?.content).toMatch(/\w+/);
      expect(answer.usage).toMatchObject({ completionTokens: 16, estimated: false });
      const seen = modelCalls()[0];
      expect(seen?.path).toBe(`${PREFIX}/anthropic/models/claude-sonnet-4-5@20250929:rawPredict`);
      expect(seen?.headers).toMatchObject({ authorization: 'present', 'x-team': 'search' });
      expect(seen?.headers['anthropic-version']).toBeUndefined();
      expect(seen?.headers['x-api-key']).toBeUndefined();
      expect(seen?.body).toEqual({ anthropic_version: 'vertex-2023-10-16', max_tokens: 100, messages: [{ role: 'user', content: [{ type: 'text', text: 'Hello there' }] }] });
    });

    it('streams through streamRawPredict as Anthropic events', async () => {
      const list = await chunks({}, CLAUDE);
      expect(modelCalls()[0]?.path).toBe(`${PREFIX}/anthropic/models/claude-sonnet-4-5@20250929:streamRawPredict`);
      expect(modelCalls()[0]?.body).toMatchObject({ anthropic_version: 'vertex-2023-10-16', stream: true, max_tokens: 4096 });
      expect(contentOf(list).length).toBeGreaterThan(0);
      expect(list[list.length - 1]?.usage?.completionTokens).toBe(16);
    });

    it('makes a forced tool call and takes its result back', async () => {
      const answer = await completion({ tools: [WEATHER_TOOL], tool_choice: 'required' }, CLAUDE);
      const toolCall = answer.choices[0]?.message?.toolCalls[0];
      expect(answer.choices[0]?.finishReason).toBe('tool_calls');
      expect(toolCall?.function?.name).toBe('get_weather');
      const followUp = await completion(
        {
          tools: [WEATHER_TOOL],
          messages: [
            { role: 'user', content: 'Weather in Oslo?' },
            { role: 'assistant', content: null, tool_calls: [{ id: toolCall?.id, type: 'function', function: { name: 'get_weather', arguments: toolCall?.function?.arguments } }] },
            { role: 'tool', tool_call_id: toolCall?.id, content: '{"celsius":4}' },
          ],
        },
        CLAUDE,
      );
      expect(followUp.choices[0]?.message?.content).toMatch(/\w+/);
    });

    it('maps the model’s Anthropic-shaped errors and the front end’s Google-shaped ones', async () => {
      sim.configure({ faults: [{ kind: 'http_error', status: 529 }] });
      await expect(failure(collect({}, CLAUDE))).resolves.toMatchObject({ kind: 'overloaded', code: 'overloaded', upstreamStatus: 529 });
      sim.configure({ faults: [{ kind: 'http_error', status: 500 }] });
      await expect(failure(collect({}, CLAUDE))).resolves.toMatchObject({ kind: 'upstream_error', code: 'api_error' });
      sim.configure({ faults: [{ kind: 'http_error', status: 429, retryAfterSeconds: 4 }] });
      await expect(failure(collect({}, CLAUDE))).resolves.toMatchObject({ kind: 'rate_limited', code: 'rate_limit_exceeded', retryAfterMs: 4000 });
      sim.configure({ faults: [{ kind: 'http_error', status: 404 }] });
      const missing = await failure(collect({}, CLAUDE));
      expect(missing).toMatchObject({ kind: 'not_found', retryable: true });
      // Vertex names the gateway's project and location in its message: clients are not told them.
      expect(missing.message).not.toContain('sim-project');
      expect(missing.message).not.toContain('europe-west4');
      sim.configure({ faults: [{ kind: 'http_error', status: 403 }] });
      await expect(failure(collect({}, CLAUDE))).resolves.toMatchObject({ kind: 'permission_denied', code: 'upstream_access_denied' });
    });

    it('turns extended thinking on for reasoning_effort, as the anthropic family does, and carries it back', async () => {
      const answer = await completion({ reasoning_effort: 'high' }, CLAUDE);
      expect(modelCalls()[0]?.body).toMatchObject({ anthropic_version: 'vertex-2023-10-16', thinking: { type: 'adaptive' }, output_config: { effort: 'high' } });
      const extra = JSON.parse(answer.choices[0]?.message?.extraJson ?? '{}') as { reasoning_content?: string; thinking_blocks?: unknown[] };
      expect(extra.reasoning_content?.length).toBeGreaterThan(0);
      expect(extra.thinking_blocks).toHaveLength(1);
      // Claude bills thinking as output: more than the 16 tokens of the answer alone.
      expect(answer.usage?.completionTokens).toBeGreaterThan(16);
    });

    it('sends a model the configuration names as Claude’s to the anthropic publisher', async () => {
      const custom = createVertexAdapter('vertex-test', configFor(withKey(), { publishers: { 'my-claude-alias': 'anthropic' } }), context);
      try {
        await completion({}, 'my-claude-alias', custom);
      } finally {
        await custom.close();
      }
      expect(modelCalls()[0]?.path).toBe(`${PREFIX}/anthropic/models/my-claude-alias:rawPredict`);
    });
  });

  describe('access tokens', () => {
    it('refreshes an expired token once on Vertex’s 401 and retries the call', async () => {
      await completion({}, GEMINI);
      sim.expireAccessTokens();
      const answer = await completion({}, CLAUDE);
      expect(answer.choices[0]?.message?.content).toMatch(/\w+/);
      expect(modelCalls().map((r) => r.outcome)).toEqual(['completed', 'error', 'completed']);
      // The first token may come from an earlier test's cache; the refresh is always a new fetch, after the 401.
      expect(tokenCalls().length).toBeGreaterThanOrEqual(1);
      expect(tokenCalls()[tokenCalls().length - 1]?.id).toBeGreaterThan(modelCalls()[1]?.id ?? Infinity);
    });

    it('refreshes a stream’s token the same way, before any chunk', async () => {
      await completion({}, GEMINI);
      sim.expireAccessTokens();
      expect(contentOf(await chunks({}, GEMINI)).length).toBeGreaterThan(0);
      expect(modelCalls().map((r) => r.outcome)).toEqual(['completed', 'error', 'completed']);
    });

    it('fails with auth_failed naming the provider when the token endpoint refuses the key, never calling Vertex', async () => {
      const stranger = createVertexAdapter('vertex-stranger', configFor(withKey(keyPair().privateKey)), context);
      try {
        const error = await failure(collect({}, GEMINI, stranger));
        expect(error).toMatchObject({ kind: 'auth_failed', code: 'upstream_auth_failed', retryable: true, provider: 'vertex-stranger' });
        expect(error.message).toBe('The provider "vertex-stranger" could not get an access token: the token endpoint answered HTTP 400 (invalid_grant).');
      } finally {
        await stranger.close();
      }
      expect(modelCalls()).toEqual([]);
    });

    it('refuses at start-up a private key that is not one, without quoting it', () => {
      const build = () => createVertexAdapter('vertex-bad', configFor(withKey('-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----')), context);
      expect(build).toThrow(ConfigError);
      expect(build).toThrow(/providers\.vertex-bad\.credentials\.privateKey: not an RSA private key/);
      expect(build).not.toThrow(/c2VjcmV0/);
    });

    it('fails with auth_failed when the token endpoint cannot be reached', async () => {
      const nowhere = createVertexAdapter('vertex-nowhere', configFor({ credentials: { clientEmail: CLIENT_EMAIL, privateKey: SERVICE_ACCOUNT.privateKey, tokenUri: 'http://127.0.0.1:9/token' } }), context);
      try {
        await expect(failure(collect({}, GEMINI, nowhere))).resolves.toMatchObject({ kind: 'auth_failed', message: 'The provider "vertex-nowhere" could not get an access token: the token endpoint could not be reached.' });
      } finally {
        await nowhere.close();
      }
    });

    it('takes the metadata server’s token (Workload Identity), for both publishers', async () => {
      const workload = createVertexAdapter('vertex-gke', configFor({ metadataServer: true, metadataServerUrl: `${sim.url}${METADATA_TOKEN_PATH}` }), context);
      try {
        await completion({}, GEMINI, workload);
        await completion({}, CLAUDE, workload);
      } finally {
        await workload.close();
      }
      const metadata = sim.requests().filter((r) => r.path === METADATA_TOKEN_PATH);
      expect(metadata).toHaveLength(1);
      expect(metadata[0]?.headers['metadata-flavor']).toBe('Google');
      expect(modelCalls().map((r) => r.outcome)).toEqual(['completed', 'completed']);
    });

    it('maps a refused static token to auth_failed without retrying it', async () => {
      const keyed = await startSimulator({ apiKey: 'ya29.the-right-one' });
      const wrong = createVertexAdapter('vertex-static', { ...configFor({ accessToken: 'ya29.a-wrong-one' }), baseUrl: keyed.url }, context);
      try {
        const error = await failure(collect({}, GEMINI, wrong));
        expect(error).toMatchObject({ kind: 'auth_failed', code: 'upstream_auth_failed', upstreamStatus: 401, retryable: true });
        expect(error.message).toBe('The provider "vertex-static" rejected the gateway\'s access token.');
        expect(keyed.requests()).toHaveLength(1);
      } finally {
        await wrong.close();
        await keyed.close();
      }
    });
  });

  describe('embeddings (publisher google, :predict)', () => {
    const embedRequest = (texts: string[], more: Partial<chatv1.EmbeddingRequest> = {}): chatv1.EmbeddingRequest => ({ model: 'public-embed', texts, tokenInputs: [], dimensions: undefined, user: undefined, extraJson: '', ...more });
    const vectorOf = (bytes: Uint8Array | undefined): Float32Array => {
      const copy = Buffer.from(bytes ?? new Uint8Array());
      return new Float32Array(copy.buffer, copy.byteOffset, copy.length / 4);
    };

    it('embeds a batch in one call with outputDimensionality, unit vectors and Vertex’s own token count', async () => {
      const answer = await adapter.embed(call(embedRequest(['alpha', 'beta gamma', 'delta'], { dimensions: 256, extraJson: '{"task_type":"RETRIEVAL_QUERY"}' }), 'text-embedding-005'));
      expect(answer.model).toBe('text-embedding-005');
      expect(answer.data.map((d) => [d.index, d.vectorF32le.length])).toEqual([
        [0, 1024],
        [1, 1024],
        [2, 1024],
      ]);
      expect(Math.hypot(...vectorOf(answer.data[1]?.vectorF32le))).toBeCloseTo(1, 4);
      expect(answer.usage).toMatchObject({ estimated: false, completionTokens: 0 });
      expect(answer.usage?.promptTokens).toBeGreaterThan(0);
      const calls = modelCalls();
      expect(calls).toHaveLength(1);
      expect(calls[0]?.path).toBe(`${PREFIX}/google/models/text-embedding-005:predict`);
      expect(calls[0]?.body).toEqual({
        instances: [
          { content: 'alpha', task_type: 'RETRIEVAL_QUERY' },
          { content: 'beta gamma', task_type: 'RETRIEVAL_QUERY' },
          { content: 'delta', task_type: 'RETRIEVAL_QUERY' },
        ],
        parameters: { outputDimensionality: 256 },
      });
    });

    it('sends Gemini’s embedding model one text per call, keeping the order', async () => {
      const answer = await adapter.embed(call(embedRequest(['one', 'two', 'three']), 'gemini-embedding-001'));
      expect(answer.data.map((d) => d.index)).toEqual([0, 1, 2]);
      const bodies = modelCalls().map((r) => (r.body as { instances: Array<{ content: string }> }).instances.map((i) => i.content));
      expect(bodies.flat().sort()).toEqual(['one', 'three', 'two']);
      expect(bodies.every((b) => b.length === 1)).toBe(true);
    });

    it('maps an embedding failure as for chat, and refuses Claude and token ids before calling', async () => {
      sim.configure({ faults: [{ kind: 'http_error', status: 429, path: 'embeddings', retryAfterSeconds: 2 }] });
      await expect(failure(adapter.embed(call(embedRequest(['x']), 'text-embedding-005')))).resolves.toMatchObject({ kind: 'rate_limited', retryAfterMs: 2000 });
      sim.reset();
      await expect(failure(adapter.embed(call(embedRequest(['x']), CLAUDE)))).resolves.toMatchObject({ kind: 'bad_request', param: 'model', code: 'model_not_supported' });
      await expect(failure(adapter.embed(call(embedRequest([], { tokenInputs: [{ ids: [1, 2] }] }), 'text-embedding-005')))).resolves.toMatchObject({ kind: 'bad_request', param: 'input' });
      await expect(failure(adapter.embed(call(embedRequest(['x'], { extraJson: '{"task_type":"SUMMARY"}' }), 'text-embedding-005')))).resolves.toMatchObject({ kind: 'bad_request', param: 'task_type' });
      expect(modelCalls()).toEqual([]);
    });

    it('refreshes an expired token for embeddings too', async () => {
      await adapter.embed(call(embedRequest(['x']), 'text-embedding-005'));
      sim.expireAccessTokens();
      await adapter.embed(call(embedRequest(['y']), 'text-embedding-005'));
      expect(modelCalls().map((r) => r.outcome)).toEqual(['completed', 'error', 'completed']);
    });
  });
});
