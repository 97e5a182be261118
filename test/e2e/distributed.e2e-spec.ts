import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import OpenAI, { toFile } from 'openai';
import { stringify } from 'yaml';
import { adapterv1, routerv1 } from '@openrouter/contracts';
import { CHANNEL_OPTIONS, GrpcSecurity } from '@openrouter/grpc';
import { wavClip } from '@openrouter/provider-simulator';
import { waitFor } from '../support/infra/wait-for';
import { freePorts } from '../support/ports';
import { SIM_KEY, TEST_DEV_KEY, testConfigDocument } from '../support/test-config';

const root = resolve(__dirname, '../..');
/** The services' shared token (grpc.auth.token): every gRPC hop of this suite is authenticated. */
const INTERNAL_TOKEN = 'distributed-e2e-internal-token-0123456789';

async function waitForHealthy(url: string, child: ChildProcess, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${url}: process exited with ${child.exitCode}`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${url} did not become healthy`);
    await new Promise((r) => setTimeout(r, 50)); // poll interval while waiting on the condition
  }
}


describe('distributed mode: every service its own process', () => {
  const children: Array<{ name: string; child: ChildProcess }> = [];
  let baseURL = '';
  let internalURL = '';
  let simPort = 0;
  let routerPort = 0;
  let adapterPort = 0;
  let ingressOutput = '';

  beforeAll(async () => {
    execFileSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'ignore' });
    const [sim, ingress, router, adapter, routerHttp, adapterHttp, billing, alerting, ingressInternal] = await freePorts(9);
    simPort = sim!;
    routerPort = router!;
    adapterPort = adapter!;
    const document = testConfigDocument(`http://127.0.0.1:${sim}/v1`, { ingress: ingress!, router: router!, adapter: adapter!, routerHttp, adapterHttp, billing, alerting });
    // No admin key configured: the ingress generates one and tells it on its terminal.
    const access = document['access'] as Record<string, unknown>;
    document['access'] = { ...access, admin: { devKey: '' } };
    document['grpc'] = { auth: { token: INTERNAL_TOKEN } };
    // Metrics on the internal listener, as distributed.yaml has them.
    document['ingress'] = { ...(document['ingress'] as Record<string, unknown>), internalHttp: { host: '127.0.0.1', port: ingressInternal } };
    internalURL = `http://127.0.0.1:${ingressInternal}`;
    (document['models'] as unknown[]).push({ id: 'omni-moderation-latest', capabilities: ['moderation', 'vision'], pricing: { input: '0' }, deployments: [{ provider: 'simulated', model: 'omni-moderation-latest' }] });
    (document['models'] as unknown[]).push({ id: 'gpt-image-1', capabilities: ['images'], pricing: { input: '5', output: '40' }, deployments: [{ provider: 'simulated', model: 'gpt-image-1' }] });
    (document['models'] as unknown[]).push({ id: 'whisper-1', capabilities: ['transcription'], pricing: { perAudioMinute: '0.006' }, deployments: [{ provider: 'simulated', model: 'whisper-1' }] });
    (document['models'] as unknown[]).push({ id: 'tts-1', capabilities: ['speech'], pricing: { perMillionCharacters: '15' }, deployments: [{ provider: 'simulated', model: 'tts-1' }] });
    const dir = mkdtempSync(join(tmpdir(), 'openrouter-dist-'));
    const configPath = join(dir, 'config.yaml');
    writeFileSync(configPath, stringify(document));
    const env = { ...process.env, OPENROUTER_CONFIG: configPath };
    const run = (name: string, script: string, args: string[] = []): ChildProcess => {
      const child = spawn(process.execPath, [join(root, script), ...args], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout?.on('data', (data: Buffer) => {
        if (name === 'ingress') ingressOutput += data.toString();
      });
      // Read, or a service writing more than a pipe holds would wait on it for ever (its exit too).
      child.stderr?.resume();
      children.push({ name, child });
      return child;
    };
    const simChild = run('simulator', 'dist/libs/provider-simulator/src/main.js', ['--port', String(sim), '--api-key', SIM_KEY]);
    await waitForHealthy(`http://127.0.0.1:${sim}/_sim/requests`, simChild);
    const adapterChild = run('adapter', 'dist/services/adapter/src/main.js');
    const routerChild = run('router', 'dist/services/router/src/main.js');
    const billingChild = run('billing', 'dist/services/billing/src/main.js');
    const alertingChild = run('alerting', 'dist/services/alerting/src/main.js');
    const ingressChild = run('ingress', 'dist/services/ingress/src/main.js');
    await Promise.all([
      waitForHealthy(`http://127.0.0.1:${adapterHttp}/health`, adapterChild),
      waitForHealthy(`http://127.0.0.1:${routerHttp}/health`, routerChild),
      waitForHealthy(`http://127.0.0.1:${billing}/health`, billingChild),
      waitForHealthy(`http://127.0.0.1:${alerting}/health`, alertingChild),
      waitForHealthy(`http://127.0.0.1:${ingress}/ready`, ingressChild),
    ]);
    baseURL = `http://127.0.0.1:${ingress}/v1`;
  }, 90_000);

  afterAll(async () => {
    await Promise.all(children.filter(({ child }) => child.exitCode === null).map(async ({ child }) => {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }));
  });

  it('tells the admin key it generated on its terminal, and the key works', async () => {
    const adminKey = /Admin key \(generated; set OPENROUTER_ADMIN_KEY to choose one\): (sk-or-admin-\S+)/.exec(ingressOutput)?.[1];
    expect(adminKey).toBeDefined();
    const response = await fetch(`${baseURL.replace(/\/v1$/, '')}/admin/v1/whoami`, { headers: { authorization: `Bearer ${adminKey}` } });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ id: 'dev-admin', role: 'admin' });
  });

  it('serves chat, streaming, embeddings, moderations, images and audio across processes', async () => {
    const client = new OpenAI({ baseURL, apiKey: TEST_DEV_KEY, maxRetries: 0 });
    const completion = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'distributed' }] });
    expect(completion.choices[0]?.message.content).toBeTruthy();
    const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'distributed' }], stream: true, stream_options: { include_usage: true } });
    let text = '';
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      usage = chunk.usage ?? usage;
    }
    expect(text).toBe(completion.choices[0]?.message.content);
    expect(usage?.total_tokens).toBe(completion.usage?.total_tokens);
    const embedding = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'x' });
    expect(embedding.data[0]?.embedding.length).toBeGreaterThan(0);
    const moderation = await client.moderations.create({ input: ['a calm sentence', 'I will kill the lights'] });
    expect(moderation).toMatchObject({ model: 'omni-moderation-latest', results: [{ flagged: false }, { flagged: true, categories: { violence: true } }] });
    const images = await client.images.generate({ model: 'gpt-image-1', prompt: 'a lighthouse', n: 2, quality: 'low' });
    expect(images.data?.map((d) => Buffer.from(d.b64_json ?? '', 'base64').subarray(1, 4).toString())).toEqual(['PNG', 'PNG']);
    expect(images.usage?.output_tokens).toBeGreaterThan(0);
    // An upload over gRPC's default 4 MiB message limit, to the adapter and back: 150 s of 16 kHz 16-bit WAV (4.8 MB).
    const wav = wavClip(150_000);
    const { data: transcription, response: transcribed } = await client.audio.transcriptions.create({ file: await toFile(wav, 'long.wav'), model: 'whisper-1' }).withResponse();
    expect(transcription.text).toContain('long.wav (150 seconds of WAV audio)');
    expect(transcribed.headers.get('x-openrouter-cost')).toBe('0.015');
    const translation = await client.audio.translations.create({ file: await toFile(wavClip(2_000), 'short.wav'), model: 'whisper-1', response_format: 'text' });
    // The SDK returns a text answer as a string, whatever its declared type.
    expect((translation as unknown as string).trim()).toBe('Simulated translation of short.wav (2 seconds of WAV audio).');
    const speech = await client.audio.speech.create({ model: 'tts-1', voice: 'alloy', input: 'distributed', response_format: 'wav' });
    expect(speech.headers.get('content-type')).toBe('audio/wav');
    const spoken = Buffer.from(await speech.arrayBuffer());
    expect(spoken.readUInt32LE(4) + 8).toBe(spoken.length);
    // Streamed across the services: the cost is known only at the end, in the usage record.
    expect(speech.headers.get('x-openrouter-cost')).toBeNull();
    expect(speech.headers.get('x-openrouter-model')).toBe('tts-1');
  });

  it('carries long streams and streamed tool calls whole across the processes (chunks batched between services)', async () => {
    // Unpaced, the simulator's chunks arrive in bursts: the adapter and the router pass them on in
    // batches (more than the 64 a batch holds), and the client still reads every chunk in order.
    const simulator = `http://127.0.0.1:${simPort}`;
    const configured = await fetch(`${simulator}/_sim/behaviour`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ completionTokens: 300 }) });
    expect(configured.status).toBe(200);
    try {
      const client = new OpenAI({ baseURL, apiKey: TEST_DEV_KEY, maxRetries: 0 });
      const request = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'a long distributed answer' }] };
      const whole = await client.chat.completions.create(request);
      let text = '';
      let chunks = 0;
      for await (const chunk of await client.chat.completions.create({ ...request, stream: true })) {
        text += chunk.choices[0]?.delta.content ?? '';
        chunks += 1;
      }
      expect(chunks).toBeGreaterThan(64);
      expect(text).toBe(whole.choices[0]?.message.content);

      const tools = [{ type: 'function' as const, function: { name: 'lookup', parameters: { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer' } }, required: ['city', 'days'] } } }];
      const toolRequest = { ...request, tools, tool_choice: 'required' as const };
      const wholeCall = (await client.chat.completions.create(toolRequest)).choices[0]?.message.tool_calls?.[0];
      let name = '';
      let args = '';
      for await (const chunk of await client.chat.completions.create({ ...toolRequest, stream: true })) {
        const call = chunk.choices[0]?.delta.tool_calls?.[0];
        name += call?.function?.name ?? '';
        args += call?.function?.arguments ?? '';
      }
      expect(wholeCall?.type === 'function' ? wholeCall.function.name : undefined).toBe('lookup');
      expect(name).toBe('lookup');
      expect(JSON.parse(args)).toEqual(JSON.parse(wholeCall?.type === 'function' ? wholeCall.function.arguments : 'null'));
    } finally {
      await fetch(`${simulator}/_sim/reset`, { method: 'POST' });
    }
  });

  it('charges a request abandoned before the provider answered to the deployment the router was calling', async () => {
    // The router names the deployment it calls before the call, across the gRPC hop; without it
    // ingress would not know what the abandoned request was spending.
    const simulator = `http://127.0.0.1:${simPort}`;
    const metrics = async (): Promise<string> => (await fetch(`${internalURL}/metrics`)).text();
    const count = (text: string, labels: string): number => Number(new RegExp(`^${labels.replace(/[{}]/g, '\\$&')}[^}]*\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
    const abandoned = 'openrouter_requests_total{endpoint="/v1/chat/completions",model="gpt-4o-mini",provider="simulated",status="499"';
    const unrouted = 'openrouter_requests_total{endpoint="/v1/chat/completions",model="none",provider="none",status="200"';
    const inputTokens = 'openrouter_tokens_total{model="gpt-4o-mini",provider="simulated",direction="input"';
    const text = await metrics();
    const before = { abandoned: count(text, abandoned), unrouted: count(text, unrouted), input: count(text, inputTokens) };
    await fetch(`${simulator}/_sim/behaviour`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ faults: [{ kind: 'timeout' }] }) });
    try {
      const seen = async (): Promise<Array<{ outcome: string }>> => ((await (await fetch(`${simulator}/_sim/requests`)).json()) as { data: Array<{ outcome: string }> }).data;
      const calls = (await seen()).length;
      const client = new AbortController();
      const call = new OpenAI({ baseURL, apiKey: TEST_DEV_KEY, maxRetries: 0 }).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'nobody waits for this answer' }] }, { signal: client.signal });
      await waitFor(async () => ((await seen()).length > calls ? true : undefined), { timeoutMs: 10_000, what: 'the provider call' });
      client.abort();
      await expect(call).rejects.toThrow();
      const after = await waitFor(
        async () => {
          const now = await metrics();
          return count(now, abandoned) > before.abandoned ? { abandoned: count(now, abandoned), unrouted: count(now, unrouted), input: count(now, inputTokens) } : undefined;
        },
        { timeoutMs: 10_000, intervalMs: 100, what: 'the abandoned request metered' },
      );
      // Counted once, as the model and provider it was with, and its prompt metered.
      expect(after).toMatchObject({ abandoned: before.abandoned + 1, unrouted: before.unrouted });
      expect(after.input).toBeGreaterThan(before.input);
      // The abort reaches the simulator through the router and adapter processes, after ingress counted it.
      await waitFor(async () => ((await seen()).at(-1)?.outcome === 'aborted' ? true : undefined), { timeoutMs: 10_000, intervalMs: 100, what: 'the provider call aborted' });
    } finally {
      await fetch(`${simulator}/_sim/reset`, { method: 'POST' });
    }
  });

  it("serves the ingress's metrics on its internal listener only; probes on both", async () => {
    const origin = baseURL.replace(/\/v1$/, '');
    const publicMetrics = await fetch(`${origin}/metrics`);
    expect(publicMetrics.status).toBe(404);
    expect(await publicMetrics.text()).not.toContain('openrouter_');
    const internal = await fetch(`${internalURL}/metrics`);
    expect(internal.status).toBe(200);
    expect(await internal.text()).toMatch(/^openrouter_requests_total\{.*service="ingress"/m);
    for (const url of [`${origin}/ready`, `${internalURL}/ready`, `${internalURL}/health`]) expect((await fetch(url)).status).toBe(200);
    // The internal listener serves nothing else.
    expect((await fetch(`${internalURL}/v1/models`, { headers: { authorization: `Bearer ${TEST_DEV_KEY}` } })).status).toBe(404);
  });

  it('refuses gRPC calls to the router and the adapter that lack the service token', async () => {
    const codeOf = (call: (done: (error: ServiceError | null) => void) => void): Promise<number> =>
      new Promise((done) => call((error) => done(error?.code ?? status.OK)));
    const plain = new Metadata();
    const wrong = new Metadata();
    wrong.set('authorization', 'Bearer not-the-internal-token-but-just-as-long');
    const router = new routerv1.RouterServiceClient(`127.0.0.1:${routerPort}`, credentials.createInsecure(), CHANNEL_OPTIONS);
    const adapter = new adapterv1.AdapterServiceClient(`127.0.0.1:${adapterPort}`, credentials.createInsecure(), CHANNEL_OPTIONS);
    const authenticated = GrpcSecurity.fromConfig({ auth: { token: INTERNAL_TOKEN }, tls: { cert: '', key: '', ca: '', serverNameOverride: '' } }).client(routerv1.RouterServiceClient, `127.0.0.1:${routerPort}`);
    try {
      for (const metadata of [plain, wrong]) {
        expect(await codeOf((done) => router.providersHealth({}, metadata, done))).toBe(status.UNAUTHENTICATED);
        expect(await codeOf((done) => router.chat(routerv1.ChatRequest.fromPartial({}), metadata).on('error', done).on('end', () => done(null)).resume())).toBe(status.UNAUTHENTICATED);
        expect(await codeOf((done) => adapter.embed(adapterv1.EmbedRequest.fromPartial({}), metadata, done))).toBe(status.UNAUTHENTICATED);
      }
      expect(await codeOf((done) => authenticated.providersHealth({}, new Metadata(), done))).toBe(status.OK);
    } finally {
      router.close();
      adapter.close();
      authenticated.close();
    }
  });

  it('shuts every service down gracefully on SIGTERM', async () => {
    const services = children.filter(({ name }) => name !== 'simulator');
    const exits = services.map(({ child }) => once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>);
    for (const { child } of [...services].reverse()) child.kill('SIGTERM');
    const codes = (await Promise.all(exits)).map(([code]) => code);
    expect(codes).toEqual(services.map(() => 0));
  });
});
