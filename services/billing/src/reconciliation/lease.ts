// The lease moved to @openrouter/service-runtime, which alerting shares; billing's other modules keep this path.
export { leaseTtlFor, RedisLease, SOLE_LEASE } from '@openrouter/service-runtime';
export type { Lease } from '@openrouter/service-runtime';
