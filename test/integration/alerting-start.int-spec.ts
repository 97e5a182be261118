import { randomBytes } from 'node:crypto';
import { createLogger } from '@openrouter/observability';
import { startAlerting, type AlertingHandle } from '@openrouter/alerting';
import { ChdbHttpRelay, closedPort } from '../support/infra/chdb-http-relay';
import { readyAnswer as ready, readyChecks } from '../support/infra/ready-probe';
import { waitFor } from '../support/infra/wait-for';
import { HeldSource } from '../support/held-usage-source';
import { oneModelConfig } from '../support/one-model-config';

describe('alerting started before its ClickHouse server', () => {
  it('is not ready while the server is away, says so once, then migrates the alert history and starts', async () => {
    const [clickhousePort, httpPort] = [await closedPort(), await closedPort()];
    const database = `late_${randomBytes(4).toString('hex')}`;
    const config = oneModelConfig({
      alerting: { http: { host: '127.0.0.1', port: httpPort } },
      usage: { clickhouse: { url: `http://alerting:s3cret-pw@127.0.0.1:${clickhousePort}`, database }, consumer: { retryInitialMs: 20, retryMaxMs: 200 } },
    });
    const lines: Array<{ level: number; msg: string; err?: unknown }> = [];
    const logger = createLogger('alerting', 'info', { write: (line: string) => void lines.push(JSON.parse(line) as { level: number; msg: string }) });
    // `@clickhouse/client` logs a failed request, stack and all, on the console.
    const console = [jest.spyOn(globalThis.console, 'error'), jest.spyOn(globalThis.console, 'warn')];
    const relay = new ChdbHttpRelay();
    let alerting: AlertingHandle | undefined;
    const starting = startAlerting(config, logger).then((handle) => (alerting = handle));
    try {
      const waiting = await waitFor(async () => {
        const answer = await ready(httpPort);
        return answer && Number(answer.body.details?.['clickhouse']?.['tries']) >= 3 ? answer : undefined;
      }, { what: 'alerting not ready after three tries' });
      expect(waiting.status).toBe(503);
      expect(waiting.body.details?.['clickhouse']).toMatchObject({ dependency: 'the alert history store (ClickHouse)', location: `http://127.0.0.1:${clickhousePort}/`, state: 'waiting', setting: 'usage.clickhouse.url / CLICKHOUSE_URL' });
      expect(JSON.stringify(waiting.body)).not.toContain('s3cret');
      expect(alerting).toBeUndefined();

      await relay.listen(clickhousePort);
      await starting;
      expect((await ready(httpPort))?.status).toBe(200);
      expect(await relay.rows(`SELECT name FROM system.tables WHERE database = '${database}' AND name = 'alert_history'`)).toEqual([{ name: 'alert_history' }]);
      const told = lines.filter((l) => /ClickHouse/.test(l.msg));
      expect(told.map((l) => l.level)).toEqual([40, 30]);
      expect(told[0]?.msg).toContain('usage.clickhouse.url / CLICKHOUSE_URL');
      expect(told.some((l) => l.err !== undefined)).toBe(false);
      for (const spy of console) expect(spy).not.toHaveBeenCalled();
    } finally {
      if (!alerting) await relay.listen(clickhousePort).catch(() => undefined);
      await starting.catch(() => undefined);
      await alerting?.close();
      await relay.close();
      for (const spy of console) spy.mockRestore();
    }
  });
});

describe('alerting readiness', () => {
  it('is not ready until its whole start is done (events consumed), even with no store to wait for', async () => {
    const httpPort = await closedPort();
    const config = oneModelConfig({
      log: { level: 'silent' },
      alerting: { http: { host: '127.0.0.1', port: httpPort } },
    });
    // No ClickHouse and no Redis: nothing else would say the start is under way.
    expect(config.usage.clickhouse.url).toBe('');
    const source = new HeldSource();
    let alerting: AlertingHandle | undefined;
    const starting = startAlerting(config, createLogger('alerting', 'silent'), { usageSource: source }).then((handle) => (alerting = handle));
    try {
      await source.starting;
      expect(await readyChecks(httpPort)).toEqual({ status: 503, checks: { starting: 'failing' } });

      source.release();
      await starting;
      expect(await readyChecks(httpPort)).toEqual({ status: 200, checks: {} });
    } finally {
      source.release();
      await starting.catch(() => undefined);
      await alerting?.close();
    }
  });
});
