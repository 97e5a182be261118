import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import { PROVIDER_TYPES } from '@openrouter/config';
import { queryRows } from '../support/infra/clickhouse';
import { waitFor } from '../support/infra/wait-for';
import { SIMULATED_PROVIDERS } from '../support/simulated-providers';
import { SIM_KEY } from '../support/test-config';
import { startTestGateway, type TestGateway } from '../support/test-gateway';

/**
 * `POST /v1/embeddings` through the whole gateway with the official SDK, which asks for base64
 * vectors by default and decodes them: every family that embeds, inputs split over several
 * provider calls, providers that report no usage or ignore `dimensions`, and the billing of it.
 */

/** An OpenAI-compatible server as some are: no usage, the list in reverse order, `dimensions` ignored (always 4). */
function startCompatibleServer(): Promise<Server> {
  const server = createServer((req, res) => {
    let text = '';
    req.on('data', (chunk: Buffer) => (text += chunk.toString()));
    req.on('end', () => {
      const inputs = (JSON.parse(text) as { input: unknown[] }).input;
      const data = inputs.map((_, i) => {
        const bytes = Buffer.alloc(16);
        bytes.writeFloatLE(i, 0);
        bytes.writeFloatLE(1, 4);
        return { object: 'embedding', index: i, embedding: bytes.toString('base64') };
      });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ object: 'list', model: 'compat', data: data.reverse() }));
    });
  });
  server.listen(0, '127.0.0.1');
  return once(server, 'listening').then(() => server);
}

const FAMILIES = PROVIDER_TYPES.filter((type) => SIMULATED_PROVIDERS[type].embeddingModel !== undefined);
/** The models split over several calls: Gemini 100 texts a call, Vertex's gemini-embedding 1, Titan 1, Cohere 96. */
const MODELS = [...FAMILIES.map((type) => `${type}-embed`), 'cohere-embed', 'vertex-gemini-embed'];

describe('embeddings through the gateway', () => {
  let gw: TestGateway;
  let client: OpenAI;
  let compatible: Server;

  beforeAll(async () => {
    compatible = await startCompatibleServer();
    const compatibleUrl = `http://127.0.0.1:${(compatible.address() as AddressInfo).port}/v1`;
    gw = await startTestGateway({
      configure: (doc) => {
        const url = String((doc['providers'] as { simulated: { baseUrl: string } }).simulated.baseUrl).replace(/\/v1$/, '');
        const providers = doc['providers'] as Record<string, unknown>;
        const models = doc['models'] as Array<Record<string, unknown>>;
        const model = (id: string, provider: string, upstream: string | undefined): void => void models.push({ id, capabilities: ['embeddings'], pricing: { input: '1' }, deployments: [{ provider, model: upstream }] });
        for (const type of FAMILIES) {
          providers[`sim-${type}`] = SIMULATED_PROVIDERS[type].config(url, SIM_KEY);
          model(`${type}-embed`, `sim-${type}`, SIMULATED_PROVIDERS[type].embeddingModel);
        }
        model('cohere-embed', 'sim-bedrock', 'cohere.embed-v4:0');
        model('vertex-gemini-embed', 'sim-vertex', 'gemini-embedding-001');
        providers['compatible'] = { type: 'openai', baseUrl: compatibleUrl, apiKey: 'k', timeoutMs: 10_000 };
        model('compatible-embed', 'compatible', 'compat');
      },
    });
    client = gw.client();
  });
  afterAll(async () => {
    await gw?.close();
    compatible?.close();
  });
  beforeEach(() => gw.sim.reset());

  const texts = Array.from({ length: 230 }, (_, i) => `text number ${i}${' more'.repeat(i % 5)}`);
  const dot = (a: readonly number[], b: readonly number[]): number => a.reduce((sum, v, i) => sum + v * (b[i] ?? 0), 0);

  it.each(MODELS)('%s: base64 vectors in input order across the calls, with usage and a cost', async (model) => {
    // One call, floats: the simulator's vector of each text, which every family returns alike.
    const reference = await client.embeddings.create({ model: 'openai-embed', input: texts, dimensions: 256, encoding_format: 'float' });
    const { data: answer, response } = await client.embeddings.create({ model, input: texts, dimensions: 256 }).withResponse();
    expect(answer.data.map((d) => d.index)).toEqual(texts.map((_, i) => i));
    answer.data.forEach((d, i) => {
      expect(d.embedding).toHaveLength(256);
      expect(dot(d.embedding, reference.data[i]?.embedding ?? [])).toBeCloseTo(1, 4);
    });
    expect(answer.usage.prompt_tokens).toBeGreaterThan(texts.length);
    expect(Number(response.headers.get('x-openrouter-cost'))).toBeGreaterThan(0);
  });

  it.each(MODELS.filter((m) => !m.startsWith('openai') && !m.startsWith('azure')))('%s refuses token-id input with a 400 naming input', async (model) => {
    for (const input of [[1, 2, 3], [[1, 2], [3]]]) {
      await expect(client.embeddings.create({ model, input })).rejects.toMatchObject({ status: 400, param: 'input', code: 'unsupported_parameter' });
    }
  });

  it.each([[[]], [['']], [[[]]], ['']])('refuses the empty input %j with a 400 naming input', async (input) => {
    await expect(client.embeddings.create({ model: 'openai-embed', input: input as string[] })).rejects.toMatchObject({ status: 400, param: expect.stringMatching(/^input/) });
  });

  describe('a compatible server without usage, in another order, ignoring dimensions', () => {
    it('bills the gateway’s own count of the input, marked estimated, and shows it as usage', async () => {
      const { data: answer, response } = await client.embeddings.create({ model: 'compatible-embed', input: ['hello world', 'one more sentence', 'and a third'] }).withResponse();
      expect(answer.usage.prompt_tokens).toBeGreaterThan(3);
      expect(answer.usage.total_tokens).toBe(answer.usage.prompt_tokens);
      const cost = response.headers.get('x-openrouter-cost') ?? '';
      expect(Number(cost)).toBeGreaterThan(0);
      const id = response.headers.get('x-request-id') ?? '';
      const [row] = await waitFor(
        async () => {
          const found = await queryRows<{ cost: string; prompt_tokens: number; tokens_estimated: boolean }>(
            gw.gateway.billing.usage.store,
            'SELECT toString(cost) AS cost, prompt_tokens, tokens_estimated FROM {db:Identifier}.usage_events FINAL WHERE request_id = {id:String}',
            { id },
          );
          return found.length > 0 ? found : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 200, what: `the usage row of ${id}` },
      );
      expect(row).toMatchObject({ prompt_tokens: answer.usage.prompt_tokens, tokens_estimated: true });
      expect(Number(row?.cost)).toBe(Number(cost));
    });

    it('hands the vectors back in input order', async () => {
      const answer = await client.embeddings.create({ model: 'compatible-embed', input: ['a', 'b', 'c'] });
      expect(answer.data.map((d) => [d.index, d.embedding[0]])).toEqual([
        [0, 0],
        [1, 1],
        [2, 2],
      ]);
    });

    it('refuses dimensions the model ignored with a 400 naming dimensions', async () => {
      await expect(client.embeddings.create({ model: 'compatible-embed', input: 'a', dimensions: 2 })).rejects.toMatchObject({ status: 400, param: 'dimensions', code: 'unsupported_parameter' });
    });
  });
});
