/** Stops what the global setup started (the second project's teardown finds nothing left). */
export default async function globalTeardown(): Promise<void> {
  const infra = globalThis.__openrouterTestInfra;
  if (!infra) return;
  globalThis.__openrouterTestInfra = undefined;
  await Promise.all([infra.kafka.destroy(), infra.redis.stop()]);
}
