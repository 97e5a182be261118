import { billingv1 } from '@openrouter/contracts';
import { GrpcSecurity, GrpcServerHandle, type GrpcServiceBinding } from '@openrouter/grpc';
import { createLogger } from '@openrouter/observability';
import { startIngress, type IngressHandle } from '../index';
import { ingressTestConfig } from '../test-config.testing';

const ADMIN_KEY = 'sk-or-admin-spec-0123456789abcdef';

/**
 * A loopback port nothing listens on, ever: a port freed by a closed server may be taken by
 * another process of a busy test run, and a gRPC client that reached it would take a stranger for the router or billing.
 */
const REFUSED_PORT = 1;

interface Line {
  level: number;
  msg: string;
  peer?: string;
  address?: string;
}

describe('admin health and reports with billing', () => {
  let ingress: IngressHandle | undefined;
  afterEach(async () => ingress?.close());

  async function start(billing: string): Promise<{ url: string; lines: Line[] }> {
    const lines: Line[] = [];
    const logger = createLogger('ingress', 'info', { write: (line: string) => void lines.push(JSON.parse(line) as Line) });
    const config = ingressTestConfig({
      ingress: { http: { host: '127.0.0.1', port: 0 }, router: `127.0.0.1:${REFUSED_PORT}`, billing },
      access: { admin: { devKey: ADMIN_KEY } },
    });
    ingress = await startIngress(config, logger);
    return { url: `http://127.0.0.1:${ingress.httpPort}`, lines };
  }

  const get = async (url: string): Promise<{ status: number; body: Record<string, unknown> }> => {
    const response = await fetch(url, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };

  it('reports billing down in the admin health, not in the ingress readiness, and names it in a report 503', async () => {
    const billing = `127.0.0.1:${REFUSED_PORT}`;
    const { url, lines } = await start(billing);

    const health = await get(`${url}/admin/v1/health`);
    expect(health.body).toMatchObject({ ready: false, checks: { router: 'failing', billing: 'failing' } });
    // The ingress's own readiness is the router's (chat works without billing).
    const ready = await get(`${url}/ready`);
    expect(Object.keys(ready.body['checks'] as object)).toEqual(['router']);

    const usage = await get(`${url}/admin/v1/usage`);
    expect(usage.status).toBe(503);
    const error = usage.body['error'] as { message: string; code: string };
    expect(error.code).toBe('billing_unavailable');
    expect(error.message).toMatch(/^The billing service is unavailable, so reports \(usage, invoices, chargeback, exports\) cannot be served/);
    // The address is for the log, not for the client.
    expect(JSON.stringify(usage.body)).not.toContain(billing);
    const told = lines.find((l) => l.peer === 'billing');
    expect(told).toMatchObject({ level: 40, address: billing });
    expect(told?.msg).toContain(`billing at ${billing} is unreachable`);
  });

  it('reports billing ok once it serves', async () => {
    const implementation: Record<string, unknown> = {};
    for (const name of Object.keys(billingv1.BillingServiceService)) implementation[name] = (_call: unknown, callback: (error: Error) => void) => callback(new Error('not in this spec'));
    const binding = { definition: billingv1.BillingServiceService, implementation } as unknown as GrpcServiceBinding;
    const server = await GrpcServerHandle.start('127.0.0.1', 0, [binding], GrpcSecurity.fromConfig(ingressTestConfig().grpc));
    try {
      const { url } = await start(`127.0.0.1:${server.port}`);
      const health = await get(`${url}/admin/v1/health`);
      expect(health.body).toMatchObject({ checks: { router: 'failing', billing: 'ok' } });
    } finally {
      await server.close(0);
    }
  });
});
