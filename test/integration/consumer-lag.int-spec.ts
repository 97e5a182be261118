import { randomUUID } from 'node:crypto';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { ConsumerLag } from '@openrouter/usage';
import { sharedKafkaBrokers } from '../support/infra/shared-infra';
import { waitFor } from '../support/infra/wait-for';

/** The real client, counting the admin clients made through it and the ones still connected. */
function countingKafka(): { kafka: Pick<Kafka, 'admin'>; made: Admin[]; connected: () => number } {
  const kafka = new Kafka({ clientId: 'consumer-lag-spec', brokers: sharedKafkaBrokers(), logLevel: logLevel.NOTHING });
  const made: Admin[] = [];
  const open = new Set<Admin>();
  return {
    made,
    connected: () => open.size,
    kafka: {
      admin: (config) => {
        const admin = kafka.admin(config);
        admin.on(admin.events.CONNECT, () => open.add(admin));
        admin.on(admin.events.DISCONNECT, () => open.delete(admin));
        made.push(admin);
        return admin;
      },
    },
  };
}

/**
 * A read, once the broker can answer it: a group's coordinator may still be loading the offsets
 * topic on a broker just started (a retriable error, which the lag's readers ride out too).
 */
function readWhenServed(lag: ConsumerLag): Promise<number> {
  return waitFor(
    () =>
      lag.read().catch((error: unknown) => {
        if ((error as { retriable?: unknown }).retriable === true) return undefined;
        throw error;
      }),
    { timeoutMs: 30_000, what: 'the group coordinator to answer' },
  );
}

describe('ConsumerLag (real broker)', () => {
  const topic = `consumer-lag-${randomUUID()}`;
  const group = `consumer-lag-group-${randomUUID()}`;
  let setup: Kafka;
  let admin: Admin;

  beforeAll(async () => {
    setup = new Kafka({ clientId: 'consumer-lag-setup', brokers: sharedKafkaBrokers(), logLevel: logLevel.NOTHING });
    admin = setup.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true });
    const producer = setup.producer();
    await producer.connect();
    await producer.send({ topic, messages: [0, 0, 0, 1, 1].map((partition, i) => ({ partition, value: `m${i}` })) });
    await producer.disconnect();
  });

  afterAll(async () => {
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
  });

  it('counts every record of a group that committed nothing from the start, or none, as the group would start', async () => {
    const { kafka } = countingKafka();
    const fromStart = new ConsumerLag(kafka, topic, group, 'earliest');
    const fromEnd = new ConsumerLag(kafka, topic, group, 'latest');
    try {
      expect(await readWhenServed(fromStart)).toBe(5);
      expect(await fromEnd.read()).toBe(0);
      await admin.setOffsets({ groupId: group, topic, partitions: [{ partition: 0, offset: '2' }] });
      // Partition 0: one record behind; partition 1, uncommitted: both or none.
      expect(await fromStart.read()).toBe(3);
      expect(await fromEnd.read()).toBe(1);
    } finally {
      await fromStart.close();
      await fromEnd.close();
    }
  });

  it('reads that overlap share one admin connection, and close ends it', async () => {
    const counting = countingKafka();
    const lag = new ConsumerLag(counting.kafka, topic, `${group}-shared`, 'earliest');
    expect(await readWhenServed(lag)).toBe(5);
    const reads = await Promise.all([lag.read(), lag.read(), lag.read()]);
    expect(reads).toEqual([5, 5, 5]);
    expect(await lag.read()).toBe(5);
    expect(counting.made).toHaveLength(1);
    expect(counting.connected()).toBe(1);
    await lag.close();
    expect(counting.connected()).toBe(0);
  });

  it('a close while the connection is being opened ends it, and no read opens another after it', async () => {
    const counting = countingKafka();
    const lag = new ConsumerLag(counting.kafka, topic, `${group}-closed`, 'earliest');
    const read = lag.read().then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    );
    await lag.close();
    // The read under way ends first, then the connection.
    expect(await read).toEqual({ value: 5 });
    expect(counting.connected()).toBe(0);
    await expect(lag.read()).rejects.toThrow('is closed');
    expect(counting.made).toHaveLength(1);
  });

  it('a connection that cannot be opened is tried afresh at the next read', async () => {
    let calls = 0;
    const counting = countingKafka();
    const unreachable = new Kafka({ clientId: 'consumer-lag-unreachable', brokers: ['127.0.0.1:1'], connectionTimeout: 200, retry: { retries: 0 }, logLevel: logLevel.NOTHING });
    const lag = new ConsumerLag(
      { admin: (config) => (++calls === 1 ? unreachable.admin(config) : counting.kafka.admin(config)) },
      topic,
      `${group}-retry`,
      'earliest',
    );
    try {
      await expect(lag.read()).rejects.toThrow();
      expect(await lag.read()).toBe(5);
      expect(calls).toBe(2);
    } finally {
      await lag.close();
    }
    expect(counting.connected()).toBe(0);
  });
});
