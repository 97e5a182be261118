import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kafkaUsageSchema, outboxSchema } from '@openrouter/config';
import { createLogger } from '@openrouter/observability';
import { emptyUsageEvent } from '../event/usage-event.factory';
import { KafkaUsagePublisher } from './kafka-usage-publisher';

const REPLAY_FAILED = 'usage outbox replay failed; trying again later';
const KAFKA_BACK = 'Kafka is back; usage outbox replayed';

describe('KafkaUsagePublisher', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'publisher-spec-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('stays on its outbox while Kafka has not been reached, also when there is nothing to replay', async () => {
    const messages: string[] = [];
    const logger = createLogger('spec', 'debug', { write: (line: string) => void messages.push((JSON.parse(line) as { msg: string }).msg) });
    // Nothing listens there: every connection is refused.
    const kafka = kafkaUsageSchema.parse({ brokers: [`127.0.0.1:${await closedPort()}`], sendTimeoutMs: 500, connectionTimeoutMs: 200, lingerMs: 0 });
    const publisher = await KafkaUsagePublisher.start({ kafka, outbox: { ...outboxSchema.parse({ replayIntervalMs: 10 }), dir } }, logger);
    try {
      expect(publisher.status().mode).toBe('outbox');
      // A replay round has ended: failed (Kafka still unreachable), or taken for Kafka being back.
      await waitUntil(() => messages.includes(REPLAY_FAILED) || messages.includes(KAFKA_BACK));
      expect(messages).not.toContain(KAFKA_BACK);
      expect(publisher.status().mode).toBe('outbox');
      // What is published meanwhile waits on disk.
      const event = emptyUsageEvent('e-1', Date.now());
      event.tenant = { ...event.tenant!, orgId: 'acme' };
      await publisher.publish(event);
      expect(publisher.status()).toMatchObject({ mode: 'outbox', pending: 1 });
    } finally {
      await publisher.close();
    }
  });
});

function closedPort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (address && typeof address === 'object' ? done(address.port) : fail(new Error('no port'))));
    });
  });
}

async function waitUntil(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 2_000 && !condition(); i++) await new Promise((done) => setTimeout(done, 10));
  if (!condition()) throw new Error('the condition never held');
}
