import { MemoryAccessRepository } from './access.repository';
import { describeAuditLog } from './audit-log.cases.testing';

// The embedded gateway's store: the audit log's cases, as the Redis store runs them (access.repository.int-spec.ts).
describeAuditLog('memory', async () => {
  const repository = new MemoryAccessRepository();
  return {
    repository,
    append: async (entries) => {
      for (const entry of entries) repository.appendAudit(entry);
    },
  };
});
