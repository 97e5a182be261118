import { TAG_NAME } from '@openrouter/config';
export type DimensionName =
  | 'org'
  | 'project'
  | 'team'
  | 'app'
  | 'cost_center'
  | 'key'
  | 'model'
  | 'requested_model'
  | 'provider'
  | 'deployment'
  | 'operation'
  | 'status'
  | 'experiment'
  | 'experiment_arm'
  | 'day'
  | 'month';

/** A dimension reports group or filter by, and how it reads from the raw events and the daily rollup. */
interface Dimension {
  raw: string;
  /** Undefined when the daily rollup does not keep it (reports then read the raw events). */
  rollup?: string;
}

export const DIMENSIONS: Readonly<Record<DimensionName, Dimension>> = {
  org: { raw: 'org_id', rollup: 'org_id' },
  project: { raw: 'project_id', rollup: 'project_id' },
  team: { raw: 'team_id', rollup: 'team_id' },
  app: { raw: 'app_id', rollup: 'app_id' },
  cost_center: { raw: 'cost_center', rollup: 'cost_center' },
  key: { raw: 'key_id', rollup: 'key_id' },
  model: { raw: 'served_model', rollup: 'served_model' },
  // What the client asked for (an alias, `auto`, an experiment's target), beside the model that served it.
  requested_model: { raw: 'requested_model' },
  provider: { raw: 'provider', rollup: 'provider' },
  deployment: { raw: 'deployment' },
  operation: { raw: 'operation' },
  status: { raw: 'status' },
  experiment: { raw: 'experiment' },
  experiment_arm: { raw: 'experiment_arm' },
  day: { raw: 'toString(toDate(received_at))', rollup: 'toString(day)' },
  month: { raw: "formatDateTime(received_at, '%Y-%m')", rollup: "formatDateTime(day, '%Y-%m')" },
};

/** Filter fields of the gRPC request → dimension. */
export const FILTERS = {
  orgId: 'org',
  projectId: 'project',
  teamId: 'team',
  appId: 'app',
  costCenter: 'cost_center',
  keyId: 'key',
  model: 'model',
  provider: 'provider',
  operation: 'operation',
  status: 'status',
  experiment: 'experiment',
} as const satisfies Record<string, DimensionName>;

const TAG = /^tag:(.*)$/s;

/** A group-by name: a dimension, or `tag:<name>` (a tag's value; raw events only). */
export type GroupBy = { kind: 'dimension'; name: DimensionName } | { kind: 'tag'; name: string; tag: string };

export function parseGroupBy(name: string): GroupBy | undefined {
  if (isDimension(name)) return { kind: 'dimension', name };
  const tag = TAG.exec(name)?.[1];
  return tag !== undefined && TAG_NAME.test(tag) ? { kind: 'tag', name, tag } : undefined;
}

/** Own keys only: `in` would also accept `constructor`, `toString` and the rest of Object.prototype. */
export function isDimension(name: string): name is DimensionName {
  return Object.hasOwn(DIMENSIONS, name);
}

export const GROUP_BY_NAMES = [...Object.keys(DIMENSIONS), 'tag:<name>'];
