export interface BenchTargetProcess {
  name: string;
  pid: number;
}

/** Something the load driver calls: the upstream itself, the floor proxy, or a gateway. */
export interface BenchTarget {
  readonly name: TargetName;
  /** OpenAI base URL, e.g. http://127.0.0.1:1234/v1 */
  readonly baseUrl: string;
  readonly authorization: string;
  readonly models: { chat: string; embeddings: string };
  /** The processes whose CPU and memory count as this target's cost (none for the direct call), by name. */
  readonly processes: readonly BenchTargetProcess[];
  /** The usage records the target's store holds, where the harness can read them (the distributed target's ClickHouse server). */
  usageRecords?(): Promise<number>;
  stop(): Promise<void>;
}

export const TARGET_NAMES = ['direct', 'floor', 'embedded', 'distributed'] as const;
export type TargetName = (typeof TARGET_NAMES)[number];
