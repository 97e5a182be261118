import { Kafka, logLevel } from 'kafkajs';
import { createConnection } from 'node:net';
import { KafkaBroker } from '../support/infra/kafka';
import { sharedKafkaBrokers, sharedRedisUrl } from '../support/infra/shared-infra';

describe('test infrastructure', () => {
  it('gives the run a real Kafka broker that takes and serves messages', async () => {
    const kafka = new Kafka({ clientId: 'infra-spec', brokers: sharedKafkaBrokers(), logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    const topic = `infra-spec-${Date.now()}`;
    await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true });
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    await producer.send({ topic, acks: -1, messages: [{ key: 'k', value: 'v' }] });
    await producer.disconnect();
    const offsets = await admin.fetchTopicOffsets(topic);
    expect(offsets.reduce((n, p) => n + Number(p.high), 0)).toBe(1);
    await admin.deleteTopics({ topics: [topic] });
    await admin.disconnect();
  }, 60_000);

  it('gives the run a real Redis', async () => {
    const url = new URL(sharedRedisUrl());
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = createConnection({ host: url.hostname, port: Number(url.port) }, () => socket.write('*1\r\n$4\r\nPING\r\n'));
      socket.once('data', (d: Buffer) => {
        socket.destroy();
        resolve(d.toString().trim());
      });
      socket.once('error', reject);
    });
    expect(reply).toBe('+PONG');
  });

  it('starts, stops and restarts a private broker that keeps its data', async () => {
    const broker = await KafkaBroker.start();
    try {
      const kafka = new Kafka({ clientId: 'infra-spec', brokers: broker.brokers, logLevel: logLevel.NOTHING });
      const admin = kafka.admin();
      await admin.connect();
      await admin.createTopics({ topics: [{ topic: 'kept' }], waitForLeaders: true });
      await admin.disconnect();
      await broker.stop();
      expect(broker.running).toBe(false);
      await broker.restart();
      const again = kafka.admin();
      await again.connect();
      expect(await again.listTopics()).toContain('kept');
      await again.disconnect();
    } finally {
      await broker.destroy();
    }
  }, 180_000);
});
