import { Counter, Gauge, type Registry } from 'prom-client';
import { label } from './metrics-registry';

/**
 * The adapter's credential files (a provider's `apiKeyFile` and the like): whether each could be
 * read at its last check, and how often a new secret was taken from it or a read failed. Labels
 * name the provider and the setting (`apiKeyFile`), never the path or what the file holds.
 */
export class CredentialFileMetrics {
  private readonly ok: Gauge<'provider' | 'file'>;
  private readonly reloads: Counter<'provider' | 'file' | 'outcome'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.ok = new Gauge({
      name: 'openrouter_provider_credential_file_ok',
      help: 'Whether a provider credential file could be read at its last check (1) or not (0: unreadable or empty; calls keep the last secret read).',
      labelNames: ['provider', 'file'],
      registers,
    });
    this.reloads = new Counter({
      name: 'openrouter_provider_credential_file_reloads_total',
      help: 'Reads of a provider credential file after start-up, by outcome: changed (a new secret taken for the next calls) or failed (unreadable or empty).',
      labelNames: ['provider', 'file', 'outcome'],
      registers,
    });
  }

  /** The file was read at start-up: 1, and both outcomes at 0 so that a rate works from the first failure. */
  opened(provider: string, file: string): void {
    const labels = { provider: label(provider), file: label(file) };
    this.ok.set(labels, 1);
    this.reloads.inc({ ...labels, outcome: 'changed' }, 0);
    this.reloads.inc({ ...labels, outcome: 'failed' }, 0);
  }

  changed(provider: string, file: string): void {
    this.reloads.inc({ provider: label(provider), file: label(file), outcome: 'changed' });
  }

  failed(provider: string, file: string): void {
    const labels = { provider: label(provider), file: label(file) };
    this.reloads.inc({ ...labels, outcome: 'failed' });
    this.ok.set(labels, 0);
  }

  readable(provider: string, file: string): void {
    this.ok.set({ provider: label(provider), file: label(file) }, 1);
  }
}
