import { createLogger } from '@openrouter/observability';
import { closedPort } from '../support/infra/chdb-http-relay';
import { BrokerRelay, waitingForKafka } from '../support/infra/broker-relay';
import { KAFKA_SASL_USER } from '../support/infra/kafka';
import { readyAnswer as ready } from '../support/infra/ready-probe';
import { sharedKafkaBrokers, sharedKafkaSaslBrokers } from '../support/infra/shared-infra';
import { waitFor } from '../support/infra/wait-for';
import { usageTestConfig } from '../support/usage-fixtures';
import { startBilling, type BillingHandle } from '@openrouter/billing';

/** Billing's configuration for the suite: its `/ready` on `httpPort`, the usage bus on `brokers`. */
function billingConfig(brokers: string[], httpPort: number): ReturnType<typeof usageTestConfig> {
  const base = usageTestConfig({ brokers });
  return { ...base, billing: { ...base.billing, http: { ...base.billing.http, host: '127.0.0.1', port: httpPort }, grpc: { ...base.billing.grpc, port: 0 }, rollup: { ...base.billing.rollup, reconcileIntervalMs: 0 } } };
}

describe('billing started before its Kafka broker is reachable', () => {
  it('stays up and not ready naming kafka while the broker is away, then starts consuming once it answers', async () => {
    const [brokerPort, httpPort] = [await closedPort(), await closedPort()];
    const shared = sharedKafkaBrokers()[0] ?? '';
    const config = billingConfig([`127.0.0.1:${brokerPort}`], httpPort);
    const relay = new BrokerRelay(shared);
    let billing: BillingHandle | undefined;
    let failure: unknown;
    const starting = startBilling(config, createLogger('billing', 'silent')).then(
      (handle) => (billing = handle),
      (error: unknown) => (failure = error),
    );
    try {
      // Several tries, each failing as kafkajs gives up on the address: the start goes on waiting.
      const waiting = await waitingForKafka('billing', httpPort, 2, () => failure);
      expect(waiting.status).toBe(503);
      expect(waiting.body.checks['kafka']).toBe('failing');
      expect(waiting.body.details?.['kafka']).toMatchObject({ dependency: 'the usage bus (Kafka)', location: `127.0.0.1:${brokerPort}`, state: 'waiting', setting: 'usage.kafka.brokers / KAFKA_BROKERS' });
      expect(String(waiting.body.details?.['kafka']?.['lastError'])).toContain('ECONNREFUSED');
      expect(billing).toBeUndefined();

      await relay.listen(brokerPort);
      await starting;
      expect(failure).toBeUndefined();
      const answer = await waitFor(async () => {
        const got = await ready(httpPort);
        return got?.status === 200 ? got : undefined;
      }, { what: 'billing ready once Kafka answers' });
      // Kafka's check was the start's: the consumer's tells whether Kafka answers from then on.
      expect(answer.body.checks).toEqual({ clickhouse: 'ok', 'usage-consumer': 'ok' });
    } finally {
      await relay.listen(brokerPort).catch(() => undefined);
      await starting;
      await billing?.close();
      await relay.close();
    }
  });

  it('stops waiting, and the start with it, when told to stop meanwhile', async () => {
    const [brokerPort, httpPort] = [await closedPort(), await closedPort()];
    const stopping = new AbortController();
    let failure: unknown;
    const starting = startBilling(billingConfig([`127.0.0.1:${brokerPort}`], httpPort), createLogger('billing', 'silent'), { stopping: stopping.signal }).then(
      (handle) => handle.close(),
      (error: unknown) => void (failure = error),
    );
    // The store ready (chDB migrated), so it is the wait for Kafka that the stop ends.
    await waitFor(async () => {
      if (failure !== undefined) throw failure;
      const details = (await ready(httpPort))?.body.details;
      return details?.['clickhouse']?.['state'] === 'ready' && Number(details['kafka']?.['tries']) >= 1;
    }, { what: 'billing waiting for Kafka alone' });
    stopping.abort();
    await starting;
    expect(String(failure)).toContain('stopped while waiting for the usage bus (Kafka)');
    // Its health endpoints are closed with it.
    expect(await ready(httpPort)).toBeUndefined();
    // The try under way when it stopped is not waited for: kafkajs goes on retrying it (a stopping
    // process exits meanwhile). Here it is let through, so that it ends with the test.
    const relay = new BrokerRelay(sharedKafkaBrokers()[0] ?? '');
    try {
      await relay.listen(brokerPort);
      await waitFor(() => relay.accepted > 0 && relay.idle, { what: 'the abandoned try through and disconnected' });
    } finally {
      await relay.close();
    }
  });

  it('fails the start at once, naming Kafka and the setting, when the broker refuses its credential', async () => {
    const base = billingConfig(sharedKafkaSaslBrokers(), await closedPort());
    const config = { ...base, usage: { ...base.usage, kafka: { ...base.usage.kafka, sasl: { ...KAFKA_SASL_USER, password: 'not-the-password' } } } };
    await expect(startBilling(config, createLogger('billing', 'silent'))).rejects.toThrow(/the usage bus \(Kafka\) at .* \(usage\.kafka\.brokers \/ KAFKA_BROKERS\) cannot be used, and this does not pass by itself: .*(SASL|[Aa]uthentication)/);
  });
});
