/**
 * Runs every step of a shutdown in order, each whatever the ones before it did: a part that fails
 * to close must not keep the rest from closing (usage handed on and flushed, ports released).
 * The failures are thrown at the end: the one, or an AggregateError of them all.
 */
export async function closeEach(what: string, steps: ReadonlyArray<() => unknown>): Promise<void> {
  const failures: unknown[] = [];
  for (const step of steps) {
    try {
      await step();
    } catch (error) {
      failures.push(error);
    }
  }
  if (failures.length > 1) throw new AggregateError(failures, `${failures.length} parts of ${what} failed to close`);
  if (failures.length === 1) throw failures[0];
}
