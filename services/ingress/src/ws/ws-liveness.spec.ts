import { Liveness, PING_EVERY_BYTES } from './ws-liveness';

/** A socket as a test sets it: the OS queue of its write in flight, and its liveness. */
class SocketState {
  osQueued: number | undefined = 0;
  readonly liveness = new Liveness({ osQueued: () => this.osQueued });
}

/** A socket past its first beat, whose ping then was answered; now a write of `osQueued` bytes waits for the OS. */
function behindBacklog(osQueued: number | undefined): SocketState {
  const socket = new SocketState();
  socket.liveness.beat();
  socket.liveness.pong();
  socket.osQueued = osQueued;
  expect(socket.liveness.beat()).toBe(true);
  return socket;
}

describe('Liveness', () => {
  it('keeps a socket that answers each ping, and gives up an idle one that stops answering', () => {
    const socket = new SocketState();
    expect(socket.liveness.beat()).toBe(true);
    socket.liveness.pong();
    expect(socket.liveness.beat()).toBe(true);
    expect(socket.liveness.beat()).toBe(false);
  });

  it('keeps a socket whose pong is late behind what it reads while the OS takes more of its frames', () => {
    const socket = behindBacklog(0);
    socket.liveness.wrote();
    expect(socket.liveness.beat()).toBe(true);
    socket.liveness.wrote();
    expect(socket.liveness.beat()).toBe(true);
    // Nothing taken, nothing answered.
    expect(socket.liveness.beat()).toBe(false);
  });

  it('keeps a socket whose write in flight the OS takes part by part, before the write completes', () => {
    const socket = behindBacklog(2_500_000);
    socket.osQueued = 2_400_000;
    expect(socket.liveness.beat()).toBe(true);
    socket.osQueued = 900_000;
    expect(socket.liveness.beat()).toBe(true);
  });

  it('gives up a socket whose client takes nothing of what waits for it and answers nothing', () => {
    const socket = behindBacklog(2_500_000);
    expect(socket.liveness.beat()).toBe(false);
  });

  it('asks for a ping after every PING_EVERY_BYTES of data, so a client reading meets one every so much it reads', () => {
    const socket = new SocketState();
    expect(socket.liveness.sent(PING_EVERY_BYTES - 1)).toBe(false);
    expect(socket.liveness.sent(1)).toBe(true);
    expect(socket.liveness.sent(PING_EVERY_BYTES / 2)).toBe(false);
    expect(socket.liveness.sent(PING_EVERY_BYTES)).toBe(true);
    expect(socket.liveness.sent(1)).toBe(false);
  });

  it('judges by completed writes alone where the OS queue cannot be read', () => {
    const socket = behindBacklog(undefined);
    socket.liveness.wrote();
    expect(socket.liveness.beat()).toBe(true);
    expect(socket.liveness.beat()).toBe(false);
  });
});
