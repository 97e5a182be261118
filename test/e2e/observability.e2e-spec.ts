import { Writable } from 'node:stream';
import { credentials, status, type ServiceError } from '@grpc/grpc-js';
import { routerv1 } from '@openrouter/contracts';
import { CHANNEL_OPTIONS, GrpcSecurity } from '@openrouter/grpc';
import OpenAI from 'openai';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { SpanKind } from '@opentelemetry/api';
import { startAlerting, verifySignature, SIGNATURE_HEADER, TIMESTAMP_HEADER, type AlertingHandle } from '@openrouter/alerting';
import { parseConfig } from '@openrouter/config';
import { createLogger } from '@openrouter/observability';
import { InProcessUsageBus } from '@openrouter/usage';
import { waitFor } from '../support/infra/wait-for';
import { startTestGateway, type TestGateway } from '../support/test-gateway';
import { TEST_ADMIN_KEY, testConfigDocument } from '../support/test-config';
import { WebhookReceiver } from '../support/webhook-receiver';

const hi = [{ role: 'user' as const, content: 'hi' }];

async function scrape(port: number): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toContain('text/plain');
  return response.text();
}

/** The value of one series (`name{labels}`) in an exposition, summed over series that match every given label. */
function value(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  let found = false;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    found = true;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return found ? sum : Number.NaN;
}

function port(gw: TestGateway, name: string): number {
  const service = gw.gateway.services.find((s) => s.name === name);
  if (!service) throw new Error(`no service ${name}`);
  return service.httpPort;
}

describe('observability: metrics, tracing and alerting through the embedded gateway', () => {
  describe('metrics', () => {
    let gw: TestGateway;
    beforeAll(async () => {
      gw = await startTestGateway();
    }, 120_000);
    afterAll(async () => gw?.close());

    it('serves /metrics on every service, with the listed series and bounded labels after traffic', async () => {
      const client = gw.client();
      await client.chat.completions.create({ model: 'gpt-4o-mini', messages: hi });
      const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: hi, stream: true });
      for await (const _ of stream) void _;
      await client.embeddings.create({ model: 'text-embedding-3-small', input: 'hello' });
      // Served by the chat path, counted under the endpoint it came through.
      await client.responses.create({ model: 'gpt-4o-mini', input: 'hi' });
      await expect(gw.client({ apiKey: 'sk-wrong' }).chat.completions.create({ model: 'gpt-4o-mini', messages: hi })).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
      await waitFor(async () => value(await scrape(gw.gateway.ingress.httpPort), 'openrouter_requests_total', { status: '401' }) >= 1, { what: 'the refused request counted' });

      const ingress = await scrape(gw.gateway.ingress.httpPort);
      expect(value(ingress, 'openrouter_requests_total', { endpoint: '/v1/chat/completions', model: 'gpt-4o-mini', provider: 'simulated', status: '200' })).toBe(2);
      expect(value(ingress, 'openrouter_requests_total', { endpoint: '/v1/embeddings', model: 'text-embedding-3-small', status: '200' })).toBe(1);
      expect(value(ingress, 'openrouter_requests_total', { endpoint: '/v1/responses', model: 'gpt-4o-mini', provider: 'simulated', status: '200' })).toBe(1);
      expect(value(ingress, 'openrouter_requests_total', { endpoint: '/v1/chat/completions', model: 'none', provider: 'none', status: '401' })).toBe(1);
      expect(value(ingress, 'openrouter_request_duration_seconds_count', { endpoint: '/v1/chat/completions', model: 'gpt-4o-mini', outcome: 'ok' })).toBe(2);
      expect(value(ingress, 'openrouter_time_to_first_token_seconds_count', { endpoint: '/v1/chat/completions', model: 'gpt-4o-mini' })).toBe(2);
      expect(value(ingress, 'openrouter_gateway_overhead_seconds_count', { endpoint: '/v1/chat/completions' })).toBe(2);
      expect(value(ingress, 'openrouter_tokens_total', { model: 'gpt-4o-mini', direction: 'input' })).toBeGreaterThan(0);
      expect(value(ingress, 'openrouter_tokens_total', { model: 'gpt-4o-mini', direction: 'output' })).toBeGreaterThan(0);
      expect(value(ingress, 'openrouter_cost_total', { model: 'gpt-4o-mini', currency: 'USD' })).toBeGreaterThan(0);
      expect(value(ingress, 'openrouter_requests_in_flight', { endpoint: '/v1/chat/completions' })).toBe(0);
      expect(value(ingress, 'openrouter_rate_limited_requests_total')).toBeNaN();
      expect(ingress).toContain('# TYPE openrouter_budget_rejected_requests_total counter');
      expect(value(ingress, 'openrouter_usage_outbox_depth')).toBeGreaterThanOrEqual(0);
      expect(ingress).toContain('# TYPE openrouter_usage_producer_errors_total counter');
      expect(ingress).toMatch(/openrouter_process_cpu_seconds_total\{service="ingress"\}/);
      // Low cardinality: no key, org, user or request ids as labels.
      expect(ingress).not.toMatch(/(key_id|org_id|user|request_id|keyId|orgId)="/);
      expect(ingress).not.toContain(gw.apiKey);

      const router = await scrape(port(gw, 'router'));
      // Two chat completions and the Responses request: three chat calls.
      expect(value(router, 'openrouter_router_attempts_total', { provider: 'simulated', deployment: 'sim-mini', outcome: 'ok' })).toBe(3);
      expect(value(router, 'openrouter_circuit_state', { provider: 'simulated', deployment: 'sim-mini' })).toBe(0);
      expect(router).toContain('# TYPE openrouter_router_retries_total counter');
      expect(router).toContain('# TYPE openrouter_router_failovers_total counter');

      const adapter = await scrape(port(gw, 'adapter'));
      expect(value(adapter, 'openrouter_upstream_duration_seconds_count', { provider: 'simulated', operation: 'chat', outcome: 'ok' })).toBe(3);
      expect(value(adapter, 'openrouter_upstream_requests_total', { provider: 'simulated', operation: 'embedding', outcome: 'ok' })).toBe(1);

      const billing = await scrape(port(gw, 'billing'));
      await waitFor(async () => value(await scrape(port(gw, 'billing')), 'openrouter_usage_events_consumed_total', { result: 'stored' }) >= 4, { what: 'usage stored' });
      expect(billing).toContain('openrouter_usage_consumer_lag{group="billing",service="billing"}');
      expect(value(await scrape(port(gw, 'billing')), 'openrouter_clickhouse_insert_duration_seconds_count', { table: 'usage_events', outcome: 'ok' })).toBeGreaterThan(0);

      const alerting = await scrape(port(gw, 'alerting'));
      expect(alerting).toContain('# TYPE openrouter_alerts_sent_total counter');
      expect(alerting).toContain('openrouter_usage_consumer_lag{group="alerting",service="alerting"}');

      for (const name of ['adapter', 'router', 'billing', 'alerting', 'ingress']) {
        expect((await fetch(`http://127.0.0.1:${port(gw, name)}/health`)).status).toBe(200);
        expect((await fetch(`http://127.0.0.1:${port(gw, name)}/ready`)).status).toBe(200);
      }
    }, 60_000);
  });

  describe('tracing', () => {
    let gw: TestGateway;
    const exporter = new InMemorySpanExporter();
    beforeAll(async () => {
      gw = await startTestGateway({
        telemetry: { spanExporter: exporter },
        configure: (doc) => {
          doc['observability'] = { tracing: { enabled: true } };
        },
      });
    }, 120_000);
    afterAll(async () => gw?.close());

    it('records one trace per request with spans from ingress, router, adapter and the provider call', async () => {
      const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
      const { response } = await gw
        .client()
        .chat.completions.create({ model: 'gpt-4o-mini', messages: hi, stream: false }, { headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` } })
        .withResponse();
      expect(response.status).toBe(200);
      const spans = await waitFor(() => {
        const mine = exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
        const services = new Set(mine.map((s) => s.resource.attributes['service.name']));
        return services.has('openrouter-ingress') && services.has('openrouter-router') && services.has('openrouter-adapter') && mine.some((s) => s.name === 'POST simulated') ? mine : undefined;
      }, { what: 'spans of all three services' });
      const byName = new Map(spans.map((s) => [s.name, s]));
      const ingress = byName.get('POST /v1/chat/completions');
      const router = byName.get('openrouter.router.v1.RouterService/Chat');
      const adapter = byName.get('openrouter.adapter.v1.AdapterService/Chat');
      const provider = byName.get('POST simulated');
      expect([ingress, router, adapter, provider].every(Boolean)).toBe(true);
      // One chain: client → ingress → router → adapter → provider call.
      expect(ingress?.parentSpanContext?.spanId).toBe('00f067aa0ba902b7');
      expect(router?.parentSpanContext?.spanId).toBe(ingress?.spanContext().spanId);
      expect(adapter?.parentSpanContext?.spanId).toBe(router?.spanContext().spanId);
      expect(provider?.parentSpanContext?.spanId).toBe(adapter?.spanContext().spanId);
      expect(new Set(spans.map((s) => s.spanContext().traceId))).toEqual(new Set([traceId]));
      // The usage event carries the ingress span in its message headers: the consumer's span links to it.
      // Both consumers (alerting's aggregates, billing's insert) make a span linked to it.
      const consumers = await waitFor(
        () => {
          const linked = exporter.getFinishedSpans().filter((s) => s.links.some((l) => l.context.traceId === traceId));
          const services = new Set(linked.map((s) => s.resource.attributes['service.name']));
          return services.has('openrouter-alerting') && services.has('openrouter-billing') ? linked : undefined;
        },
        { what: 'the alerting and billing consumer spans' },
      );
      for (const consumed of consumers) {
        expect(consumed.kind).toBe(SpanKind.CONSUMER);
        expect(consumed.links.find((l) => l.context.traceId === traceId)?.context.spanId).toBe(ingress?.spanContext().spanId);
      }

      // A request without a parent starts its own trace, still across all three services.
      exporter.reset();
      await gw.client().chat.completions.create({ model: 'gpt-4o-mini', messages: hi, stream: true }).then(async (s) => {
        for await (const _ of s) void _;
      });
      const fresh = await waitFor(() => {
        const all = exporter.getFinishedSpans();
        return new Set(all.map((s) => s.resource.attributes['service.name'])).size >= 3 && all.some((s) => s.name === 'POST simulated') ? all : undefined;
      }, { what: 'spans of the streamed request' });
      const requestPath = fresh.filter((s) => s.resource.attributes['service.name'] !== 'openrouter-alerting');
      expect(new Set(requestPath.map((s) => s.spanContext().traceId)).size).toBe(1);
    }, 60_000);
  });

  describe('logs', () => {
    let gw: TestGateway;
    const lines: string[] = [];
    beforeAll(async () => {
      const logs = new Writable({
        write(chunk: Buffer, _encoding, done) {
          lines.push(...chunk.toString().split('\n').filter(Boolean));
          done();
        },
      });
      gw = await startTestGateway({
        logs,
        telemetry: { spanExporter: new InMemorySpanExporter() },
        configure: (doc) => {
          doc['log'] = { level: 'debug' };
          doc['observability'] = { tracing: { enabled: true }, log: { debugSizes: true } };
        },
      });
    }, 120_000);
    afterAll(async () => gw?.close());

    it('logs JSON access lines with request, trace and tenant ids and sizes, never keys, prompts or completions', async () => {
      const prompt = 'PROMPT-MARKER-7d1f please answer';
      const { data, response } = await gw.client().chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: prompt }] }).withResponse();
      const requestId = response.headers.get('x-request-id');
      const line = await waitFor(() => lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l['requestId'] === requestId && l['msg'] === 'request served'), { what: 'the access line' });
      expect(line).toMatchObject({ service: 'ingress', route: '/v1/chat/completions', status: 200, orgId: 'default', teamId: expect.any(String), projectId: expect.any(String) });
      expect(line['traceId']).toMatch(/^[0-9a-f]{32}$/);
      expect(line['keyId']).toEqual(expect.any(String));
      expect(line['requestBytes']).toBeGreaterThan(prompt.length);
      const completion = data.choices[0]?.message.content ?? '';
      expect(completion.length).toBeGreaterThan(5);
      const all = lines.join('\n');
      expect(all).not.toContain('PROMPT-MARKER-7d1f');
      expect(all).not.toContain(completion);
      expect(all).not.toContain(gw.apiKey);
    }, 60_000);
  });

  describe('alerting', () => {
    let gw: TestGateway;
    let hooks: WebhookReceiver;
    const secret = 'whsec-test-0123456789';

    beforeAll(async () => {
      hooks = await WebhookReceiver.start();
      gw = await startTestGateway({
        configure: (doc) => {
          doc['budgets'] = { list: [{ id: 'org-alerts', scope: { org: 'default' }, period: 'monthly', amount: '0.0005', enforcement: 'soft', alertThresholds: [50, 80, 100] }] };
          doc['routing'] = { retry: { maxAttempts: 4 } };
          doc['observability'] = {
            alerting: {
              evaluateIntervalMs: 100,
              bucketMs: 250,
              delivery: { initialBackoffMs: 50, maxBackoffMs: 200, timeoutMs: 2_000 },
              channels: [
                { id: 'ops', kind: 'webhook', url: hooks.url('/ops'), secret },
                { id: 'chat', kind: 'slack', url: hooks.url('/slack') },
              ],
              rules: [
                // A window of many calls: over a short one, random faults (and usage handed over up to
                // a second late) can dip below the threshold, resolving and firing the alert again.
                { id: 'provider-errors', kind: 'error_rate', scope: 'provider', windowMs: 10_000, threshold: 0.25, minRequests: 8, cooldownMs: 600_000, channels: ['ops', 'chat'] },
                { id: 'budget-80', kind: 'budget_threshold', minPercent: 80, channels: ['ops'] },
              ],
            },
          };
        },
      });
    }, 120_000);
    afterAll(async () => {
      await gw?.close();
      await hooks?.close();
    });

    const alertsOf = (path: string, rule: string, status: string) =>
      hooks.on(path).filter((h) => {
        const body = h.json as { rule?: { id?: string }; status?: string };
        return body.rule?.id === rule && body.status === status;
      });

    it('notifies the budget alert when spend passes 80% of a budget', async () => {
      const client = gw.client();
      await waitFor(
        async () => {
          await client.chat.completions.create({ model: 'gpt-4o-mini', messages: hi, max_tokens: 50 });
          return alertsOf('/ops', 'budget-80', 'firing').length > 0;
        },
        { timeoutMs: 30_000, what: 'the budget alert' },
      );
      const hook = alertsOf('/ops', 'budget-80', 'firing')[0];
      const body = hook?.json as { alerts: Array<{ labels: Record<string, string>; value: number }> };
      expect(body.alerts.every((a) => a.labels['budget'] === 'org-alerts' && a.labels['org'] === 'default' && a.value >= 80)).toBe(true);
      expect(hook && verifySignature(secret, hook.headers[TIMESTAMP_HEADER] ?? '', hook.body, hook.headers[SIGNATURE_HEADER] ?? '')).toBe(true);
      // Below the rule's 80%: the 50% crossing notified nothing.
      expect(hooks.on('/ops').flatMap((h) => (h.json as { alerts: Array<{ labels: Record<string, string> }> }).alerts).some((a) => a.labels['threshold'] === '50')).toBe(false);
    }, 60_000);

    it('notifies an error-rate alert once within its cooldown, then its resolution, signed with HMAC', async () => {
      gw.sim.configure({ faults: [{ kind: 'http_error', status: 500, rate: 0.5 }] });
      const client = gw.client();
      const call = () => client.chat.completions.create({ model: 'gpt-4o-mini', messages: hi }).catch(() => undefined);
      await waitFor(
        async () => {
          await Promise.all(Array.from({ length: 4 }, call));
          return alertsOf('/ops', 'provider-errors', 'firing').length > 0;
        },
        { timeoutMs: 30_000, what: 'the error-rate alert' },
      );
      // Still failing for many more evaluation rounds: no second notification within the cooldown.
      const evaluations = async () => {
        const r = await fetch(`http://127.0.0.1:${port(gw, 'alerting')}/metrics`);
        return value(await r.text(), 'openrouter_alert_evaluations_total');
      };
      const from = await evaluations();
      await waitFor(
        async () => {
          await Promise.all(Array.from({ length: 4 }, call));
          return (await evaluations()) >= from + 15;
        },
        { what: '15 more evaluation rounds' },
      );
      expect(alertsOf('/ops', 'provider-errors', 'firing')).toHaveLength(1);
      expect(alertsOf('/slack', 'provider-errors', 'firing').length + hooks.on('/slack').filter((h) => String((h.json as { text?: string }).text).includes('[FIRING] provider-errors')).length).toBeGreaterThanOrEqual(1);

      const [firing] = alertsOf('/ops', 'provider-errors', 'firing');
      const body = firing?.json as { alerts: Array<{ labels: Record<string, string>; value: number; summary: string }>; rule: { kind: string } };
      expect(body.rule.kind).toBe('error_rate');
      expect(body.alerts).toHaveLength(1);
      expect(body.alerts[0]?.labels).toEqual({ provider: 'simulated' });
      expect(body.alerts[0]?.value).toBeGreaterThanOrEqual(0.25);
      expect(firing && verifySignature(secret, firing.headers[TIMESTAMP_HEADER] ?? '', firing.body, firing.headers[SIGNATURE_HEADER] ?? '')).toBe(true);
      expect(firing && verifySignature('another-secret', firing.headers[TIMESTAMP_HEADER] ?? '', firing.body, firing.headers[SIGNATURE_HEADER] ?? '')).toBe(false);
      expect(firing && verifySignature(secret, firing.headers[TIMESTAMP_HEADER] ?? '', firing.body.replace('simulated', 'tampered'), firing.headers[SIGNATURE_HEADER] ?? '')).toBe(false);

      // Recovery: the provider answers again; the errors leave the window and the alert resolves.
      gw.sim.configure({ faults: [] });
      await waitFor(
        async () => {
          await Promise.all(Array.from({ length: 2 }, call));
          return alertsOf('/ops', 'provider-errors', 'resolved').length > 0;
        },
        { timeoutMs: 30_000, what: 'the resolved notification' },
      );
      const [resolved] = alertsOf('/ops', 'provider-errors', 'resolved');
      expect(resolved && verifySignature(secret, resolved.headers[TIMESTAMP_HEADER] ?? '', resolved.body, resolved.headers[SIGNATURE_HEADER] ?? '')).toBe(true);
      expect(alertsOf('/ops', 'provider-errors', 'firing')).toHaveLength(1);

      // The history is readable in the admin API.
      const history = await waitFor(async () => {
        const r = await fetch(`${gw.url}/admin/v1/alerts?rule=provider-errors`, { headers: { authorization: `Bearer ${TEST_ADMIN_KEY}` } });
        const list = (await r.json()) as { data: Array<{ at: string; status: string; labels: Record<string, string>; notified: boolean }> };
        return list.data.length >= 2 ? list.data : undefined;
      }, { what: 'alert history' });
      expect(history.map((h) => h.status)).toEqual(['resolved', 'firing']);
      expect(history[1]).toMatchObject({ labels: { provider: 'simulated' }, notified: true });
      const sinceResolved = await fetch(`${gw.url}/admin/v1/alerts?rule=provider-errors&since=${encodeURIComponent(history[0]?.at ?? '')}`, { headers: { authorization: `Bearer ${TEST_ADMIN_KEY}` } });
      expect(sinceResolved.status).toBe(200);
      expect(((await sinceResolved.json()) as { data: Array<{ status: string }> }).data.map((h) => h.status)).toEqual(['resolved']);
      expect((await fetch(`${gw.url}/admin/v1/alerts`)).status).toBe(401);
      expect((await fetch(`${gw.url}/admin/v1/alerts?limit=0`, { headers: { authorization: `Bearer ${TEST_ADMIN_KEY}` } })).status).toBe(400);

      const metrics = await (await fetch(`http://127.0.0.1:${port(gw, 'alerting')}/metrics`)).text();
      expect(value(metrics, 'openrouter_alerts_sent_total', { rule_kind: 'error_rate', channel: 'ops', status: 'firing' })).toBe(1);
      expect(value(metrics, 'openrouter_alerts_sent_total', { rule_kind: 'error_rate', channel: 'ops', status: 'resolved' })).toBe(1);
    }, 90_000);
  });
});

describe('alerting that restarts while an alert fires', () => {
  let gw: TestGateway;
  let hooks: WebhookReceiver;
  const running: AlertingHandle[] = [];

  beforeAll(async () => {
    hooks = await WebhookReceiver.start();
    // The circuit stays open long enough for a restart to happen while it is.
    gw = await startTestGateway({ configure: (doc) => void (doc['routing'] = { retry: { maxAttempts: 1 }, breaker: { consecutiveFailures: 3, cooldownMs: 15_000, minRequests: 1_000 } }) });
  }, 120_000);
  afterAll(async () => {
    for (const handle of running) await handle.close();
    await gw?.close();
    await hooks?.close();
  });

  /** An alerting service of its own, as a separate process would be: the gateway's router and alert history, no usage. */
  async function alerting(): Promise<AlertingHandle> {
    const router = gw.gateway.services.find((s) => s.name === 'router');
    const document = testConfigDocument(gw.sim.baseUrl, { ingress: 0, router: 0, adapter: 0 });
    // The embedded gateway's gRPC listeners require its service token.
    document['grpc'] = { auth: { token: gw.gateway.internalToken } };
    document['observability'] = {
      alerting: {
        evaluateIntervalMs: 100,
        routerPollMs: 100,
        delivery: { initialBackoffMs: 50, maxBackoffMs: 200, timeoutMs: 2_000 },
        channels: [{ id: 'ops', kind: 'webhook', url: hooks.url('/restart') }],
        rules: [{ id: 'circuits', kind: 'circuit_open', channels: ['ops'] }],
      },
    };
    const handle = await startAlerting(parseConfig(document, {}), createLogger('alerting', 'silent'), {
      store: gw.gateway.billing.usage.store,
      routerAddress: `127.0.0.1:${router?.grpcPort ?? 0}`,
      usageSource: new InProcessUsageBus(createLogger('bus', 'silent')),
    });
    running.push(handle);
    return handle;
  }

  const sent = (status: string) => hooks.on('/restart').filter((h) => (h.json as { status?: string }).status === status);
  const evaluations = async (handle: AlertingHandle) => value(await (await fetch(`http://127.0.0.1:${handle.httpPort}/metrics`)).text(), 'openrouter_alert_evaluations_total');
  const health = async () => (await fetch(`${gw.url}/admin/v1/providers/health`, { headers: { authorization: `Bearer ${TEST_ADMIN_KEY}` } })).text();

  it("refuses calls to the embedded gateway's loopback gRPC listeners without its service token", async () => {
    const router = gw.gateway.services.find((s) => s.name === 'router');
    const plain = new routerv1.RouterServiceClient(`127.0.0.1:${router?.grpcPort ?? 0}`, credentials.createInsecure(), CHANNEL_OPTIONS);
    const authenticated = GrpcSecurity.fromConfig({ auth: { token: gw.gateway.internalToken }, tls: { cert: '', key: '', ca: '', serverNameOverride: '' } }).client(routerv1.RouterServiceClient, `127.0.0.1:${router?.grpcPort ?? 0}`);
    const codeOf = (client: routerv1.RouterServiceClient): Promise<number> => new Promise((done) => client.providersHealth({}, (error: ServiceError | null) => done(error?.code ?? status.OK)));
    try {
      // Another local process (a user of a shared machine) cannot chat or read health past the gateway.
      expect(await codeOf(plain)).toBe(status.UNAUTHENTICATED);
      expect(await codeOf(authenticated)).toBe(status.OK);
    } finally {
      plain.close();
      authenticated.close();
    }
  });

  it('does not notify an alert that still holds again, and resolves it once it ends', async () => {
    const first = await alerting();
    gw.sim.configure({ faults: [{ kind: 'http_error', status: 500 }] });
    const client = gw.client();
    await waitFor(
      async () => {
        await client.chat.completions.create({ model: 'gpt-4o-mini', messages: hi }).catch(() => undefined);
        return sent('firing').length > 0;
      },
      { timeoutMs: 30_000, what: 'the circuit alert' },
    );
    await first.historyFlushed();
    await first.close();
    running.splice(running.indexOf(first), 1);

    // The restart, while the circuit is still open.
    const second = await alerting();
    const from = await evaluations(second);
    await waitFor(async () => ((await evaluations(second)) >= from + 20 ? true : undefined), { what: '20 evaluation rounds of the restarted service' });
    // It has polled the router all along, and the circuit was open all along: nothing was sent.
    const state = JSON.parse(await health()) as { deployments: Array<{ breaker_state: string; replicas: Record<string, number> }>; replicas: unknown[] };
    expect(state.deployments.filter((d) => d.breaker_state === 'open').map((d) => d.replicas)).toEqual([{ closed: 0, half_open: 0, open: 1 }]);
    expect(state.replicas).toEqual([{ address: 'in-process', answering: true }]);
    expect(sent('firing')).toHaveLength(1);
    expect(sent('resolved')).toHaveLength(0);

    // The provider recovers; once the cooldown passes a probe gets through and closes the circuit
    // (half-open alone is not recovered): the restarted service resolves the alert.
    gw.sim.configure({ faults: [] });
    await waitFor(
      async () => {
        await client.chat.completions.create({ model: 'gpt-4o-mini', messages: hi }).catch(() => undefined);
        return sent('resolved').length > 0 ? true : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200, what: 'the resolved notification' },
    );
    const [resolved] = sent('resolved');
    const [fired] = sent('firing');
    const alertOf = (h: typeof fired) => (h?.json as { alerts: Array<{ labels: Record<string, string>; started_at: string }> }).alerts[0];
    expect(alertOf(resolved)?.labels).toEqual({ provider: 'simulated', deployment: 'sim-mini' });
    // The same episode: it started before the restart.
    expect(alertOf(resolved)?.started_at).toBe(alertOf(fired)?.started_at);
    expect(sent('firing')).toHaveLength(1);
  }, 90_000);
});
