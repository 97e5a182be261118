import { Writable } from 'node:stream';
import OpenAI from 'openai';
import { SecretVolume } from '@openrouter/provider-simulator';
import { waitFor } from '../support/infra/wait-for';
import { SIM_KEY } from '../support/test-config';
import { startTestGateway, type TestGateway } from '../support/test-gateway';

const ROTATED = 'sim-rotated-key-0002';
const ROTATED_AGAIN = 'sim-rotated-key-0003';
const REVOKED_LATER = 'sim-rotated-key-0004';
const hi = [{ role: 'user' as const, content: 'hi' }];

/**
 * A provider key mounted as a Kubernetes Secret and rotated while the gateway runs: the provider
 * starts taking a new key, the kubelet swaps the volume's `..data` symlink, and the gateway's next
 * calls succeed without a restart, by the refusal-triggered re-read (`on-refusal`, whose checks
 * are an hour apart, so nothing else can explain it) or by the periodic check (`on-check`).
 */
describe('rotating a provider key mounted as a file (openai SDK)', () => {
  let gw: TestGateway;
  let client: OpenAI;
  let onRefusal: SecretVolume;
  let onCheck: SecretVolume;
  const logged: string[] = [];

  beforeAll(async () => {
    onRefusal = new SecretVolume({ 'api-key': `${SIM_KEY}\n` });
    onCheck = new SecretVolume({ 'api-key': `${SIM_KEY}\n` });
    gw = await startTestGateway({
      logs: new Writable({
        write(chunk: Buffer, _encoding, done) {
          logged.push(chunk.toString());
          done();
        },
      }),
      configure: (doc) => {
        const simulated = (doc['providers'] as { simulated: { baseUrl: string } }).simulated;
        const providers = doc['providers'] as Record<string, unknown>;
        providers['on-refusal'] = { type: 'openai', baseUrl: simulated.baseUrl, apiKeyFile: onRefusal.path('api-key'), credentialFileCheckIntervalMs: 3_600_000, timeoutMs: 10_000 };
        providers['on-check'] = { type: 'openai', baseUrl: simulated.baseUrl, apiKeyFile: onCheck.path('api-key'), credentialFileCheckIntervalMs: '200', timeoutMs: 10_000 };
        (doc['models'] as Array<Record<string, unknown>>).push(
          { id: 'gpt-on-refusal', deployments: [{ provider: 'on-refusal', model: 'gpt-4o-mini' }] },
          { id: 'gpt-on-check', deployments: [{ provider: 'on-check', model: 'gpt-4o-mini' }] },
        );
      },
    });
    client = gw.client();
  }, 120_000);
  afterAll(async () => {
    await gw?.close();
    onRefusal?.remove();
    onCheck?.remove();
  });

  /** The outcomes of the provider calls made since `from` (an index in the simulator's log). */
  const callsSince = (from: number) => gw.sim.requests().slice(from).filter((r) => r.path === '/v1/chat/completions').map((r) => r.outcome);

  async function adapterMetric(name: string, provider: string, labels: Record<string, string> = {}): Promise<number | undefined> {
    const adapter = gw.gateway.services.find((s) => s.name === 'adapter');
    const text = await (await fetch(`http://127.0.0.1:${adapter?.httpPort ?? 0}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(`provider="${provider}"`) && Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)));
    return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
  }

  it('serves with the key read from the file, streamed and not', async () => {
    const answer = await client.chat.completions.create({ model: 'gpt-on-refusal', messages: hi });
    expect(answer.choices[0]?.message.content?.length).toBeGreaterThan(0);
    const stream = await client.chat.completions.create({ model: 'gpt-on-check', messages: hi, stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    expect(text.length).toBeGreaterThan(0);
    expect(await adapterMetric('openrouter_provider_credential_file_ok', 'on-refusal')).toBe(1);
  });

  it('takes the rotated key when the provider refuses the old one: the call is sent again and the client sees an answer', async () => {
    const from = gw.sim.requests().length;
    gw.sim.setApiKey(ROTATED);
    onRefusal.write({ 'api-key': `${ROTATED}\n` });
    const { data, response } = await client.chat.completions.create({ model: 'gpt-on-refusal', messages: hi }).withResponse();
    expect(response.headers.get('x-openrouter-provider')).toBe('on-refusal');
    expect(data.choices[0]?.message.content?.length).toBeGreaterThan(0);
    // Refused with the old key, then answered with the new one; the next call starts with the new one.
    expect(callsSince(from)).toEqual(['error', 'completed']);
    await client.chat.completions.create({ model: 'gpt-on-refusal', messages: hi });
    expect(callsSince(from)).toEqual(['error', 'completed', 'completed']);
  });

  it('takes the rotated key at the next check, before any call is refused', async () => {
    gw.sim.setApiKey(ROTATED_AGAIN);
    onCheck.write({ 'api-key': ROTATED_AGAIN });
    await waitFor(async () => (await adapterMetric('openrouter_provider_credential_file_reloads_total', 'on-check', { outcome: 'changed' })) === 1, { what: 'the check to take the new key' });
    const from = gw.sim.requests().length;
    await client.chat.completions.create({ model: 'gpt-on-check', messages: hi });
    expect(callsSince(from)).toEqual(['completed']);
  });

  it('keeps serving with the last good key while the file is gone, and shows it', async () => {
    onCheck.write({ other: 'x' });
    await waitFor(async () => (await adapterMetric('openrouter_provider_credential_file_ok', 'on-check')) === 0, { what: 'the unreadable file shown' });
    await client.chat.completions.create({ model: 'gpt-on-check', messages: hi });
    expect(logged.join('')).toContain('provider credential file cannot be read (or is empty): calls keep the secret read last');
    onCheck.write({ 'api-key': ROTATED_AGAIN });
    await waitFor(async () => (await adapterMetric('openrouter_provider_credential_file_ok', 'on-check')) === 1, { what: 'the file readable again' });
  });

  it("answers 502 upstream_auth_failed when the provider stops taking the key and the file was not rotated, quoting no key; no key is ever logged", async () => {
    gw.sim.setApiKey(REVOKED_LATER);
    const from = gw.sim.requests().length;
    const error = await client.chat.completions.create({ model: 'gpt-on-refusal', messages: hi }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect(error).toMatchObject({ status: 502, code: 'upstream_auth_failed' });
    expect((error as Error).message).not.toMatch(/sim-rotated|sim-secret/);
    // The file holds the refused key still: one call, not sent again.
    expect(callsSince(from)).toEqual(['error']);
    const logs = logged.join('');
    expect(logs).toContain('provider credential file changed: the calls made from now on use its new secret');
    for (const key of [SIM_KEY, ROTATED, ROTATED_AGAIN, REVOKED_LATER]) expect(logs).not.toContain(key);
  });
});
