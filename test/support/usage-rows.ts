import { queryRows } from './infra/clickhouse';
import { waitFor } from './infra/wait-for';
import type { TestGateway } from './test-gateway';

/** The stored usage rows of one request (by the id its client saw in `x-request-id`), once there are any: `columns` of `usage_events`. */
export function usageRowsOf<T>(gw: TestGateway, columns: string, requestId: string): Promise<T[]> {
  return waitFor(
    async () => {
      const found = await queryRows<T>(gw.gateway.billing.usage.store, `SELECT ${columns} FROM {db:Identifier}.usage_events FINAL WHERE request_id = {id:String}`, { id: requestId });
      return found.length > 0 ? found : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 200, what: `the usage row of ${requestId}` },
  );
}

/** The first of them (a request has one usage record). */
export async function usageRowOf<T>(gw: TestGateway, columns: string, requestId: string): Promise<T> {
  const [row] = await usageRowsOf<T>(gw, columns, requestId);
  if (row === undefined) throw new Error(`no usage row of ${requestId}`);
  return row;
}
