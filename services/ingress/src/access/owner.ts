/**
 * The owner of what a key stores through the API (batch files and batches, stored responses): its
 * project (`org/project`), so every key of that project sees it and no other key does; or the key
 * itself when it has no project.
 */
export function ownerOf(context: { orgId: string; projectId: string; keyId: string }): string {
  return context.projectId ? `${context.orgId}/${context.projectId}` : `${context.orgId}/key:${context.keyId}`;
}

/** The org and project (or key, for a key in no project) an owner names. */
export function ownerParts(owner: string): { org: string; project: string | null; key: string | null } {
  const slash = owner.indexOf('/');
  const org = owner.slice(0, slash);
  const rest = owner.slice(slash + 1);
  return rest.startsWith('key:') ? { org, project: null, key: rest.slice(4) } : { org, project: rest, key: null };
}
