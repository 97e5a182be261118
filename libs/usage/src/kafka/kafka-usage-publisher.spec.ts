import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka } from 'kafkajs';
import { kafkaUsageSchema, outboxSchema } from '@openrouter/config';
import { createLogger } from '@openrouter/observability';
import { emptyUsageEvent } from '../event/usage-event.factory';
import { KafkaUsagePublisher, nextReplayDelay, REPLAY_MAX_INTERVAL_MS } from './kafka-usage-publisher';
import { CAPPED_IDEMPOTENT_RETRIES } from './kafka-client';
import { LOCK_FILE } from './outbox-lock';

/**
 * A port nothing listens on, ever: a port freed by a closed server may be taken by another
 * process of a busy test run (a broker, a gateway), and a producer that reached it would read a
 * stranger's bytes as Kafka's, after its spec ended.
 */
const REFUSED_PORT = 1;

const REPLAY_FAILED = 'usage outbox replay failed; trying again later';
const KAFKA_BACK = 'Kafka is back; usage outbox replayed';
const UNREACHABLE = 'Kafka is unreachable at start-up; usage events go to the outbox until it is back';

/** A log line as pino writes it (levels: 40 warn, 20 debug). */
interface Line {
  level: number;
  msg: string;
  retryInMs?: number;
}

describe('KafkaUsagePublisher', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'publisher-spec-'));
  });
  afterEach(() => {
    jest.restoreAllMocks();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stays on its outbox while Kafka has not been reached, also when there is nothing to replay', async () => {
    const messages: string[] = [];
    const logger = createLogger('spec', 'debug', { write: (line: string) => void messages.push((JSON.parse(line) as { msg: string }).msg) });
    // Nothing listens there: every connection is refused.
    const kafka = kafkaUsageSchema.parse({ brokers: [`127.0.0.1:${REFUSED_PORT}`], sendTimeoutMs: 500, connectionTimeoutMs: 200, lingerMs: 0 });
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

  it('makes one connection attempt at a time while Kafka is down, backs off, and leaves the outage to its own rate-limited warning', async () => {
    const lines: Line[] = [];
    const logger = createLogger('spec', 'debug', { write: (line: string) => void lines.push(JSON.parse(line) as Line) });
    const producers = jest.spyOn(Kafka.prototype, 'producer');
    const kafka = kafkaUsageSchema.parse({ brokers: [`127.0.0.1:${REFUSED_PORT}`], sendTimeoutMs: 300, connectionTimeoutMs: 100, lingerMs: 0 });
    const publisher = await KafkaUsagePublisher.start({ kafka, outbox: { ...outboxSchema.parse({ replayIntervalMs: 10 }), dir } }, logger);
    try {
      const failures = (): Line[] => lines.filter((l) => l.msg === REPLAY_FAILED);
      const onOutbox = (): number => lines.findIndex((l) => l.msg === UNREACHABLE);
      const kafkaDebug = (): boolean => lines.slice(onOutbox() + 1).some((l) => l.level === 20 && l.msg.startsWith('kafka: '));
      await waitUntil(() => failures().length >= 4 && onOutbox() >= 0 && kafkaDebug());
      // Each failed replay doubles the wait before the next.
      expect(failures().map((l) => l.retryInMs).slice(0, 4)).toEqual([20, 40, 80, 160]);
      // One producer, whose connection attempt every replay waits on (kafkajs retries it).
      expect(producers).toHaveBeenCalledTimes(1);
      // Once events go to the outbox, kafkajs's lines about the outage are at debug: what warns is the replay's own line.
      const warnings = lines.slice(onOutbox() + 1).filter((l) => l.level >= 40);
      expect(warnings.filter((l) => l.msg !== REPLAY_FAILED)).toEqual([]);
    } finally {
      await publisher.close();
    }
  });

  it("does not warn of its idempotent producer's capped retries, which are deliberate", async () => {
    const lines: Line[] = [];
    const logger = createLogger('spec', 'debug', { write: (line: string) => void lines.push(JSON.parse(line) as Line) });
    const kafka = kafkaUsageSchema.parse({ brokers: [`127.0.0.1:${REFUSED_PORT}`], sendTimeoutMs: 300, connectionTimeoutMs: 100, lingerMs: 0 });
    const publisher = await KafkaUsagePublisher.start({ kafka, outbox: { ...outboxSchema.parse({ replayIntervalMs: 10 }), dir } }, logger);
    try {
      // The producer was made (kafkajs says it then), and its connection failed.
      await waitUntil(() => lines.some((l) => l.msg === UNREACHABLE));
      const capped = lines.filter((l) => l.msg === `kafka: ${CAPPED_IDEMPOTENT_RETRIES}`);
      expect(capped.length).toBeGreaterThan(0);
      expect(capped.every((l) => l.level === 20)).toBe(true);
    } finally {
      await publisher.close();
    }
  });

  it('backs replays off from replayIntervalMs to 30 s while they fail', () => {
    let delay = 1_000;
    const delays: number[] = [];
    for (let i = 0; i < 7; i++) delays.push((delay = nextReplayDelay(delay, 1_000)));
    expect(delays).toEqual([2_000, 4_000, 8_000, 16_000, REPLAY_MAX_INTERVAL_MS, REPLAY_MAX_INTERVAL_MS, REPLAY_MAX_INTERVAL_MS]);
    // A configured interval longer than that is kept.
    expect(nextReplayDelay(60_000, 60_000)).toBe(60_000);
  });

  it('leaves its outbox closed when it cannot start, so a retry in the same process opens it', async () => {
    const logger = createLogger('spec', 'silent');
    const outbox = { ...outboxSchema.parse({}), dir };
    const broken = kafkaUsageSchema.parse({ brokers: [`127.0.0.1:${REFUSED_PORT}`], ssl: { ca: join(dir, 'missing-ca.pem') } });
    await expect(KafkaUsagePublisher.start({ kafka: broken, outbox }, logger)).rejects.toThrow(/usage\.kafka\.ssl\.ca: cannot read/);
    expect(readdirSync(dir)).not.toContain(LOCK_FILE);
    const kafka = kafkaUsageSchema.parse({ brokers: broken.brokers, sendTimeoutMs: 200, connectionTimeoutMs: 100 });
    const publisher = await KafkaUsagePublisher.start({ kafka, outbox }, logger);
    await publisher.close();
  });
});

async function waitUntil(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 2_000 && !condition(); i++) await new Promise((done) => setTimeout(done, 10));
  if (!condition()) throw new Error('the condition never held');
}
