/**
 * Datasets: validated on upload by parsing them, stored encrypted as uploaded (gzip stays gzip),
 * parsed again on load. The artifact is written before the row, so a crash can leave at worst an
 * unreferenced blob, never a row pointing at nothing.
 */
import { AiaasError, quoteForError } from '../errors.ts';
import type { EncryptedArtifactStore } from '../security/encrypted-artifact-store.ts';
import type { DatasetRecord, Repositories } from '../storage/index.ts';
import type { Dataset, DatasetDescription } from '../data/dataset.ts';
import { describeDataset } from '../data/dataset.ts';
import { datasetFormats, detectDatasetFormat, loadDatasetBytes, type DatasetFormat, type LoadDatasetBytesOptions } from '../data/load.ts';
import { validateName } from './names.ts';

export interface DatasetSchema {
  featureShape: number[];
  labelShape: number[];
  featureNames?: string[];
  labelName?: string;
  classes?: number;
  /** String labels' class names in index order (sorted): label `setosa` is class classNames.indexOf('setosa'). */
  classNames?: string[];
  /** The label column/key the upload was parsed with, reused on load. */
  label?: string;
}

/** What clients see: no artifact references (they are internal and tenant-encrypted). */
export interface DatasetView {
  id: string;
  name: string;
  format: DatasetFormat;
  rowCount: number;
  bytes: number;
  schema: DatasetSchema;
  createdAt: string;
}

export interface DatasetUpload {
  name: string;
  bytes: Uint8Array;
  format?: DatasetFormat | undefined;
  label?: string | undefined;
  /** The labels file of an IDX pair. */
  labelsBytes?: Uint8Array | undefined;
  fileName?: string | undefined;
  labelsFileName?: string | undefined;
}

export interface DatasetServiceOptions {
  repositories: Repositories;
  artifacts: EncryptedArtifactStore;
  maxDatasetBytes: number;
  /** The tenant's plan limit on stored dataset bytes (src/billing/quotas.ts); throws 429 QUOTA_EXCEEDED. */
  admitDataset?: (tenantId: string, bytes: number) => Promise<void>;
}

export function datasetView(record: DatasetRecord): DatasetView {
  return {
    id: record.id,
    name: record.name,
    format: record.format,
    rowCount: record.rowCount,
    bytes: record.bytes,
    schema: record.schema as DatasetSchema,
    createdAt: record.createdAt,
  };
}

export function parseDatasetFormat(value: unknown): DatasetFormat | undefined {
  if (value === undefined || value === '') return undefined;
  if (typeof value === 'string' && (datasetFormats as readonly string[]).includes(value)) return value as DatasetFormat;
  throw new AiaasError('INVALID_REQUEST', `Unknown dataset format ${quoteForError(value)}; expected one of ${datasetFormats.join(', ')}`, {
    details: { field: 'format' },
  });
}

export class DatasetService {
  readonly #repositories: Repositories;
  readonly #artifacts: EncryptedArtifactStore;
  readonly #maxDatasetBytes: number;
  readonly #admitDataset: ((tenantId: string, bytes: number) => Promise<void>) | undefined;

  constructor(options: DatasetServiceOptions) {
    this.#repositories = options.repositories;
    this.#artifacts = options.artifacts;
    this.#maxDatasetBytes = options.maxDatasetBytes;
    this.#admitDataset = options.admitDataset;
  }

  async upload(tenantId: string, upload: DatasetUpload): Promise<DatasetRecord> {
    const name = validateName('dataset', upload.name);
    const total = upload.bytes.byteLength + (upload.labelsBytes?.byteLength ?? 0);
    if (total > this.#maxDatasetBytes) {
      throw new AiaasError('PAYLOAD_TOO_LARGE', `The dataset is ${total} bytes; the limit is ${this.#maxDatasetBytes}`, {
        details: { limit: this.#maxDatasetBytes },
      });
    }
    if (upload.bytes.byteLength === 0) throw new AiaasError('INVALID_DATA', 'The dataset file is empty');
    await this.#admitDataset?.(tenantId, total);
    if (await this.#repositories.datasets.getByName(tenantId, name)) {
      throw new AiaasError('CONFLICT', `A dataset named '${name}' already exists`, { details: { name } });
    }
    const fileName = upload.fileName ?? name;
    const format = upload.format ?? detectDatasetFormat(upload.bytes, fileName, this.#maxDatasetBytes);
    if (format === undefined) {
      throw new AiaasError('INVALID_DATA', `Cannot tell the format of '${fileName}'; pass format=csv|jsonl|idx`, {
        details: { formats: [...datasetFormats] },
      });
    }
    if (format === 'idx' && upload.labelsBytes === undefined) {
      throw new AiaasError('INVALID_DATA', 'An IDX dataset needs its labels file: upload multipart with parts "file" and "labels"', {
        details: { format },
      });
    }
    const dataset = loadDatasetBytes(format, upload.bytes, this.#parseOptions(upload, fileName));
    const schema = schemaOf(describeDataset(dataset), format === 'idx' ? undefined : upload.label);

    const artifactRef = await this.#artifacts.put(tenantId, upload.bytes);
    const labelsArtifactRef = upload.labelsBytes === undefined ? null : await this.#artifacts.put(tenantId, upload.labelsBytes);
    try {
      return await this.#repositories.datasets.create(tenantId, {
        name,
        format,
        artifactRef,
        labelsArtifactRef,
        schema,
        rowCount: dataset.count,
        bytes: total,
      });
    } catch (error) {
      await this.#release([artifactRef, labelsArtifactRef]);
      throw error;
    }
  }

  async list(tenantId: string, page?: { limit?: number; offset?: number }): Promise<DatasetRecord[]> {
    return this.#repositories.datasets.list(tenantId, page);
  }

  async get(tenantId: string, datasetId: string): Promise<DatasetRecord> {
    const record = await this.#repositories.datasets.get(tenantId, datasetId);
    if (record === undefined) throw notFound(datasetId);
    return record;
  }

  /** Decrypts and parses a stored dataset (the training worker's entry point). */
  async load(tenantId: string, datasetId: string, options: { label?: string } = {}): Promise<Dataset> {
    const record = await this.get(tenantId, datasetId);
    const bytes = await this.#artifacts.get(tenantId, record.artifactRef);
    const labelsBytes = record.labelsArtifactRef === null ? undefined : await this.#artifacts.get(tenantId, record.labelsArtifactRef);
    const label = options.label ?? (record.schema as DatasetSchema).label;
    return loadDatasetBytes(record.format, bytes, this.#parseOptions({ name: record.name, bytes, labelsBytes, label }, record.name));
  }

  async delete(tenantId: string, datasetId: string): Promise<void> {
    const record = await this.#repositories.datasets.delete(tenantId, datasetId);
    if (record === undefined) throw notFound(datasetId);
    await this.#release([record.artifactRef, record.labelsArtifactRef]);
  }

  #parseOptions(upload: DatasetUpload, fileName: string): LoadDatasetBytesOptions {
    const options: LoadDatasetBytesOptions = { fileName, maxDecompressedBytes: this.#maxDatasetBytes };
    if (upload.label !== undefined) options.label = upload.label;
    if (upload.labelsBytes !== undefined) options.labelsBytes = upload.labelsBytes;
    if (upload.labelsFileName !== undefined) options.labelsFileName = upload.labelsFileName;
    return options;
  }

  async #release(refs: readonly (string | null)[]): Promise<void> {
    for (const ref of refs) {
      if (ref === null) continue;
      if (await this.#repositories.datasets.isArtifactReferenced(ref)) continue;
      await this.#artifacts.delete(ref);
    }
  }
}

function notFound(datasetId: string): AiaasError {
  return new AiaasError('DATASET_NOT_FOUND', `Dataset '${datasetId}' not found`, { details: { datasetId } });
}

function schemaOf(description: DatasetDescription, label: string | undefined): DatasetSchema {
  const schema: DatasetSchema = { featureShape: description.featureShape, labelShape: description.labelShape };
  if (description.featureNames !== undefined) schema.featureNames = description.featureNames;
  if (description.labelName !== undefined) schema.labelName = description.labelName;
  if (description.classes !== undefined) schema.classes = description.classes;
  if (description.classNames !== undefined) schema.classNames = description.classNames;
  if (label !== undefined) schema.label = label;
  return schema;
}
