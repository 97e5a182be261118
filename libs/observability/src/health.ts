/** A dependency a service needs before it is ready (a peer, a store, a broker). */
export interface ReadinessCheck {
  name: string;
  check(): Promise<boolean>;
}

export interface ReadinessReport {
  ready: boolean;
  checks: Record<string, 'ok' | 'failing'>;
}

export async function evaluateReadiness(checks: readonly ReadinessCheck[], timeoutMs = 1_000): Promise<ReadinessReport> {
  const results = await Promise.all(
    checks.map(async (c) => {
      const timeout = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), timeoutMs).unref());
      const ok = await Promise.race([c.check().catch(() => false), timeout]);
      return [c.name, ok ? 'ok' : 'failing'] as const;
    }),
  );
  return { ready: results.every(([, r]) => r === 'ok'), checks: Object.fromEntries(results) };
}
