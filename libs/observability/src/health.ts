/** A dependency a service needs before it is ready (a peer, a store, a broker). */
export interface ReadinessCheck {
  name: string;
  check(): Promise<boolean>;
  /** Facts shown next to the verdict in `/ready` (e.g. consumer lag); never secrets. */
  details?(): Promise<Record<string, unknown>>;
  /**
   * Shown in `/ready` (its verdict and details) without deciding it: the service still serves what
   * it is routed for while this fails (billing's report RPCs while its Kafka consumer is stopped).
   */
  advisory?: boolean;
}

export interface ReadinessReport {
  ready: boolean;
  checks: Record<string, 'ok' | 'failing'>;
  details?: Record<string, Record<string, unknown>>;
}

export async function evaluateReadiness(checks: readonly ReadinessCheck[], timeoutMs = 1_000): Promise<ReadinessReport> {
  const results = await Promise.all(
    checks.map(async (c) => {
      const timeout = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), timeoutMs).unref());
      const ok = await Promise.race([c.check().catch(() => false), timeout]);
      return [c.name, ok ? 'ok' : 'failing', c.advisory === true] as const;
    }),
  );
  const report: ReadinessReport = { ready: results.every(([, r, advisory]) => advisory || r === 'ok'), checks: Object.fromEntries(results.map(([name, r]) => [name, r])) };
  const withDetails = checks.filter((c) => c.details);
  if (withDetails.length > 0) {
    const details = await Promise.all(
      withDetails.map(async (c) => {
        const timeout = new Promise<Record<string, unknown>>((resolve) => setTimeout(() => resolve({ error: 'timed out' }), timeoutMs).unref());
        const value = await Promise.race([(c.details?.() ?? Promise.resolve({})).catch((error: unknown) => ({ error: error instanceof Error ? error.message : String(error) })), timeout]);
        return [c.name, value] as const;
      }),
    );
    report.details = Object.fromEntries(details);
  }
  return report;
}
