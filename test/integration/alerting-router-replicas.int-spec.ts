import type { sendUnaryData, ServerUnaryCall } from '@grpc/grpc-js';
import { startAlerting, type AlertingHandle } from '@openrouter/alerting';
import { parseConfig } from '@openrouter/config';
import { routerv1 } from '@openrouter/contracts';
import { GrpcSecurity, GrpcServerHandle } from '@openrouter/grpc';
import { createLogger } from '@openrouter/observability';
import { InProcessUsageBus } from '@openrouter/usage';
import { waitFor } from '../support/infra/wait-for';
import { testConfigDocument } from '../support/test-config';
import { WebhookReceiver } from '../support/webhook-receiver';

const TOKEN = 'a-service-token-of-32-characters-or-more';
const security = GrpcSecurity.fromConfig({ auth: { token: TOKEN }, tls: { cert: '', key: '', ca: '', serverNameOverride: '' } });

/** A router replica on the real gRPC contract: its own breakers, which the test sets, and how often its status was read. */
class RouterReplica {
  polls = 0;
  private port = 0;
  private server: GrpcServerHandle | undefined;

  constructor(readonly breakers: Record<string, string>) {}

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const implementation: Pick<routerv1.RouterServiceServer, 'providersHealth' | 'grayReleases'> = {
      providersHealth: (_call: ServerUnaryCall<routerv1.ProvidersHealthRequest, routerv1.ProvidersHealthResponse>, callback: sendUnaryData<routerv1.ProvidersHealthResponse>) => {
        this.polls++;
        callback(null, routerv1.ProvidersHealthResponse.fromPartial({ deployments: Object.entries(this.breakers).map(([deployment, breakerState]) => ({ provider: 'simulated', deployment, breakerState })) }));
      },
      grayReleases: (_call: ServerUnaryCall<routerv1.GrayReleasesRequest, routerv1.GrayReleasesResponse>, callback: sendUnaryData<routerv1.GrayReleasesResponse>) => callback(null, { releases: [] }),
    };
    // A replica that comes back takes its port again, as a restarted container keeps its address.
    this.server = await GrpcServerHandle.start('127.0.0.1', this.port, [{ definition: routerv1.RouterServiceService, implementation }], security);
    this.port = this.server.port;
  }

  async stop(): Promise<void> {
    await this.server?.close(0);
    this.server = undefined;
  }
}

interface Notification {
  status: string;
  rule: { id: string };
  alerts: Array<{ labels: Record<string, string>; value: number; threshold: number; summary: string }>;
}

describe('alerting on every router replica (real gRPC servers, each with its own breakers)', () => {
  const replicas = [new RouterReplica({ 'sim-mini': 'open', 'sim-big': 'closed' }), new RouterReplica({ 'sim-mini': 'closed', 'sim-big': 'closed' }), new RouterReplica({ 'sim-mini': 'closed', 'sim-big': 'closed' })];
  const [a, b, c] = replicas as [RouterReplica, RouterReplica, RouterReplica];
  let hooks: WebhookReceiver;
  let bus: InProcessUsageBus;
  let alerting: AlertingHandle;

  beforeAll(async () => {
    for (const replica of replicas) await replica.start();
    hooks = await WebhookReceiver.start();
    const document = testConfigDocument('http://127.0.0.1:9/v1', { ingress: 0, router: 0, adapter: 0 });
    document['grpc'] = { auth: { token: TOKEN } };
    document['observability'] = {
      alerting: {
        // One address per replica, as a StatefulSet's pods or hosts without a shared name are listed.
        router: replicas.map((r) => r.address).join(','),
        // Each poll's calls get this long too (at most 5 s): a replica slow to answer on a loaded machine
        // would otherwise count as not answering, and fire the unreachable-router rule.
        routerPollMs: 2_000,
        evaluateIntervalMs: 100,
        delivery: { initialBackoffMs: 50, maxBackoffMs: 200, timeoutMs: 2_000 },
        channels: [{ id: 'ops', kind: 'webhook', url: hooks.url() }],
        rules: [
          { id: 'circuits', kind: 'circuit_open' },
          { id: 'circuits-majority', kind: 'circuit_open', minReplicaShare: 0.5 },
          { id: 'router-down', kind: 'router_unreachable', forMs: 500 },
        ],
      },
    };
    bus = new InProcessUsageBus(createLogger('bus', 'silent'));
    alerting = await startAlerting(parseConfig(document, {}), createLogger('alerting', 'silent'), { usageSource: bus });
  });

  afterAll(async () => {
    await alerting?.close();
    await bus?.close();
    await hooks?.close();
    for (const replica of replicas) await replica.stop();
  });

  const sent = (rule: string, status: string): Notification[] => hooks.received.map((h) => h.json as Notification).filter((n) => n.rule.id === rule && n.status === status);
  const alertsOf = (rule: string, status: string) => sent(rule, status).flatMap((n) => n.alerts.map((x) => [x.labels, x.value, x.threshold, x.summary]));
  const metric = async (state: string): Promise<number | undefined> => {
    const text = await (await fetch(`http://127.0.0.1:${alerting.httpPort}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith('openrouter_alerting_router_replicas{') && l.includes(`state="${state}"`));
    return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
  };
  /** Every replica still up has been polled `rounds` more times, and the rules evaluated after. */
  const polledAgain = async (up: RouterReplica[], rounds = 2): Promise<void> => {
    const from = up.map((r) => r.polls);
    await waitFor(() => up.every((r, i) => r.polls >= (from[i] ?? 0) + rounds), { timeoutMs: 20_000, what: 'polls of every replica up' });
    const text = async () => (await (await fetch(`http://127.0.0.1:${alerting.httpPort}/metrics`)).text()).match(/^openrouter_alert_evaluations_total\{[^}]*\} (\d+)/m)?.[1];
    const evaluated = Number(await text());
    await waitFor(async () => Number(await text()) >= evaluated + 2, { timeoutMs: 10_000, what: 'two more evaluations' });
  };

  it('alerts on a breaker open on one replica of three, saying so, and on a majority only once half of them have it open', async () => {
    await waitFor(() => sent('circuits', 'firing').length > 0, { timeoutMs: 15_000, what: 'the circuit alert' });
    expect(alertsOf('circuits', 'firing')).toEqual([[{ provider: 'simulated', deployment: 'sim-mini' }, 1, 1, 'Deployment sim-mini (simulated): circuit breaker open on 1 of 3 router replicas']]);
    expect(await metric('answering')).toBe(3);
    expect(await metric('not_answering')).toBe(0);
    await polledAgain(replicas);
    expect(sent('circuits-majority', 'firing')).toEqual([]);

    b.breakers['sim-mini'] = 'half_open';
    await waitFor(() => sent('circuits-majority', 'firing').length > 0, { timeoutMs: 15_000, what: 'the majority circuit alert' });
    expect(alertsOf('circuits-majority', 'firing')).toEqual([[{ provider: 'simulated', deployment: 'sim-mini' }, 2, 2, 'Deployment sim-mini (simulated): circuit breaker open on 2 of 3 router replicas (1 probing)']]);
    // The first alert holds through the change: not notified again.
    expect(sent('circuits', 'firing')).toHaveLength(1);
  });

  it('alerts on a replica that stops answering, and resolves no circuit alert until it answers again', async () => {
    await c.stop();
    await waitFor(() => sent('router-down', 'firing').length > 0, { timeoutMs: 15_000, what: 'the unreachable-router alert' });
    expect(alertsOf('router-down', 'firing').map(([labels, , threshold, summary]) => [labels, threshold, summary])).toEqual([
      [{ router: c.address }, 500, expect.stringMatching(new RegExp(`^Router ${c.address.replace(/\./g, '\\.')} has not answered since .*\\(2 of 3 router replicas answer\\)$`))],
    ]);
    expect(await metric('not_answering')).toBe(1);

    // The replicas that answer close their breakers; the one that does not may still have its own open.
    a.breakers['sim-mini'] = 'closed';
    b.breakers['sim-mini'] = 'closed';
    await polledAgain([a, b]);
    expect(sent('circuits', 'resolved')).toEqual([]);
    expect(sent('circuits-majority', 'resolved')).toEqual([]);

    // Back, with every breaker closed: all of it resolves.
    await c.start();
    await waitFor(() => sent('router-down', 'resolved').length > 0 && sent('circuits', 'resolved').length > 0 && sent('circuits-majority', 'resolved').length > 0, { timeoutMs: 30_000, what: 'the resolutions' });
    expect(await metric('not_answering')).toBe(0);
    expect(sent('circuits', 'firing')).toHaveLength(1);
  });
});
