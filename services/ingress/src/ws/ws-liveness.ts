import type { Duplex } from 'node:stream';

/** Where a heartbeat learns how much of a socket's write in flight the OS has yet to take. */
export interface OutboundProbe {
  /** Bytes of the write in flight the OS has not taken yet, where that can be known. */
  osQueued(): number | undefined;
}

/**
 * Data sent between two pings. A ping waits behind what was sent before it, so pings spread through
 * the data come back at the pace the client reads, whatever the OS buffers between: a client that
 * reads 64 KiB per heartbeat (about 2 KiB/s at the default 30 s) answers one each beat. Each costs
 * 2 bytes, and 6 back.
 */
export const PING_EVERY_BYTES = 64 * 1024;

/** A socket's outbound progress at one heartbeat. */
interface Outbound {
  framesWritten: number;
  osQueued: number | undefined;
}

/**
 * Whether a socket's client is still there, judged once per heartbeat. A ping waits behind what
 * was sent before it: a client working slowly through a long answer answers late, though it is
 * plainly reading. So a socket counts as alive when, since the previous heartbeat, it answered a
 * ping (pings also go out every `PING_EVERY_BYTES` of data, so one is answered every so much read)
 * or the OS took more of the frames sent to it (as it does only when the peer takes data, once its
 * socket buffers are full: this covers a single frame larger than that). Only a socket with neither
 * is given up: a peer that vanished, or one that reads nothing, once its socket buffers took what
 * they can hold.
 */
export class Liveness {
  private answered = true;
  private framesWritten = 0;
  private last: Outbound | undefined;
  private sentSincePing = 0;

  constructor(private readonly probe: OutboundProbe) {}

  /** A pong arrived. */
  pong(): void {
    this.answered = true;
  }

  /** Counts `size` more bytes of data sent; true when a ping should follow them. */
  sent(size: number): boolean {
    this.sentSincePing += size;
    if (this.sentSincePing < PING_EVERY_BYTES) return false;
    this.sentSincePing = 0;
    return true;
  }

  /**
   * A frame of data was handed to the OS (its write callback ran). Pings are not counted: any
   * peer's OS takes those few bytes, one that vanished too.
   */
  wrote(): void {
    this.framesWritten++;
  }

  /** At a heartbeat: whether the socket showed life since the previous one. Starts the next period. */
  beat(): boolean {
    const now: Outbound = { framesWritten: this.framesWritten, osQueued: this.probe.osQueued() };
    const alive = this.answered || (this.last !== undefined && progressed(this.last, now));
    this.answered = false;
    this.last = now;
    return alive;
  }
}

/**
 * Whether the OS took more data between two beats: a frame's write completed, or the write in
 * flight (too large for the OS to take at once) shrank, which shows first for a client reading
 * slowly: Node completes a write only once all of it is taken.
 */
function progressed(before: Outbound, now: Outbound): boolean {
  if (now.framesWritten > before.framesWritten) return true;
  return before.osQueued !== undefined && now.osQueued !== undefined && now.osQueued < before.osQueued;
}

/**
 * What libuv still holds of the socket's write in flight (undefined on a transport without one).
 * Node reports a write done (its callback, `writableLength`) only once the OS took all of it, and
 * it writes whatever queued up meanwhile as one batch: for a client reading slowly, as large as the
 * high-water mark, and longer than a heartbeat to go. This count falls as the OS takes each part.
 * It is an internal of Node's sockets (`_handle.writeQueueSize`), read defensively for that.
 */
export function osQueuedBytes(transport: Duplex): number | undefined {
  const handle = (transport as Duplex & { _handle?: { writeQueueSize?: unknown } | null })._handle;
  return typeof handle?.writeQueueSize === 'number' ? handle.writeQueueSize : undefined;
}
