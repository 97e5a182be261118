import { APIError } from 'openai';
import { startForwardProxy, type RunningForwardProxy } from '@openrouter/provider-simulator';
import { startTestGateway, type TestGateway } from '../support/test-gateway';

/** The gateway behind a corporate forward proxy that asks for credentials: the OpenAI SDK sees no difference. */
describe('a provider reached through a forward proxy', () => {
  let proxy: RunningForwardProxy;
  let gw: TestGateway;
  let refused: TestGateway;

  const withProxy = (url: string) => (document: Record<string, unknown>) => {
    const providers = document['providers'] as Record<string, Record<string, unknown>>;
    providers['simulated'] = { ...providers['simulated'], proxy: url };
  };

  beforeAll(async () => {
    proxy = await startForwardProxy({ credentials: 'gateway:pr0xy-secret' });
    gw = await startTestGateway({ configure: withProxy(proxy.url) });
    refused = await startTestGateway({ configure: withProxy(proxy.url.replace('pr0xy-secret', 'wrong-secret')) });
  });
  afterAll(async () => {
    await Promise.all([gw?.close(), refused?.close()]);
    await proxy?.close();
  });

  it('answers completions and streams through the proxy', async () => {
    const client = gw.client();
    const completion = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hello there' }] });
    expect(completion.choices[0]?.message.content).toBeTruthy();
    const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hello again' }], stream: true, stream_options: { include_usage: true } });
    let usage: unknown;
    for await (const chunk of stream) usage = chunk.usage ?? usage;
    expect(usage).toMatchObject({ prompt_tokens: expect.any(Number) });
    const chat = `${gw.sim.baseUrl}/chat/completions`;
    expect(proxy.carried()).toEqual([
      { kind: 'forward', target: chat, status: 200 },
      { kind: 'forward', target: chat, status: 200 },
    ]);
  });

  it('turns the proxy refusing its credentials into a server error in OpenAI shape that names the refusal, not the credentials', async () => {
    const error: unknown = await refused
      .client()
      .chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hello there' }] })
      .then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(APIError);
    const api = error as APIError;
    expect(api).toMatchObject({ status: 503, code: 'unavailable' });
    expect(api.message).toContain('407');
    expect(JSON.stringify(api.error)).not.toMatch(/secret|gateway:/);
    expect(proxy.calls.filter((c) => c.status === 407).length).toBeGreaterThan(0);
    // The gateway is still up and serving.
    expect((await fetch(`${refused.url}/health`)).status).toBe(200);
  });
});
