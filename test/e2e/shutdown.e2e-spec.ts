import { queryRows } from '../support/infra/clickhouse';
import { waitFor } from '../support/infra/wait-for';
import { startTestGateway, type TestGateway } from '../support/test-gateway';

const GRACE_MS = 1_000;

describe('ingress shutdown', () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startTestGateway({
      configure: (document) => {
        const ingress = document['ingress'] as Record<string, unknown>;
        ingress['limits'] = { shutdownGraceMs: GRACE_MS };
      },
    });
  }, 120_000);

  afterAll(async () => {
    await gw?.close();
  });

  it('cuts a stream still running when the grace is over, and records its usage as cancelled', async () => {
    // A stream that would run for minutes: two tokens a second.
    gw.sim.configure({ tokensPerSecond: 2, completionTokens: 1_000 });
    const requestId = `shutdown-${Date.now()}`;
    const response = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${gw.apiKey}`, 'content-type': 'application/json', 'x-request-id': requestId },
      body: JSON.stringify({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'Tell me a long story.' }] }),
    });
    expect(response.status).toBe(200);
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    let text = '';
    while (!text.includes('"content"')) {
      const { value, done } = await reader.read();
      if (done) throw new Error('the stream ended before its first token');
      text += new TextDecoder().decode(value);
    }

    const started = Date.now();
    await gw.gateway.ingress.close();
    const tookMs = Date.now() - started;
    expect(tookMs).toBeGreaterThanOrEqual(GRACE_MS - 50);
    expect(tookMs).toBeLessThan(GRACE_MS + 5_000);
    // The client's stream ended without the answer's end.
    for (;;) {
      const read = await reader.read().catch(() => ({ done: true, value: undefined }));
      if (read.done) break;
      text += new TextDecoder().decode(read.value);
    }
    expect(text).not.toContain('[DONE]');

    const row = await waitFor(async () => {
      const rows = await queryRows<{ status: string; stream: boolean }>(
        gw.gateway.billing.usage.store,
        'SELECT status, stream FROM {db:Identifier}.usage_events FINAL WHERE request_id = {id:String}',
        { id: requestId },
      );
      return rows[0];
    }, { what: 'the usage event of the stream cut at shutdown' });
    expect(row).toEqual({ status: 'cancelled', stream: true });
  }, 60_000);
});
