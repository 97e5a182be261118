import { createLogger } from '@openrouter/observability';
import { parseConfig, type GatewayConfig } from '@openrouter/config';
import { startAlerting, type AlertingHandle } from '@openrouter/alerting';
import { BrokerRelay, waitingForKafka } from '../support/infra/broker-relay';
import { closedPort } from '../support/infra/chdb-http-relay';
import { readyAnswer as ready } from '../support/infra/ready-probe';
import { sharedKafkaBrokers } from '../support/infra/shared-infra';
import { waitFor } from '../support/infra/wait-for';
import { usageTestConfig } from '../support/usage-fixtures';

/** Alerting alone (no ClickHouse server, no Redis) on the usage bus at `brokers`, its `/ready` on `httpPort`. */
function alertingConfig(brokers: string[], httpPort: number): GatewayConfig {
  const doc = JSON.parse(JSON.stringify(usageTestConfig({ brokers }))) as Record<string, unknown>;
  const usage = doc['usage'] as Record<string, unknown>;
  doc['usage'] = { ...usage, clickhouse: { url: '' }, consumer: { ...(usage['consumer'] as object), retryInitialMs: 50, retryMaxMs: 500 } };
  doc['alerting'] = { http: { host: '127.0.0.1', port: httpPort } };
  doc['access'] = { ...(doc['access'] as object), redis: { url: '' } };
  return parseConfig(doc, {});
}

describe('alerting started before its Kafka broker is reachable', () => {
  it('stays up and not ready naming kafka and its setting while the broker is away, then starts consuming once it answers', async () => {
    const [brokerPort, httpPort] = [await closedPort(), await closedPort()];
    const relay = new BrokerRelay(sharedKafkaBrokers()[0] ?? '');
    let alerting: AlertingHandle | undefined;
    let failure: unknown;
    const starting = startAlerting(alertingConfig([`127.0.0.1:${brokerPort}`], httpPort), createLogger('alerting', 'silent')).then(
      (handle) => (alerting = handle),
      (error: unknown) => (failure = error),
    );
    try {
      // Several tries, each failing as kafkajs gives up on the address: the start goes on waiting (it ended at the first before).
      const waiting = await waitingForKafka('alerting', httpPort, 2, () => failure);
      expect(waiting.status).toBe(503);
      expect(waiting.body.checks['kafka']).toBe('failing');
      expect(waiting.body.details?.['kafka']).toMatchObject({ dependency: 'the usage bus (Kafka)', location: `127.0.0.1:${brokerPort}`, state: 'waiting', setting: 'usage.kafka.brokers / KAFKA_BROKERS' });
      expect(String(waiting.body.details?.['kafka']?.['lastError'])).toContain('ECONNREFUSED');
      expect(alerting).toBeUndefined();

      await relay.listen(brokerPort);
      await starting;
      expect(failure).toBeUndefined();
      const answer = await waitFor(async () => {
        const got = await ready(httpPort);
        return got?.status === 200 ? got : undefined;
      }, { timeoutMs: 60_000, what: 'alerting ready once Kafka answers' });
      // The wait's check was the start's: the consumer's tells whether Kafka answers from then on.
      expect(answer.body.checks['kafka']).toBe('ok');
      expect(answer.body.details?.['kafka']).not.toHaveProperty('setting');
      expect(alerting?.role()).toBe('active');
    } finally {
      await relay.listen(brokerPort).catch(() => undefined);
      await starting;
      await alerting?.close();
      await relay.close();
    }
  });
});
