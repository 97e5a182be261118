import type { CancelScope } from './cancel-scope';

/** One wire-formatted event; `tokenStep` marks content tokens (same step = same instant). */
export interface PacedFrame {
  readonly text: string;
  readonly tokenStep?: number;
}

export interface Pacing {
  ttftMs: number;
  tokensPerSecond: number;
  /** Destroy the connection after this many token frames. */
  dropAfterTokens?: number;
}

export interface FrameSink {
  write(text: string): void;
  end(text: string): void;
  /** Deliver `text` (possibly empty), then destroy the connection. */
  drop(text: string): void;
}

export type DeliveryResult = 'completed' | 'cancelled' | 'dropped';

/**
 * Writes frames on schedule: token step s is due at start + ttft + s / tokensPerSecond.
 * Frames that are already due are coalesced into one write, so an unpaced stream costs a
 * single `end()`; the waits are cancellable so a disconnect stops generation at once.
 */
export async function deliverFrames(
  frames: readonly PacedFrame[],
  pacing: Pacing,
  cancel: CancelScope,
  sink: FrameSink,
): Promise<DeliveryResult> {
  const dropAt = pacing.dropAfterTokens === undefined ? undefined : dropIndex(frames, pacing.dropAfterTokens);
  const interval = pacing.tokensPerSecond > 0 ? 1000 / pacing.tokensPerSecond : 0;
  const paced = pacing.ttftMs > 0 || interval > 0;
  const start = Date.now();
  let batch = '';
  for (let i = 0; i < frames.length; i++) {
    if (cancel.cancelled) return 'cancelled';
    if (i === dropAt) {
      sink.drop(batch);
      return 'dropped';
    }
    const frame = frames[i];
    if (frame === undefined) continue;
    if (paced && frame.tokenStep !== undefined) {
      const wait = start + pacing.ttftMs + frame.tokenStep * interval - Date.now();
      if (wait >= 1) {
        if (batch.length > 0) sink.write(batch);
        batch = '';
        if (!(await cancel.delay(wait))) return 'cancelled';
      }
    }
    batch += frame.text;
  }
  if (cancel.cancelled) return 'cancelled';
  if (dropAt !== undefined && dropAt >= frames.length) {
    sink.drop(batch);
    return 'dropped';
  }
  sink.end(batch);
  return 'completed';
}

/** Index of the first frame not delivered when dropping after `tokens` token frames. */
function dropIndex(frames: readonly PacedFrame[], tokens: number): number {
  let seen = 0;
  let lastToken = -1;
  for (let i = 0; i < frames.length; i++) {
    if (frames[i]?.tokenStep === undefined) continue;
    if (seen === tokens) return i;
    seen++;
    lastToken = i;
  }
  return lastToken >= 0 ? lastToken + 1 : Math.min(1, frames.length);
}

/** `frames` up to their `afterTokens`-th token frame: where a fault cuts a stream. */
export function framesBefore(frames: readonly PacedFrame[], afterTokens: number): PacedFrame[] {
  const out: PacedFrame[] = [];
  let tokens = 0;
  for (const frame of frames) {
    if (frame.tokenStep !== undefined && tokens++ >= afterTokens) break;
    out.push(frame);
  }
  return out;
}
