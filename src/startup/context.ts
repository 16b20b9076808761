/**
 * The composition root: opens the data directory, database and stores, unlocks the master key,
 * wires the services, and bootstraps an empty store with its first tenant and admin key.
 * Everything a route needs hangs off the returned context; nothing is a module-level singleton.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sql } from 'kysely';
import type { Logger } from 'pino';
import { createServerLogger } from './logger.ts';
import { validateConfig, type AiaasConfig } from '../config.ts';
import { AiaasError } from '../errors.ts';
import { AuditLogger } from '../http/audit.ts';
import { Metrics } from '../http/metrics.ts';
import { JsonParsePool } from '../http/protocols/json-offload.ts';
import { createFormatLoaders } from '../runtimes/formats.ts';
import { validateSavedModelInChild } from '../runtimes/onnx/validate-saved-model.ts';
import { EncryptedArtifactStore } from '../security/encrypted-artifact-store.ts';
import { generateMasterKey, loadMasterKeyRing, MasterKeyRing } from '../security/key-ring.ts';
import { verifyMasterKeyRing } from '../security/key-check.ts';
import { serverSecretFileName } from '../security/server-secrets.ts';
import { loadSigningKey, type SigningKey } from '../security/signing-key.ts';
import { Explainer } from '../explain/explainer.ts';
import { aiaasVersion } from '../version.ts';
import { TenantKeyService } from '../security/tenant-keys.ts';
import { TenantTextCipher } from '../security/tenant-text.ts';
import { ModelCostService } from '../platform/model-cost.ts';
import { ModelManager, type LanguageModelRuntime, type ModelFiles, type ModelKey, type ModelManagerOptions } from '../inference/model-manager.ts';
import { AccessService } from '../platform/access.ts';
import { DatasetService } from '../platform/datasets.ts';
import { ModelRegistry } from '../platform/model-registry.ts';
import { purgeTenantContent } from '../platform/tenant-purge.ts';
import { UsageLedger } from '../billing/ledger.ts';
import { StorageSampler } from '../billing/storage-sampler.ts';
import {
  createRepositories,
  FileSystemArtifactStore,
  KeyStoreDatabase,
  openDatabase,
  scrubDatabaseFiles,
  sealPlaintextTenantText,
  type Database,
  type Repositories,
} from '../storage/index.ts';
import { PlaintextDirectory } from '../storage/plaintext-directory.ts';
import { lockDataDir } from './data-dir-lock.ts';
import { KeyStoreDataKeyStore } from './data-key-store.ts';
import { moveDataKeysToKeyStore } from './key-store-migration.ts';
import { migrateArtifactFormat } from './artifact-format-migration.ts';
import { createJobSystem, type JobSystem } from '../jobs/job-system.ts';
import { ShadowMonitor } from '../quality/shadow-monitor.ts';
import { BackupService } from './backups.ts';
import { PlanStore } from '../billing/plan-store.ts';
import { parsePlansFile, type Plan } from '../billing/plans.ts';
import { QuotaService } from '../billing/quotas.ts';
import { WebhookService } from '../platform/webhooks.ts';
import { InvoiceService } from '../billing/invoices.ts';
import { ledgerUsageTotals } from '../billing/ledger-usage.ts';
import { DriftService } from '../platform/drift.ts';

export interface ServerContext {
  readonly config: AiaasConfig;
  readonly database: Database;
  readonly repositories: Repositories;
  readonly artifactStore: FileSystemArtifactStore;
  readonly keys: TenantKeyService;
  /** The wrapped data keys and key-check values, in their own file (`keyStorePath`). */
  readonly keyStore: KeyStoreDatabase;
  readonly artifacts: EncryptedArtifactStore;
  /** `<dataDir>/plain`: decrypted files of loaded model versions (emptied at start). */
  readonly plaintext: PlaintextDirectory;
  readonly access: AccessService;
  readonly datasets: DatasetService;
  readonly registry: ModelRegistry;
  /** The provenance signing key (its public half is published at GET /api/v1/signing-key). */
  readonly signingKey: SigningKey;
  /** Explanations (POST /v2/models/:name/explain), run through the model manager. */
  readonly explainer: Explainer;
  readonly manager: ModelManager;
  readonly metrics: Metrics;
  readonly audit: AuditLogger;
  /** Every billable unit, buffered and flushed every `usageFlushIntervalMs`; `totals()` is its read API. */
  readonly ledger: UsageLedger;
  /** Samples stored bytes into byte-hours once an hour (started by `startServer`). */
  readonly storageSampler: StorageSampler;
  /** Training jobs: queue, training child processes and routes; started by `startServer` once listening. */
  readonly jobs: JobSystem;
  /** Server-made backups into `backupDir`, and their schedule (started by `startServer`). */
  readonly backups: BackupService;
  /** Billing plans and each tenant's plan history (src/billing). */
  readonly plans: PlanStore;
  /** Hard and soft caps of the tenants' plans, enforced where a cost is incurred. */
  readonly quotas: QuotaService;
  /** Tenants' webhooks and their signed, retried deliveries. */
  readonly webhooks: WebhookService;
  /** Monthly invoices from the plan history and the usage ledger. */
  readonly invoices: InvoiceService;
  /** Model cost cards and their calibration runs. */
  readonly costs: ModelCostService;
  readonly logger: Logger;
  readonly now: () => Date;
  /** `now` in milliseconds since the epoch, without a Date per call when the clock is the real one. */
  readonly nowMs: () => number;
  /** Drift baselines, sampling windows and scores of served versions. */
  readonly drift: DriftService;
  /** The operator tenant, and the admin key generated for it on this start (print once, never log). */
  readonly bootstrap: { readonly tenantId: string; readonly generatedKey?: string };
  /** Shadow traffic: runs the copies and keeps the live/shadow comparisons (process-local). */
  readonly shadows: ShadowMonitor;
  /** Parse threads for large inference bodies; absent when `inferenceParseThreads` is 0. */
  readonly jsonParsing?: JsonParsePool;
  close(): Promise<void>;
}

export interface ServerContextOptions {
  now?: () => Date;
  logger?: Logger;
  /** Replaces the ONNX validation child's script (tests: a child that crashes or hangs). */
  validationScriptPath?: string;
  /** Wraps or replaces how model bytes become a Runtime (tests hold inference to fill a queue). */
  loadRuntime?: ModelManagerOptions['loadRuntime'];
  /** Wraps each loaded language model (tests hold a generation to fill its sequences). */
  wrapLanguageModel?: (runtime: LanguageModelRuntime) => LanguageModelRuntime;
  /** Overrides the config's `usageFlushIntervalMs` (tests: 0 writes only on read and close). */
  usageFlushIntervalMs?: number;
  /** First webhook retry delay (doubling after); tests shorten it. */
  webhookRetryBaseMs?: number;
}

/** The operator's plans file (`--plans`), validated; a bad file stops the start. */
async function readPlansFile(path: string | undefined): Promise<Plan[]> {
  if (path === undefined) return [];
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new AiaasError('CONFIG_INVALID', `cannot read the plans file ${path} (--plans / AIAAS_PLANS): ${(error as Error).message}`);
  }
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch {
    throw new AiaasError('CONFIG_INVALID', `the plans file ${path} (--plans / AIAAS_PLANS) is not valid JSON`);
  }
  return parsePlansFile(document, `plans file ${path}`);
}

export { serverSecretFileName };
export const insecureDevMasterKeyFileName = 'insecure-dev-master-key';

/** Reads a secret file, or creates it with `generate()` (0600) if absent; O_EXCL settles races between starts. */
async function readOrCreateSecretFile(path: string, generate: () => string, logger: Logger): Promise<{ text: string; created: boolean }> {
  try {
    const text = (await readFile(path, 'utf8')).trim();
    const mode = (await stat(path)).mode & 0o777;
    if ((mode & 0o077) !== 0) logger.warn({ path, mode: mode.toString(8) }, 'secret file is readable by other users; chmod 600 it');
    return { text, created: false };
  } catch (error) {
    if ((error as { code?: unknown }).code !== 'ENOENT') throw error;
  }
  const text = generate();
  try {
    await writeFile(path, `${text}\n`, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    if ((error as { code?: unknown }).code === 'EEXIST') return { text: (await readFile(path, 'utf8')).trim(), created: false };
    throw error;
  }
  await chmod(path, 0o600);
  return { text, created: true };
}

/** The master key ring from config; without one, refuse to start unless insecureDev. */
export async function loadMasterKeyRingFor(config: AiaasConfig, logger: Logger): Promise<MasterKeyRing> {
  if (config.masterKey !== undefined || config.masterKeyFile !== undefined) {
    return loadMasterKeyRing({ masterKey: config.masterKey, masterKeyFile: config.masterKeyFile });
  }
  if (!config.insecureDev) {
    try {
      loadMasterKeyRing({});
    } catch (error) {
      const message = AiaasError.isInstance(error) ? error.message : 'No master key configured.';
      throw new AiaasError('CONFIG_INVALID', `${message} For local experiments only, --insecure-dev (AIAAS_INSECURE_DEV=1) keeps a generated key next to the data.`);
    }
  }
  const path = join(config.dataDir, insecureDevMasterKeyFileName);
  const { text, created } = await readOrCreateSecretFile(path, generateMasterKey, logger);
  logger.warn(
    { path, created },
    'INSECURE DEV MODE: the master key is stored next to the data it protects. Never use --insecure-dev for real data; set AIAAS_MASTER_KEY or AIAAS_MASTER_KEY_FILE.',
  );
  return MasterKeyRing.parse(text, `the insecure-dev master key file ${path}`);
}

/** The API-key hashing secret: from config, else generated once into `<dataDir>/server-secret`. */
export async function loadServerSecret(config: AiaasConfig, logger: Logger): Promise<Uint8Array> {
  if (config.serverSecret !== undefined) return Buffer.from(config.serverSecret, 'utf8');
  const { text } = await readOrCreateSecretFile(join(config.dataDir, serverSecretFileName), () => randomBytes(32).toString('base64'), logger);
  if (text.length < 32) throw new AiaasError('CONFIG_INVALID', `${join(config.dataDir, serverSecretFileName)} holds fewer than 32 characters`);
  return Buffer.from(text, 'utf8');
}

/**
 * Migration 0002_tenant_text's second half, which needs keys: seal the tenant text an older server
 * wrote in clear, before anything reads it. Then checkpoint and truncate the WAL, whose frames
 * still hold the plaintext pages (secure_delete has already zeroed the freed space in the file).
 */
async function sealTextOfOlderServers(database: Database, textCipher: TenantTextCipher, logger: Logger): Promise<void> {
  const report = await sealPlaintextTenantText(database.db, textCipher);
  if (report.sealedRows === 0 && report.removedTenants.length === 0) return;
  await sql`PRAGMA wal_checkpoint(TRUNCATE)`.execute(database.db);
  logger.info(report, 'sealed tenant text stored in clear by an older server');
}

/**
 * Refuses to start when a tenant has stored artifacts but the key store has no row for it: the
 * key store is missing or belongs to another data directory (a restore started without
 * `--key-store` pointing at the live one). Going on would mint fresh keys, write new data under
 * them, and make the old data look corrupt rather than shredded.
 */
async function requireKeysForStoredData(repositories: Repositories, keyStore: KeyStoreDatabase, keyStorePath: string): Promise<void> {
  const known = new Set(keyStore.listAll().map((record) => record.tenantId));
  const missing = (await repositories.tenantContent.tenantsWithArtifacts()).filter((tenantId) => !known.has(tenantId));
  if (missing.length === 0) return;
  throw new AiaasError(
    'CONFIG_INVALID',
    `The key store ${keyStorePath} has no data key for ${missing.length} tenant(s) whose encrypted data is in this data directory ` +
      `(first: ${missing[0]}). Point --key-store (AIAAS_KEY_STORE) at this data directory's key store; after a restore, that is the live key store.`,
    { details: { missingTenants: missing.slice(0, 10) } },
  );
}

export async function createServerContext(config: AiaasConfig, options: ServerContextOptions = {}): Promise<ServerContext> {
  validateConfig(config);
  const now = options.now ?? (() => new Date());
  const nowMs = options.now === undefined ? Date.now : () => now().getTime();
  const logger = options.logger ?? createServerLogger(config);
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  // Before anything else touches the directory: a second server would fight this one over it.
  const lock = lockDataDir(config.dataDir, 'serve');
  const closers: (() => Promise<void>)[] = [async () => lock.release()];
  try {
    const ring = await loadMasterKeyRingFor(config, logger);
    const serverSecret = await loadServerSecret(config, logger);
    const database = await openDatabase({ path: config.databasePath, now });
    closers.unshift(() => database.close());
    const keyStore = KeyStoreDatabase.open({ path: config.keyStorePath, now });
    closers.unshift(async () => keyStore.close());
    // Deleted rows are overwritten in the file, not just unlinked.
    await sql`PRAGMA secure_delete = ON`.execute(database.db);
    const dataKeyStore = new KeyStoreDataKeyStore(keyStore);
    const keys = new TenantKeyService({ store: dataKeyStore, ring });
    // Tenant text (descriptions, dataset schemas, job specs and metrics) is sealed under the tenant's key.
    const textCipher = new TenantTextCipher({ keys });
    const repositories = createRepositories(database.db, { now, textCipher });
    await moveDataKeysToKeyStore({ db: database.db, legacyKeys: repositories.tenantKeys, keyStore, logger });
    await requireKeysForStoredData(repositories, keyStore, config.keyStorePath);
    // A wrong master key stops here, before a single data key is unwrapped for use or a new one wrapped.
    await verifyMasterKeyRing(ring, { checks: keyStore, wrappedKeys: dataKeyStore.listAll(), keyStorePath: config.keyStorePath });
    // Signs every new version's provenance record; stored wrapped under the master key, so only
    // after the ring was proven to be this data directory's (a wrong key must wrap nothing).
    const signingKey = await loadSigningKey(ring, config.dataDir);
    await sealTextOfOlderServers(database, textCipher, logger);
    const artifactStore = await FileSystemArtifactStore.open(join(config.dataDir, 'artifacts'), { now });
    const artifacts = new EncryptedArtifactStore({ store: artifactStore, keys });
    const migration = await migrateArtifactFormat({ dataDir: config.dataDir, repositories, artifacts, store: artifactStore, logger });
    if (migration !== undefined && migration.referenced > 0) logger.info({ migration }, 'artifact format migration (single blob to stream segments)');
    // Emptied now: plaintext an earlier run left (a crash, a kill) must not outlive it.
    const plaintext = await PlaintextDirectory.open(config.dataDir);
    const metrics = new Metrics();
    const shadows = new ShadowMonitor({ maxInFlight: config.shadowMaxInFlight, metrics });
    const audit = new AuditLogger(repositories.audit, { now });
    const ledger = new UsageLedger(repositories.usageLedger, {
      now,
      flushIntervalMs: options.usageFlushIntervalMs ?? config.usageFlushIntervalMs,
      onFlushError: (error, pendingBuckets) =>
        logger.error({ err: error, pendingBuckets }, 'could not write the usage ledger; keeping its buckets for the next flush'),
    });
    closers.unshift(async () => {
      // Retried inside close(); past that, the loss is logged and the rest still closes (database, lock).
      await ledger.close().catch((error: unknown) =>
        logger.error({ err: error, pendingRequests: ledger.pendingRequests }, 'usage lost at shutdown: the ledger could not be written'),
      );
    });
    const storageSampler = new StorageSampler({
      store: repositories.usageLedger,
      sizeOf: (ref) => artifactStore.sizeOf(ref),
      now,
      onError: (error) => logger.error({ err: error }, 'could not sample stored bytes for the usage ledger'),
    });
    // Before the database closes: a sample may be reading it.
    closers.unshift(() => storageSampler.close());

    const plans = await PlanStore.open(database.db, { now, filePlans: await readPlansFile(config.plans) });
    const webhooks = new WebhookService({
      db: database.db,
      cipher: textCipher,
      policy: { allowedHosts: config.webhookAllowedHosts, allowPrivate: config.webhookAllowPrivate },
      now,
      ...(options.webhookRetryBaseMs === undefined ? {} : { retryBaseMs: options.webhookRetryBaseMs }),
      onError: (error, what) => logger.error({ err: error }, `webhooks: ${what} failed`),
    });
    closers.unshift(() => webhooks.close());
    const quotas = new QuotaService({
      db: database.db,
      plans,
      now,
      onError: (error, what) => logger.error({ err: error }, `quotas: ${what} failed`),
      onSoftCapCrossed: async (event) => {
        const detail = { period: event.period, plan: event.plan, caps: event.caps, used: { ...event.used }, softCap: { ...event.softCap } };
        await audit.record({ tenantId: event.tenantId, keyId: null, action: 'quota.soft_cap_crossed', resource: `plan:${event.plan}`, outcome: 'success', ip: '', detail });
        await webhooks.notify(event.tenantId, 'quota.soft_cap_crossed', detail);
      },
    });

    // Each format's runtime, placed where the format says: ONNX in worker threads (inference never
    // runs on the main thread; one thread per instance), GGUF in-process on llama.cpp's native threads.
    const invoices = new InvoiceService({ history: (tenantId, range) => plans.history(tenantId, range), usage: ledgerUsageTotals(ledger), now });

    const loaders = createFormatLoaders(
      {
        tensor: { instances: config.inferenceInstances, intraOpThreads: config.inferenceThreads, nice: config.inferenceWorkerNice },
        language: {
          parallel: config.llmParallel,
          maxWaiting: config.llmMaxWaiting,
          threads: config.llmThreads,
          contextLength: config.llmContextLength,
          maxContextLength: config.llmMaxContextLength,
        },
      },
      logger,
    );
    closers.unshift(() => loaders.close());
    const wrapLanguageModel = options.wrapLanguageModel;
    const manager: ModelManager = new ModelManager({
      openFiles: (key) => registry.openModelFiles(key.versionId),
      loaders,
      ...(options.loadRuntime === undefined ? {} : { loadRuntime: options.loadRuntime }),
      ...(wrapLanguageModel === undefined
        ? {}
        : {
            loadLanguageModel: async (model: ModelFiles, key: ModelKey) => {
              const opened = await loaders.open(model.format, model, key);
              if (opened.capability !== 'language') throw new AiaasError('INTERNAL', 'not a language model');
              return wrapLanguageModel(opened.runtime);
            },
          }),
      memoryBudgetBytes: config.modelMemoryBudgetBytes,
      idleUnloadMs: config.modelIdleUnloadMs,
      warmup: config.warmup,
      batchingDefaults: {
        maxBatchSize: config.batchMaxSize,
        maxQueueDelayMicroseconds: config.batchMaxQueueDelayMicroseconds,
        maxQueueSize: config.batchMaxQueueSize,
      },
      metrics,
    });
    closers.unshift(() => manager.close());
    const jsonParsing = config.inferenceParseThreads > 0 ? new JsonParsePool({ threads: config.inferenceParseThreads, nice: config.inferenceWorkerNice }) : undefined;
    if (jsonParsing !== undefined) closers.unshift(() => jsonParsing.close());
    const registry: ModelRegistry = new ModelRegistry({
      repositories,
      artifacts,
      manager,
      plaintext,
      maxModelBytes: config.maxModelBytes,
      maxModelParameters: config.maxModelParameters,
      signer: signingKey,
      serverVersion: aiaasVersion,
      admitNewModel: (tenantId) => quotas.admitNewModel(tenantId),
      now: () => now().getTime(),
      validationLimits: {
        timeoutMs: config.validationTimeoutMs,
        memoryLimitBytes: config.validationMemoryBytes,
        scratchRoot: plaintext.scratchRoot,
        ...(options.validationScriptPath === undefined ? {} : { childScriptPath: options.validationScriptPath }),
      },
      validateSavedModel: (spec, weights) =>
        validateSavedModelInChild(spec, weights, { timeoutMs: config.validationTimeoutMs, memoryLimitBytes: config.validationMemoryBytes }),
    });
    const datasets = new DatasetService({ repositories, artifacts, maxDatasetBytes: config.maxDatasetBytes, admitDataset: (tenantId, bytes) => quotas.admitDataset(tenantId, bytes) });
    const jobs = createJobSystem({
      repositories,
      artifacts,
      registry,
      config,
      logger,
      admitJob: (tenantId, unfinished) => quotas.admitJob(tenantId, unfinished),
      recordTrainingSeconds: (tenantId, seconds) => quotas.record(tenantId, { trainingWorkerSeconds: seconds }),
      recordTrainingUsage: (usage) =>
        ledger.record({
          tenantId: usage.tenantId,
          keyId: usage.keyId ?? '',
          modelName: usage.modelName,
          version: 0,
          protocol: 'training',
          trainingSampleEpochs: usage.sampleEpochs,
          trainingWorkerSeconds: usage.workerSeconds,
        }),
      // Called only once jobs run, after the drift service below exists.
      storeBaseline: (tenantId, versionId, stored) => drift.storeBaseline(tenantId, versionId, stored),
    });
    // Workers stop first: they write checkpoints and versions through everything closed after them.
    closers.unshift(() => jobs.close());
    const access = new AccessService({
      repositories,
      serverSecret,
      keys,
      now,
      nowMs,
      onTenantDeleted: async (tenantId) => {
        // Unloads its versions and removes its plaintext subtree.
        await registry.forgetTenant(tenantId);
        // Its webhook's secret died with its key: nothing more can be signed or sent for it.
        await webhooks.delete(tenantId);
        // Its model names must not outlive it on /metrics.
        metrics.dropTenant(tenantId);
        drift.forgetTenant(tenantId);
        shadows.dropTenant(tenantId);
        // Its data key is gone, so its jobs could never store a checkpoint or a result: stop them now.
        await jobs.cancelTenantJobs(tenantId);
        // Then nothing of it stays on disk: artifact files, the rows naming them, its plaintext directory.
        const purged = await purgeTenantContent(tenantId, {
          repositories,
          artifacts: artifactStore,
          dataDir: config.dataDir,
          scrubDatabase: async () => {
            const { walTruncated } = await scrubDatabaseFiles(database.db);
            if (!walTruncated) logger.warn({ tenantId }, 'tenant deleted but a reader kept the database WAL from being truncated; it holds no keys, only deleted rows');
          },
        });
        logger.info({ tenantId, ...purged }, 'tenant deleted: data key destroyed, artifacts removed');
      },
    });
    const backups = new BackupService({
      config,
      ring: () => keys.ring,
      snapshotDatabase: (destination) => database.backupTo(destination),
      holdArtifactDeletes: () => artifactStore.holdDeletes(),
      audit,
      logger,
      now,
    });
    const costs = new ModelCostService({
      getVersion: (tenantId, modelName, selector) => registry.getVersion(tenantId, modelName, selector),
      openModelFile: async (tenantId, modelName, version) => (await registry.openFile(tenantId, modelName, String(version.version), 'model.onnx')).stream,
      infer: (key, request) => manager.infer(key, request),
      generate: async (key, prompt, maxTokens) => {
        const runtime = await manager.acquireLanguageModel(key);
        const result = await runtime.generate({ prompt: { kind: 'text', text: prompt }, maxTokens, temperature: 0 });
        return { completionTokens: result.usage.completionTokens };
      },
      loadedMemoryBytes: (versionId) => manager.loaded().find((entry) => entry.key.versionId === versionId)?.memoryBytes,
      saveCalibration: (tenantId, versionId, calibration) => repositories.models.setCostCalibration(tenantId, versionId, calibration),
      planOf: (tenantId) => plans.currentPlan(tenantId),
      now,
    });
    // Before the database closes: a running backup is still reading it.
    closers.unshift(() => backups.close());
    const drift = new DriftService({
      reports: repositories.versionReports,
      sampleRate: config.driftSampleRate,
      windowSize: config.driftWindowSize,
      psiThreshold: config.driftPsiThreshold,
      async audit({ tenantId, model, version, detail }) {
        await audit.record({ tenantId, keyId: null, action: 'drift.detected', resource: `model:${model}/versions/${version}`, outcome: 'success', ip: '', detail, model });
      },
      // A tenant's webhook (if it subscribes to drift.detected) hears of each crossing.
      notifier: webhooks,
      metrics,
      logger: logger.child({ component: 'drift' }),
    });
    const bootstrapped = await access.bootstrap(config.bootstrapKey);
    if (bootstrapped.created) logger.info({ tenantId: bootstrapped.tenant.id }, 'empty store: created the operator tenant and its first admin key');


    let closed: Promise<void> | undefined;
    return {
      config,
      database,
      repositories,
      artifactStore,
      keys,
      keyStore,
      artifacts,
      plaintext,
      access,
      datasets,
      registry,
      signingKey,
      explainer: new Explainer({ manager, maxTensorElements: config.maxTensorElements }),
      manager,
      metrics,
      audit,
      ledger,
      storageSampler,
      jobs,
      backups,
      plans,
      quotas,
      webhooks,
      invoices,
      drift,
      costs,
      logger,
      now,
      nowMs,
      bootstrap: {
        tenantId: bootstrapped.tenant.id,
        ...(bootstrapped.generatedKey === undefined ? {} : { generatedKey: bootstrapped.generatedKey }),
      },
      shadows,
      ...(jsonParsing === undefined ? {} : { jsonParsing }),
      close: () => {
        closed ??= (async () => {
          for (const close of closers) await close();
        })();
        return closed;
      },
    };
  } catch (error) {
    for (const close of closers) await close().catch(() => undefined);
    throw error;
  }
}
