import { randomBytes } from 'node:crypto';
import { clickhouseSchema } from '@openrouter/config';
import { createClickHouse, type ClickHouseTarget } from '@openrouter/usage';

/** A unique database name, so suites sharing chDB's in-process engine never see each other's rows. */
export function testDatabase(prefix = 'test'): string {
  return `${prefix}_${randomBytes(6).toString('hex')}`;
}

/** The ClickHouse engine through chDB (in this process), on its throw-away data directory. */
export function embeddedClickHouse(database = testDatabase()): ClickHouseTarget {
  return createClickHouse(clickhouseSchema.parse({ embedded: { path: ':memory:' }, database }), '.');
}

export async function queryRows<T>(target: ClickHouseTarget, query: string, params: Record<string, unknown> = {}): Promise<T[]> {
  const result = await target.client.query({ query, query_params: { db: target.database, ...params }, format: 'JSONEachRow' });
  return result.json<T>();
}
