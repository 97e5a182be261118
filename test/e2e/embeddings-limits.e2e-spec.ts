import OpenAI from 'openai';
import { queryRows } from '../support/infra/clickhouse';
import { waitFor } from '../support/infra/wait-for';
import { SIMULATED_PROVIDERS } from '../support/simulated-providers';
import { SIM_KEY } from '../support/test-config';
import { startTestGateway, type TestGateway } from '../support/test-gateway';

/**
 * The embeddings path's limits with the official SDK: an input over the model's token limit is
 * refused before anything is called, and a request split over several provider calls that fails
 * after some of them answered is billed for those.
 */
describe('embeddings: input limits and failed split requests', () => {
  let gw: TestGateway;
  let client: OpenAI;

  beforeAll(async () => {
    gw = await startTestGateway({
      configure: (doc) => {
        const url = String((doc['providers'] as { simulated: { baseUrl: string } }).simulated.baseUrl).replace(/\/v1$/, '');
        const providers = doc['providers'] as Record<string, unknown>;
        const models = doc['models'] as Array<Record<string, unknown>>;
        providers['sim-gemini'] = SIMULATED_PROVIDERS.gemini.config(url, SIM_KEY);
        // gemini-embedding-001: 2048 tokens an input, by default.
        models.push({ id: 'gemini-limit-embed', capabilities: ['embeddings'], pricing: { input: '1' }, deployments: [{ provider: 'sim-gemini', model: 'gemini-embedding-001' }] });
        models.push({ id: 'small-limit-embed', capabilities: ['embeddings'], maxInputTokens: 10, pricing: { input: '1' }, deployments: [{ provider: 'sim-gemini', model: 'gemini-embedding-001' }] });
      },
    });
    client = gw.client();
  });
  afterAll(async () => {
    await gw?.close();
  });
  beforeEach(() => gw.sim.reset());

  it('refuses an input over the model’s limit with OpenAI’s 400, naming the input, before any provider call', async () => {
    const long = 'word '.repeat(3_000);
    const error = await client.embeddings.create({ model: 'gemini-limit-embed', input: ['short', long] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    const e = error as InstanceType<typeof OpenAI.BadRequestError>;
    expect(e.code).toBe('context_length_exceeded');
    expect(e.param).toBe('input');
    expect(e.message).toMatch(/maximum context length is 2048 tokens per input, however input 1 has 3\d{3} tokens/);
    expect(gw.sim.requests()).toHaveLength(0);
  });

  it('takes the configured maxInputTokens, and token-array inputs by their length', async () => {
    const error = await client.embeddings.create({ model: 'small-limit-embed', input: [[1, 2, 3], Array.from({ length: 11 }, (_, i) => i)] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect((error as Error).message).toMatch(/maximum context length is 10 tokens per input, however input 1 has 11 tokens/);
  });

  it('bills the calls that answered when a later call of a split request fails', async () => {
    const texts = Array.from({ length: 300 }, (_, i) => `text number ${i}`);
    const whole = await client.embeddings.create({ model: 'gemini-limit-embed', input: texts });
    // The next call fails; the other calls of the request (100 texts each, in flight together) answer.
    gw.sim.configure({ faults: [{ kind: 'http_error', status: 500, path: 'embeddings', remaining: 1 }] });
    const error = await client.embeddings.create({ model: 'gemini-limit-embed', input: texts, user: 'split-failure' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    const rows = await waitFor(
      async () => {
        const found = await queryRows<{ prompt_tokens: number; cost: string; error_kind: string; tokens_estimated: boolean }>(
          gw.gateway.billing.usage.store,
          "SELECT prompt_tokens, toString(cost) AS cost, error_kind, tokens_estimated FROM {db:Identifier}.usage_events FINAL WHERE requested_model = 'gemini-limit-embed' AND error_kind != ''",
          {},
        );
        return found.length > 0 ? found : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200, what: 'the usage row of the failed request' },
    );
    expect(rows).toHaveLength(1);
    const row = rows[0];
    expect(row?.error_kind).not.toBe('');
    expect(row?.tokens_estimated).toBe(true);
    // Two of the three calls answered: their inputs, not the whole request's.
    expect(row?.prompt_tokens).toBeGreaterThan(0);
    expect(row?.prompt_tokens).toBeLessThan(whole.usage.prompt_tokens);
    expect(Number(row?.cost)).toBeGreaterThan(0);
  });
});
