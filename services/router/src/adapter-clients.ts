import type { ChannelOptions, Interceptor } from '@grpc/grpc-js';
import { adapterv1 } from '@openrouter/contracts';
import type { GrpcSecurity } from '@openrouter/grpc';

/** One gRPC client per adapter address; a provider without its own address uses `default`. */
export class AdapterClients {
  private readonly byAddress = new Map<string, adapterv1.AdapterServiceClient>();

  constructor(
    private readonly addresses: Readonly<Record<string, string>>,
    /** The service token and TLS of the calls (`grpc.auth`, `grpc.tls`). */
    private readonly security: GrpcSecurity,
    /** Extra client options, e.g. the tracing interceptor. */
    private readonly clientOptions: ChannelOptions & { interceptors?: Interceptor[] } = {},
  ) {}

  for(provider: string): adapterv1.AdapterServiceClient {
    const address = this.addresses[provider] ?? this.addresses['default'];
    if (!address) throw new Error(`no adapter address for provider "${provider}" and no default`);
    let client = this.byAddress.get(address);
    if (!client) {
      client = this.security.client(adapterv1.AdapterServiceClient, address, this.clientOptions);
      this.byAddress.set(address, client);
    }
    return client;
  }

  /** Ready when at least one configured adapter accepts a connection within the deadline. */
  async anyReachable(timeoutMs: number): Promise<boolean> {
    const providers = Object.keys(this.addresses);
    const results = await Promise.all(
      providers.map((provider) => new Promise<boolean>((resolve) => this.for(provider).waitForReady(Date.now() + timeoutMs, (error) => resolve(!error)))),
    );
    return results.some(Boolean);
  }

  close(): void {
    for (const client of this.byAddress.values()) client.close();
    this.byAddress.clear();
  }
}
