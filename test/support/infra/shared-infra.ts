import type { KafkaBroker } from './kafka';
import type { RedisServer } from './redis';

export interface SharedInfra {
  kafka: KafkaBroker;
  redis: RedisServer;
}

/** Environment variables through which the global setup tells the test workers where things run. */
export const INFRA_ENV = {
  kafkaBrokers: 'OPENROUTER_TEST_KAFKA_BROKERS',
  /** The same broker's listener that requires SASL/PLAIN (`KAFKA_SASL_USER`). */
  kafkaSaslBrokers: 'OPENROUTER_TEST_KAFKA_SASL_BROKERS',
  redisUrl: 'OPENROUTER_TEST_REDIS_URL',
} as const;

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this suite through jest's integration or e2e project (its global setup starts the infrastructure)`);
  return value;
}

/** The shared broker's addresses (do not stop it: use `KafkaBroker.start()` for destructive tests). */
export function sharedKafkaBrokers(): string[] {
  return required(INFRA_ENV.kafkaBrokers).split(',');
}

/** The shared broker's SASL/PLAIN listener (user and password: `KAFKA_SASL_USER`). */
export function sharedKafkaSaslBrokers(): string[] {
  return required(INFRA_ENV.kafkaSaslBrokers).split(',');
}

export function sharedRedisUrl(): string {
  return required(INFRA_ENV.redisUrl);
}
