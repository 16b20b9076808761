import type { Kysely } from 'kysely';
import type { Schema } from '../schema.ts';
import { inTransaction } from '../support.ts';
import { ApiKeyRepository } from './api-keys.ts';
import { ArtifactReferenceRepository } from './artifact-references.ts';
import { AuditRepository } from './audit.ts';
import { DatasetRepository } from './datasets.ts';
import { JobRepository } from './jobs.ts';
import { ModelRepository } from './models.ts';
import { TenantContentRepository } from './tenant-content.ts';
import { TenantKeyRepository } from './tenant-keys.ts';
import { TenantRepository, type RepositoryOptions } from './tenants.ts';
import { UsageLedgerRepository } from './usage-ledger.ts';
import { VersionReportRepository } from './version-reports.ts';
import { SweepRepository } from './sweeps.ts';
import { EvaluationRepository } from './evaluations.ts';

export interface Repositories {
  readonly tenants: TenantRepository;
  readonly tenantKeys: TenantKeyRepository;
  readonly tenantContent: TenantContentRepository;
  readonly apiKeys: ApiKeyRepository;
  readonly datasets: DatasetRepository;
  readonly models: ModelRepository;
  readonly jobs: JobRepository;
  readonly audit: AuditRepository;
  readonly usageLedger: UsageLedgerRepository;
  readonly artifactReferences: ArtifactReferenceRepository;
  readonly versionReports: VersionReportRepository;
  readonly sweeps: SweepRepository;
  readonly evaluations: EvaluationRepository;
  /**
   * Runs `work` with repositories bound to one transaction, so a caller can
   * combine writes across aggregates (e.g. finish a job and add its version).
   * Work that seals or opens tenant text needs the tenant's data key loaded
   * before: when the key store shares this database's one connection, fetching
   * the key inside the transaction would wait on the transaction itself.
   */
  transaction<T>(work: (repositories: Repositories) => Promise<T>): Promise<T>;
}

export function createRepositories(db: Kysely<Schema>, options: RepositoryOptions = {}): Repositories {
  return {
    tenants: new TenantRepository(db, options),
    tenantKeys: new TenantKeyRepository(db, options),
    tenantContent: new TenantContentRepository(db),
    apiKeys: new ApiKeyRepository(db, options),
    datasets: new DatasetRepository(db, options),
    models: new ModelRepository(db, options),
    jobs: new JobRepository(db, options),
    audit: new AuditRepository(db),
    usageLedger: new UsageLedgerRepository(db),
    artifactReferences: new ArtifactReferenceRepository(db),
    versionReports: new VersionReportRepository(db, options),
    sweeps: new SweepRepository(db, options),
    evaluations: new EvaluationRepository(db, options),
    transaction: (work) => inTransaction(db, (transaction) => work(createRepositories(transaction, options))),
  };
}

export * from './api-keys.ts';
export * from './artifact-references.ts';
export * from './audit.ts';
export * from './datasets.ts';
export * from './jobs.ts';
export * from './models.ts';
export * from './tenant-content.ts';
export * from './tenant-keys.ts';
export * from './tenants.ts';
export * from './usage-ledger.ts';
export * from './version-reports.ts';
export * from './sweeps.ts';
export * from './evaluations.ts';
