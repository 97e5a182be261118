import { parseArgs } from 'node:util';
import { ChdbHttpRelay } from '../test/support/infra/chdb-http-relay';

/**
 * The distributed target's ClickHouse server: the real engine (chDB) behind ClickHouse's HTTP
 * interface, in a process of its own, as a deployment runs a ClickHouse server beside the
 * services. Billing and alerting reach it by `usage.clickhouse.url`; like Kafka and Redis it is
 * infrastructure, not counted in the target's CPU or memory. Run from source (`bench/register.js`).
 */
const { values } = parseArgs({ options: { port: { type: 'string' } } });
const port = Number(values.port);
if (!Number.isInteger(port) || port <= 0) throw new Error('--port is required');
const relay = new ChdbHttpRelay();
void relay.listen(port);
const stop = (): void => {
  void relay.close().then(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
