import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { AiaasError } from '../errors.ts';
import type { Repositories } from '../storage/index.ts';
import { plaintextDirectoryName } from '../storage/plaintext-directory.ts';

export interface TenantPurgeOptions {
  repositories: Pick<Repositories, 'tenantContent'>;
  artifacts: { delete(ref: string): Promise<void> };
  dataDir: string;
  /** Pushes deleted rows out of the database's files (WAL checkpoint); see storage/scrub.ts. */
  scrubDatabase: () => Promise<void>;
}

export interface TenantPurgeReport {
  artifactsDeleted: number;
  /** Refs the tenant's rows shared with another tenant's rows, kept on disk. */
  artifactsKept: number;
}

/**
 * After the tenant's data key is destroyed: removes its artifact files, the rows that point to
 * them, and its plaintext directory. Ciphertext without a key is already unreadable; deleting it
 * too means no file in the data dir holds the tenant's data at all. Artifacts are encrypted per
 * tenant so refs are never shared in practice, but a file another tenant's row points to stays.
 */
export async function purgeTenantContent(tenantId: string, options: TenantPurgeOptions): Promise<TenantPurgeReport> {
  // Tenant ids are generated, but this builds a path that rm -rf's: refuse anything path-like.
  if (!/^[A-Za-z0-9_-]+$/.test(tenantId)) {
    throw new AiaasError('INVALID_REQUEST', 'A tenant id contains characters not allowed in a path.', { details: { tenantId } });
  }
  const content = options.repositories.tenantContent;
  const refs = await content.artifactRefs(tenantId);
  const shared = await content.artifactRefsOfOtherTenants(tenantId);
  // Rows first: a crash in between leaves orphan files (which a later purge or check finds), never rows without files.
  await content.deleteContent(tenantId);
  const report: TenantPurgeReport = { artifactsDeleted: 0, artifactsKept: 0 };
  for (const ref of refs) {
    if (shared.has(ref)) {
      report.artifactsKept += 1;
      continue;
    }
    await options.artifacts.delete(ref);
    report.artifactsDeleted += 1;
  }
  await rm(join(options.dataDir, plaintextDirectoryName, tenantId), { recursive: true, force: true });
  await options.scrubDatabase();
  return report;
}
