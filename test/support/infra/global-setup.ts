import { execFileSync } from 'node:child_process';
import { KafkaBroker } from './kafka';
import { RedisServer } from './redis';
import { INFRA_ENV, type SharedInfra } from './shared-infra';

declare global {
  var __openrouterTestInfra: SharedInfra | undefined;
}

/**
 * One Kafka broker and one Redis for every integration and end-to-end suite of a jest run, their
 * addresses handed to the test workers through environment variables. A component that cannot
 * start fails the run.
 */
export default async function globalSetup(): Promise<void> {
  if (globalThis.__openrouterTestInfra || process.env[INFRA_ENV.kafkaBrokers]) return;
  const started = Date.now();
  checkChdb();
  const [kafka, redis] = await Promise.allSettled([KafkaBroker.start(), RedisServer.start()]);
  if (kafka.status === 'rejected' || redis.status === 'rejected') {
    if (kafka.status === 'fulfilled') await kafka.value.destroy();
    if (redis.status === 'fulfilled') await redis.value.stop();
    const reasons = [kafka, redis].flatMap((r) => (r.status === 'rejected' ? [String(r.reason instanceof Error ? r.reason.message : r.reason)] : []));
    throw new Error(`test infrastructure could not start:\n${reasons.join('\n')}`);
  }
  globalThis.__openrouterTestInfra = { kafka: kafka.value, redis: redis.value };
  process.env[INFRA_ENV.kafkaBrokers] = kafka.value.brokers.join(',');
  process.env[INFRA_ENV.kafkaSaslBrokers] = kafka.value.saslBrokers.join(',');
  process.env[INFRA_ENV.redisUrl] = redis.value.url;
  process.stderr.write(`\ntest infrastructure: Kafka ${kafka.value.brokers.join(',')}, Redis ${redis.value.url} (${Date.now() - started} ms)\n`);
}

/** chDB runs inside the test workers; prove here, in a child process, that it loads. */
function checkChdb(): void {
  try {
    execFileSync(process.execPath, ['-e', "const r = require('chdb').query('SELECT 1', 'CSV'); if (String(r).trim() !== '1') process.exit(1);"], { stdio: 'pipe', timeout: 60_000 });
  } catch (error) {
    throw new Error(`chDB (npm chdb) cannot run on this machine: ${error instanceof Error ? error.message : String(error)}`);
  }
}
