/**
 * A model version's provenance record: where it came from (job, datasets and their content hashes,
 * spec, hyperparameters, parent version), which server made it, and the SHA-256 of every artifact
 * file as stored in plaintext. Signed with the server's Ed25519 key (src/security/signing-key.ts);
 * `aiaas models verify` checks signature and file hashes offline.
 */
import type { ModelVersionRecord } from '../storage/index.ts';
import type { PublishedSigningKey } from '../security/signing-key.ts';

export const provenanceFormat = 'aiaas-provenance-1';

export interface ProvenanceFile {
  /** As downloadable (`model.onnx`, `spec.json`, …; external data as `external/<location>`). */
  name: string;
  sha256: string;
  bytes: number;
}

export interface ProvenanceDataset {
  role: 'train' | 'test' | 'validation';
  id: string;
  name?: string;
  /** SHA-256 of the dataset file's plaintext bytes (and of its labels file, for IDX pairs). */
  sha256: string;
  labelsSha256?: string;
  rows?: number;
}

/** What the creator of a version knows about how it was made. */
export interface ProvenanceInputs {
  datasets?: ProvenanceDataset[];
  /** The training job's spec document, when it differs from spec.json (or there is none). */
  spec?: unknown;
  /** Training settings: epochs, batch size, seed, validation split, … */
  hyperparameters?: unknown;
}

export interface ProvenanceSigner {
  readonly published: PublishedSigningKey;
  signRecord(record: unknown): { text: string; signature: string };
}

export interface ProvenanceRecord {
  format: typeof provenanceFormat;
  model: string;
  version: number;
  versionId: string;
  createdAt: string;
  source: string;
  jobId: string | null;
  parentVersion: { versionId: string; model: string; version: number } | null;
  datasets: ProvenanceDataset[];
  spec: unknown;
  hyperparameters: unknown;
  files: ProvenanceFile[];
  aiaasVersion: string;
  signingKey: { algorithm: 'Ed25519'; keyId: string };
}

export function buildProvenanceRecord(input: {
  model: string;
  version: ModelVersionRecord;
  files: readonly ProvenanceFile[];
  serverVersion: string;
  keyId: string;
  inputs?: ProvenanceInputs;
  spec?: unknown;
  parent?: { versionId: string; model: string; version: number };
}): ProvenanceRecord {
  return {
    format: provenanceFormat,
    model: input.model,
    version: input.version.version,
    versionId: input.version.id,
    createdAt: input.version.createdAt,
    source: input.version.source,
    jobId: input.version.jobId,
    parentVersion: input.parent ?? null,
    datasets: input.inputs?.datasets ?? [],
    spec: input.inputs?.spec ?? input.spec ?? null,
    hyperparameters: input.inputs?.hyperparameters ?? null,
    files: [...input.files].sort((a, b) => (a.name < b.name ? -1 : 1)),
    aiaasVersion: input.serverVersion,
    signingKey: { algorithm: 'Ed25519', keyId: input.keyId },
  };
}
