import OpenAI from 'openai';
import { startTestGateway, type TestGateway } from '../support/test-gateway';

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const APP = { tenantId: TENANT, clientId: 'gateway-app', clientSecret: 'Xy8Q~right-secret' };

/**
 * Azure OpenAI as a tenant with key auth disabled runs it: the gateway gets Entra ID tokens with an
 * app registration's client secret and calls the resource with them; the client sees an ordinary
 * OpenAI API, and a refused secret as the gateway's fault, never as its own 401.
 */
describe('azure with Entra ID through the gateway', () => {
  let gw: TestGateway;
  let client: OpenAI;

  beforeAll(async () => {
    gw = await startTestGateway({
      configure: (doc) => {
        const url = String((doc['providers'] as { simulated: { baseUrl: string } }).simulated.baseUrl).replace(/\/v1$/, '');
        const azure = (clientSecret: string): Record<string, unknown> => ({ type: 'azure', baseUrl: url, timeoutMs: 10_000, entra: { tenantId: TENANT, clientId: APP.clientId, clientSecret, authorityHost: url } });
        const providers = doc['providers'] as Record<string, unknown>;
        providers['azure-entra'] = azure(APP.clientSecret);
        providers['azure-stale'] = azure('Xy8Q~expired-secret');
        (doc['models'] as Array<Record<string, unknown>>).push(
          { id: 'azure-gpt-4o', capabilities: ['chat', 'tools'], pricing: { input: '1', output: '2' }, deployments: [{ provider: 'azure-entra', model: 'my-gpt-4o-deployment' }] },
          { id: 'azure-stale', capabilities: ['chat'], deployments: [{ provider: 'azure-stale', model: 'my-gpt-4o-deployment' }] },
        );
      },
    });
    client = gw.client();
  });
  afterAll(async () => gw?.close());
  beforeEach(() => {
    gw.sim.reset();
    gw.sim.registerEntraApp(APP);
  });

  const modelCalls = () => gw.sim.requests().filter((r) => r.path.startsWith('/openai/deployments/'));

  it('answers and streams with a Bearer token from the client-secret grant, fetched once', async () => {
    const { data, response } = await client.chat.completions.create({ model: 'azure-gpt-4o', messages: [{ role: 'user', content: 'Hello' }] }).withResponse();
    expect(response.headers.get('x-openrouter-provider')).toBe('azure-entra');
    expect(data.choices[0]?.message.content?.length).toBeGreaterThan(0);
    const stream = await client.chat.completions.create({ model: 'azure-gpt-4o', messages: [{ role: 'user', content: 'More' }], stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    expect(text.length).toBeGreaterThan(0);
    expect(modelCalls().map((r) => [r.outcome, r.headers['authorization'], r.headers['api-key']])).toEqual([
      ['completed', 'present', undefined],
      ['completed', 'present', undefined],
    ]);
    expect(gw.sim.requests().filter((r) => r.path === `/${TENANT}/oauth2/v2.0/token`)).toHaveLength(1);
  });

  it("answers 502 upstream_auth_failed naming AADSTS7000215 when Entra ID refuses the secret, never quoting it", async () => {
    const failed = client.chat.completions.create({ model: 'azure-stale', messages: [{ role: 'user', content: 'Hello' }] });
    await expect(failed).rejects.toMatchObject({ status: 502, code: 'upstream_auth_failed' });
    const error = (await failed.catch((e: unknown) => e)) as Error;
    expect(error.message).toContain("Entra ID refused the gateway's credentials (HTTP 401 invalid_client): AADSTS7000215 invalid client secret");
    expect(error.message).not.toContain('expired-secret');
    expect(modelCalls()).toEqual([]);
  });
});
