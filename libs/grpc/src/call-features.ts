import { Metadata } from '@grpc/grpc-js';

/**
 * Call metadata by which a caller says it understands a newer form of a method's messages, so a
 * server sends that form only to callers that do, and a newer server and an older caller (or the
 * reverse) work together during a rolling upgrade.
 */
export const CALL_FEATURES_HEADER = 'or-features';

/** Call metadata that asks for `features`. */
export function withFeatures(features: readonly string[], metadata = new Metadata()): Metadata {
  for (const feature of features) metadata.add(CALL_FEATURES_HEADER, feature);
  return metadata;
}

/** Whether the caller asked for `feature`. */
export function hasFeature(metadata: Metadata, feature: string): boolean {
  return metadata.get(CALL_FEATURES_HEADER).some((value) => value === feature);
}

/** The router's chat calls: `calling` before each provider call, and the decision with the first answer event (`routed`). */
export const ROUTE_CALLS_FEATURE = 'route-calls';
