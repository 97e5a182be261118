import OpenAI from 'openai';
import { startIngress, type IngressHandle } from '@openrouter/ingress';
import { createLogger } from '@openrouter/observability';
import { freePort } from '../support/ports';
import { TEST_DEV_KEY, testConfig } from '../support/test-config';

describe('ingress whose router is down', () => {
  let ingress: IngressHandle;
  let url: string;

  beforeAll(async () => {
    // Nothing listens on the router's port: the peer is down, not misconfigured.
    const routerPort = await freePort();
    ingress = await startIngress(testConfig('http://127.0.0.1:9/v1', { ingress: 0, router: routerPort, adapter: 1 }), createLogger('test', 'silent'));
    url = `http://127.0.0.1:${ingress.httpPort}`;
  });
  afterAll(async () => ingress?.close());

  it('is alive but not ready', async () => {
    expect((await fetch(`${url}/health`)).status).toBe(200);
    const ready = await fetch(`${url}/ready`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ status: 'not_ready', checks: { router: 'failing' } });
  });

  it('answers requests with 503 in OpenAI shape, not a crash or a hang', async () => {
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: TEST_DEV_KEY, maxRetries: 0 });
    await expect(client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] })).rejects.toMatchObject({ status: 503, type: 'server_error' });
    await expect(client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], stream: true })).rejects.toMatchObject({ status: 503 });
    expect((await fetch(`${url}/health`)).status).toBe(200);
  });
});
