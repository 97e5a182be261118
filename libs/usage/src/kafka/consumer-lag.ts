import type { Admin, Kafka } from 'kafkajs';

/**
 * Where a group that has committed nothing on a partition would start: at its first record (every
 * record there is behind) or at its end (nothing is).
 */
export type UncommittedStart = 'earliest' | 'latest';

/**
 * A consumer group's lag on a topic: the records not yet committed, summed over the partitions.
 * Reads go through one admin connection, opened at the first read and shared by the reads that
 * overlap it (a readiness probe and a metrics scrape at once open one, not two); `close` ends it
 * after the reads under way, also while it is being opened, and no read opens another after it.
 */
export class ConsumerLag {
  private admin: Promise<Admin> | undefined;
  private closed = false;
  private readonly reading = new Set<Promise<unknown>>();

  constructor(
    private readonly kafka: Pick<Kafka, 'admin'>,
    private readonly topic: string,
    private readonly groupId: string,
    private readonly uncommittedStart: UncommittedStart,
  ) {}

  read(): Promise<number> {
    const read = this.readOnce();
    this.reading.add(read);
    void read.finally(() => this.reading.delete(read)).catch(() => undefined);
    return read;
  }

  /** Ends the connection once the reads under way have settled (a client used after its disconnect would connect again). */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.reading]);
    const admin = this.admin;
    this.admin = undefined;
    await admin?.then((a) => a.disconnect()).catch(() => undefined);
  }

  private async readOnce(): Promise<number> {
    const admin = await this.connected();
    const [ends, committed] = await Promise.all([admin.fetchTopicOffsets(this.topic), admin.fetchOffsets({ groupId: this.groupId, topics: [this.topic] })]);
    const done = new Map((committed[0]?.partitions ?? []).map((p) => [p.partition, BigInt(p.offset)]));
    let lag = 0n;
    for (const p of ends) {
      const at = done.get(p.partition) ?? -1n;
      if (at < 0n && this.uncommittedStart === 'latest') continue;
      const from = at < 0n ? BigInt(p.low) : at;
      const high = BigInt(p.high);
      if (high > from) lag += high - from;
    }
    return Number(lag);
  }

  private connected(): Promise<Admin> {
    if (this.closed) return Promise.reject(new Error(`the lag reader of "${this.groupId}" is closed`));
    if (this.admin === undefined) {
      const admin = this.kafka.admin();
      const opening = admin.connect().then(
        () => admin,
        async (error: unknown) => {
          // The next read tries afresh.
          if (this.admin === opening) this.admin = undefined;
          await admin.disconnect().catch(() => undefined);
          throw error;
        },
      );
      this.admin = opening;
    }
    return this.admin;
  }
}
