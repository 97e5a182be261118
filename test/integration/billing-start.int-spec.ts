import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { usagev1 } from '@openrouter/contracts';
import { createLogger } from '@openrouter/observability';
import { emptyUsageEvent, inProcessUsageMessage, type UsageBatchHandler, type UsageSource } from '@openrouter/usage';
import { startBilling, type BillingHandle } from '@openrouter/billing';
import { ChdbHttpRelay, closedPort } from '../support/infra/chdb-http-relay';
import { readyAnswer as ready, readyChecks } from '../support/infra/ready-probe';
import { waitFor } from '../support/infra/wait-for';
import { HeldSource } from '../support/held-usage-source';
import { oneModelConfig } from '../support/one-model-config';

/** The embedded gateway's kind of source, recording when billing starts consuming. */
class RecordingSource implements UsageSource {
  handler: UsageBatchHandler | undefined;
  async start(handler: UsageBatchHandler): Promise<void> {
    this.handler = handler;
  }
  async lag(): Promise<number> {
    return 0;
  }
  async close(): Promise<void> {}
}

describe('billing started before its ClickHouse server', () => {
  it('is not ready, consumes nothing and retries quietly while the server is away, then migrates and consumes', async () => {
    const [clickhousePort, httpPort] = [await closedPort(), await closedPort()];
    const database = `late_${randomBytes(4).toString('hex')}`;
    const config = oneModelConfig({
      billing: { http: { host: '127.0.0.1', port: httpPort }, grpc: { port: 0 }, rollup: { reconcileIntervalMs: 0 } },
      usage: {
        clickhouse: { url: `http://billing:s3cret-pw@127.0.0.1:${clickhousePort}`, database, retentionDays: 3_650 },
        consumer: { retryInitialMs: 20, retryMaxMs: 200 },
      },
    });
    const lines: Array<{ level: number; msg: string; err?: unknown }> = [];
    const logger = createLogger('billing', 'info', { write: (line: string) => void lines.push(JSON.parse(line) as { level: number; msg: string }) });
    // `@clickhouse/client` logs a failed request, stack and all, on the console.
    const console = [jest.spyOn(globalThis.console, 'error'), jest.spyOn(globalThis.console, 'warn')];
    const source = new RecordingSource();
    const relay = new ChdbHttpRelay();
    let billing: BillingHandle | undefined;
    const starting = startBilling(config, logger, { usageSource: source }).then((handle) => (billing = handle));
    try {
      // Not ready, saying what it waits for and where (without the credentials of the URL), through several tries.
      const waiting = await waitFor(async () => {
        const answer = await ready(httpPort);
        return answer && Number(answer.body.details?.['clickhouse']?.['tries']) >= 3 ? answer : undefined;
      }, { what: 'billing not ready after three tries' });
      expect(waiting.status).toBe(503);
      expect(waiting.body.checks['clickhouse']).toBe('failing');
      expect(waiting.body.details?.['clickhouse']).toMatchObject({ dependency: 'the usage store (ClickHouse)', location: `http://127.0.0.1:${clickhousePort}/`, state: 'waiting', setting: 'usage.clickhouse.url / CLICKHOUSE_URL' });
      expect(String(waiting.body.details?.['clickhouse']?.['lastError'])).toContain('ECONNREFUSED');
      expect(JSON.stringify(waiting.body)).not.toContain('s3cret');
      // Nothing consumed: no event can be taken (and so committed) before it can be stored.
      expect(source.handler).toBeUndefined();
      expect(billing).toBeUndefined();

      await relay.listen(clickhousePort);
      await starting;
      expect(source.handler).toBeDefined();
      expect((await ready(httpPort))?.status).toBe(200);
      const migrated = await relay.rows(`SELECT max(version) AS version FROM ${database}.schema_migrations`);
      expect(Number(migrated[0]?.['version'])).toBeGreaterThanOrEqual(6);

      const event = emptyUsageEvent('late-1', Date.now());
      event.completedAtMs = event.receivedAtMs + 10;
      event.tenant = { orgId: 'acme', projectId: 'p', teamId: 't', appId: 'a', costCenter: '', keyId: 'k', endUser: '', tags: {} };
      event.status = usagev1.Status.STATUS_OK;
      event.cost = { amount: '0.001', currency: 'USD', priceVersion: 'v1' };
      await source.handler?.([inProcessUsageMessage(event)]);
      expect(await relay.rows(`SELECT event_id FROM ${database}.usage_events FINAL`)).toEqual([{ event_id: 'late-1' }]);

      // One warning when it started failing, one line when it got through; no stack, nothing on the console.
      const told = lines.filter((l) => /ClickHouse/.test(l.msg));
      expect(told.map((l) => [l.level, l.msg])).toEqual([
        [40, `the usage store (ClickHouse) is not reachable at http://127.0.0.1:${clickhousePort}/ (usage.clickhouse.url / CLICKHOUSE_URL): connect ECONNREFUSED 127.0.0.1:${clickhousePort}; not ready, trying again with backoff until it is`],
        [30, `the usage store (ClickHouse) at http://127.0.0.1:${clickhousePort}/ is reachable; going on with the start`],
      ]);
      expect(told.some((l) => l.err !== undefined)).toBe(false);
      expect(JSON.stringify(lines)).not.toContain('s3cret');
      for (const spy of console) expect(spy).not.toHaveBeenCalled();
    } finally {
      if (!billing) await relay.listen(clickhousePort).catch(() => undefined);
      await starting.catch(() => undefined);
      await billing?.close();
      await relay.close();
      for (const spy of console) spy.mockRestore();
    }
  });

  it('stops the start, naming the store and the setting, when the server refuses the credentials', async () => {
    const clickhousePort = await closedPort();
    // A ClickHouse server that refuses every user, as it does a wrong password.
    const server = createServer((_request, response) => response.writeHead(403).end('Code: 516. DB::Exception: billing: Authentication failed: password is incorrect, or there is no user with such name. (AUTHENTICATION_FAILED) (version 24.8.1)\n'));
    await new Promise<void>((resolve) => server.listen(clickhousePort, '127.0.0.1', resolve));
    const config = oneModelConfig({
      billing: { http: { port: 0 }, grpc: { port: 0 } },
      usage: { clickhouse: { url: `http://127.0.0.1:${clickhousePort}`, username: 'billing', password: 'wrong' } },
    });
    try {
      await expect(startBilling(config, createLogger('billing', 'silent'), { usageSource: new RecordingSource() })).rejects.toThrow(
        `the usage store (ClickHouse) at http://127.0.0.1:${clickhousePort}/ (usage.clickhouse.url / CLICKHOUSE_URL) cannot be used, and this does not pass by itself: HTTP 403: Code: 516. DB::Exception: billing: Authentication failed`,
      );
    } finally {
      await new Promise((done) => server.close(done));
    }
  });
});

describe('billing readiness', () => {
  it('is not ready until its whole start is done (pipeline consuming, report RPCs listening), even with its store ready', async () => {
    const httpPort = await closedPort();
    const config = oneModelConfig({
      log: { level: 'silent' },
      billing: { http: { host: '127.0.0.1', port: httpPort }, grpc: { port: 0 }, rollup: { reconcileIntervalMs: 0 } },
      usage: { clickhouse: { embedded: { path: ':memory:' } } },
    });
    const source = new HeldSource();
    let billing: BillingHandle | undefined;
    const starting = startBilling(config, createLogger('billing', 'silent'), { usageSource: source }).then((handle) => (billing = handle));
    try {
      await source.starting;
      // The store answers and is migrated; the pipeline is starting, the report RPCs are not up.
      expect(await readyChecks(httpPort)).toEqual({ status: 503, checks: { clickhouse: 'ok', starting: 'failing' } });

      source.release();
      await starting;
      expect(await readyChecks(httpPort)).toEqual({ status: 200, checks: { clickhouse: 'ok', 'usage-consumer': 'ok' } });
      // The report RPCs read the store through their own repository, each query bounded by the report's deadline.
      const report = await billing?.reports.service.usage({ fromMs: 0, toMs: 86_400_000, groupBy: ['model'], scope: undefined, filter: undefined });
      expect(report?.rows).toEqual([]);
    } finally {
      source.release();
      await starting.catch(() => undefined);
      await billing?.close();
    }
  });
});
