import { Server, ServerCredentials, type ServiceDefinition, type UntypedServiceImplementation } from '@grpc/grpc-js';
import type { GrpcSecurity } from './grpc-security';

export interface GrpcServiceBinding {
  definition: ServiceDefinition;
  implementation: UntypedServiceImplementation;
}

/** The largest message a gRPC call of the gateway's carries, either way. */
export const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

/** Settings shared by every server and client so streams stay healthy across idle periods. */
export const CHANNEL_OPTIONS = {
  'grpc.keepalive_time_ms': 30_000,
  'grpc.keepalive_timeout_ms': 10_000,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
  'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
  // Failover is the router's own (other deployments, models, backoff): grpc-js's transparent
  // retries would only buffer every message of every call in case of a retry.
  'grpc.enable_retries': 0,
  // No channelz server is exposed, so its per-call bookkeeping would be collected for nobody.
  'grpc.enable_channelz': 0,
  // A peer that restarts is called again within seconds, not after grpc-js's default backoff
  // (up to 120 s of UNAVAILABLE while the peer is already back).
  'grpc.initial_reconnect_backoff_ms': 1_000,
  'grpc.max_reconnect_backoff_ms': 5_000,
} as const;

/** Default of `grpc.shutdownGraceMs`: just under compose's stop_grace_period of 20 s. */
export const DEFAULT_SHUTDOWN_GRACE_MS = 15_000;

/** A started gRPC server; `close` drains in-flight calls up to a grace period, then cuts them. */
export class GrpcServerHandle {
  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  /**
   * `security`: the service token check and TLS (`grpc.auth`, `grpc.tls`); without it, plaintext
   * and no token. `warn` is told once when the listener takes calls from anyone who reaches it
   * (no token, no client certificates, not on loopback: `GrpcSecurity.exposure`).
   */
  static async start(host: string, port: number, services: GrpcServiceBinding[], security?: GrpcSecurity, warn?: (message: string) => void): Promise<GrpcServerHandle> {
    const credentials = security?.serverCredentials() ?? ServerCredentials.createInsecure();
    const server = new Server({ ...CHANNEL_OPTIONS, ...security?.serverOptions() });
    for (const s of services) server.addService(s.definition, s.implementation);
    const bound = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`${host}:${port}`, credentials, (error, actual) => (error ? reject(error) : resolve(actual))),
    );
    const exposed = security?.exposure(host);
    if (exposed && warn) warn(exposed);
    return new GrpcServerHandle(server, bound);
  }

  async close(graceMs = DEFAULT_SHUTDOWN_GRACE_MS): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, graceMs);
      timer.unref();
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
