/**
 * The model registry: models, numbered versions and aliases over the repositories, with every
 * model file validated in a child process before it is stored (encrypted) and the one place that
 * turns `name` + `version|alias` into what the inference routes and the model manager need.
 */
import { dirname, join, resolve as resolvePath, sep } from 'node:path';
import { mkdir } from 'node:fs/promises';
import { defaultMaxModelParameters } from '../config.ts';
import { checkSavedModelHeaders } from '../engine/parameters.ts';
import { AiaasError } from '../errors.ts';
import type { ResolvedModel } from '../inference/types.ts';
import type { ModelSignature } from '../runtimes/runtime.ts';
import { sourceFromBytes, type ModelSource, type ValidatedModel, type ValidationLimits } from '../runtimes/format.ts';
import { formatNamed, formatOfFile } from '../runtimes/formats.ts';
import type { EncryptedArtifactStore } from '../security/encrypted-artifact-store.ts';
import type { ModelFiles, ModelManager } from '../inference/model-manager.ts';
import type { BatchingOptions } from '../inference/types.ts';
import type { AliasRecord, AliasRouting, ModelFormat, ModelRecord, ModelVersionRecord, ModelVersionSource, Repositories } from '../storage/index.ts';
import { latestSelector, validateAliasName } from '../storage/index.ts';
import type { PlaintextDirectory } from '../storage/plaintext-directory.ts';
import type { GgufSignature } from '../runtimes/gguf/gguf-signature.ts';
import { externalDataFiles, refuseExternalData, skeletonOf } from './external-data.ts';
import type { QuantizationReport } from './model-quantize.ts';
import { withModelNames } from './model-names.ts';
import { validateName } from './names.ts';
import { readTar } from './tar.ts';
import { chooseTarget, routeKeyPoint } from '../quality/traffic-split.ts';
import type { Readable } from 'node:stream';
import { createReadStream } from 'node:fs';
import { createHash } from 'node:crypto';
import { inputGradientSuffix } from '../explain/explainer.ts';
import { exportInputGradientModel } from '../engine/input-gradients.ts';
import { modelFromBytes } from '../engine/saved-model.ts';
import { encodeOnnxModel } from '../onnx/model.ts';
import { parseOutputPolicy, type OutputPolicy } from '../inference/output-policy.ts';
import { buildProvenanceRecord, type ProvenanceFile, type ProvenanceInputs, type ProvenanceSigner } from './provenance.ts';

export const modelFileNames = ['model.onnx', 'spec.json', 'model.safetensors', 'metrics.json'] as const;
export type ModelFileName = (typeof modelFileNames)[number];

/** Where a version's external-data files sit among its `savedModelRefs`: `external/<location>`. */
const externalRefPrefix = 'external/';

export interface SavedModelUpload {
  onnx: Uint8Array;
  spec?: Uint8Array | undefined;
  weights?: Uint8Array | undefined;
  metrics?: Uint8Array | undefined;
  /**
   * The archive's other files, keyed by their path relative to model.onnx's folder: candidates for
   * the model's external data. Undefined for a bare .onnx upload, which may not use external data.
   */
  archiveFiles?: ReadonlyMap<string, Uint8Array> | undefined;
}

export interface AddVersionOptions {
  source: ModelVersionSource;
  /** Create the model (default settings) when it does not exist yet, as a finished training job does. */
  createModel?: boolean;
  jobId?: string;
  /** Overrides metrics.json (a job passes its final metrics). */
  metrics?: Record<string, unknown>;
  /**
   * The version this one derives from (a quantized copy, a fine-tune), in any model of the tenant:
   * recorded in the provenance, and a non-exportable parent makes the new version non-exportable.
   */
  parentVersionId?: string;
  /** What the provenance record says about how the version was made (datasets, spec, hyperparameters). */
  provenance?: ProvenanceInputs;
}

export interface ModelView {
  name: string;
  description: string;
  batching: Partial<BatchingOptions> | null;
  /** False: no key of the tenant may download the weights; only the operator can (audited). */
  exportable: boolean;
  /** What callers see of the outputs on every protocol; null: everything. */
  outputPolicy: OutputPolicy | null;
  versions: number[];
  aliases: { name: string; version: number }[];
  createdAt: string;
}

/** A version as clients see it: artifact references stay internal; `files` names what can be downloaded. */
export interface VersionView {
  id: string;
  model: string;
  version: number;
  source: ModelVersionSource;
  format: ModelFormat;
  /** ONNX: inputs and outputs. GGUF: the file's metadata (architecture, context length, parameters, quantization). */
  signature: ModelSignature | StoredGgufSignature;
  /** GGUF only: the file's chat template, null when it has none. */
  chatTemplate?: string | null;
  /**
   * Resident bytes one instance takes, measured when the version was validated (the child's RSS
   * after opening it and one run on zero inputs, minus before); null until measured, and for
   * formats that do not measure (GGUF: the runtime counts weights and KV cache when loaded).
   */
  measuredMemoryBytes: number | null;
  metrics: unknown;
  jobId: string | null;
  /** Downloadable files: model.onnx and the saved-model files, or model.gguf. */
  files: string[];
  aliases: string[];
  createdAt: string;
  /** False when its model is not exportable or it derives from a version that is not. */
  exportable: boolean;
  parentVersionId: string | null;
  /** Whether a signed provenance record exists (`GET …/versions/:v/provenance`). */
  provenance: boolean;
  /** For a version made by a quantize job, its report (also `GET …/versions/:v/quantization`); else null. */
  quantization: QuantizationReport | null;
}

/** A GGUF version's signature as stored: the header's description plus the plaintext file's hash. */
export interface StoredGgufSignature extends GgufSignature {
  sha256: string;
}

/** A language-model version as the OpenAI and Ollama routes need it. */
export interface LanguageModelVersion {
  tenantId: string;
  name: string;
  version: number;
  versionId: string;
  createdAt: string;
  /** Aliases pointing at this version. */
  aliases: string[];
  signature: StoredGgufSignature;
  chatTemplate: string | null;
}

export interface ModelRegistryOptions {
  repositories: Repositories;
  artifacts: EncryptedArtifactStore;
  manager: ModelManager;
  /** Where a loading version's decrypted files are written (and removed when it unloads). */
  plaintext: PlaintextDirectory;
  /** Limits of the child process each format validates its files in (`runtimes/format.ts`). */
  validationLimits: ValidationLimits;
  /**
   * Builds the network of an uploaded saved model from spec.json + model.safetensors in isolation
   * (a child process); called only after the headers passed `checkSavedModelHeaders`.
   */
  validateSavedModel: (spec: Uint8Array, weights: Uint8Array) => Promise<unknown>;
  maxModelBytes: number;
  /** Most parameters an uploaded spec.json may describe (`maxModelParameters`). */
  maxModelParameters?: number;
  /** Milliseconds; with `resolveCacheMs` lets inference skip the database for a recently resolved name. */
  now?: () => number;
  /** Signs provenance records; without it versions get none. */
  signer?: ProvenanceSigner;
  /** The server's version, recorded in provenance records. */
  serverVersion?: string;
  /**
   * How long a resolved name@selector is reused. Every change made through this registry clears the
   * tenant's entries at once; the bound only matters for changes made by another process. 0 disables.
   */
  resolveCacheMs?: number;
  /** The tenant's plan limit on models (src/billing/quotas.ts); throws 429 QUOTA_EXCEEDED. */
  admitNewModel?: (tenantId: string) => Promise<void>;
}

const batchingLimits: Record<keyof BatchingOptions, { minimum: number; maximum: number }> = {
  maxBatchSize: { minimum: 1, maximum: 65_536 },
  maxQueueDelayMicroseconds: { minimum: 0, maximum: 10_000_000 },
  maxQueueSize: { minimum: 1, maximum: 1_000_000 },
};

/** Validates a per-model batching override; null clears it. */
export function parseBatching(value: unknown): Partial<BatchingOptions> | null {
  if (value === null) return null;
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new AiaasError('INVALID_REQUEST', 'batching must be an object', { details: { field: 'batching' } });
  }
  const result: Partial<BatchingOptions> = {};
  for (const [key, raw] of Object.entries(value as Record<string, unknown>)) {
    const limits = batchingLimits[key as keyof BatchingOptions];
    if (limits === undefined) {
      throw new AiaasError('INVALID_REQUEST', `Unknown batching setting '${key}'`, {
        details: { field: `batching.${key}`, known: Object.keys(batchingLimits) },
      });
    }
    if (typeof raw !== 'number' || !Number.isInteger(raw) || raw < limits.minimum || raw > limits.maximum) {
      throw new AiaasError('INVALID_REQUEST', `batching.${key} must be an integer in [${limits.minimum}, ${limits.maximum}]`, {
        details: { field: `batching.${key}` },
      });
    }
    result[key as keyof BatchingOptions] = raw;
  }
  return result;
}

function modelNotFound(name: string): AiaasError {
  return new AiaasError('MODEL_NOT_FOUND', `Model '${name}' not found`, { details: { model: name } });
}

function versionNotFound(name: string, selector: string): AiaasError {
  return new AiaasError('VERSION_NOT_FOUND', `Model '${name}' has no version or alias '${selector}'`, {
    details: { model: name, version: selector },
  });
}

/** 256 layers of a few hundred bytes each fit many times over; anything larger is not a spec. */
const maxSpecBytes = 1024 * 1024;

function parseJsonFile(bytes: Uint8Array, file: string): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch (error) {
    throw new AiaasError('INVALID_MODEL_FILE', `${file} is not valid JSON: ${(error as Error).message}`, { details: { file } });
  }
}

export class ModelRegistry {
  readonly #repositories: Repositories;
  readonly #artifacts: EncryptedArtifactStore;
  readonly #manager: ModelManager;
  readonly #validationLimits: ValidationLimits;
  readonly #validateSavedModel: (spec: Uint8Array, weights: Uint8Array) => Promise<unknown>;
  readonly #plaintext: PlaintextDirectory;
  readonly #maxModelBytes: number;
  readonly #maxModelParameters: number;
  readonly #signer: ProvenanceSigner | undefined;
  readonly #serverVersion: string;
  /** versionId -> where its files live; filled by resolve so the manager can load without a tenant in its key. */
  readonly #locations = new Map<string, VersionLocation>();
  readonly #now: () => number;
  readonly #resolveCacheMs: number;
  readonly #resolved = new Map<string, Map<string, { routing: ResolvedRouting; at: number }>>();
  // A resolve that overlapped a change must not cache what it read before the change.
  readonly #generations = new Map<string, number>();

  readonly #admitNewModel: ((tenantId: string) => Promise<void>) | undefined;

  constructor(options: ModelRegistryOptions) {
    this.#now = options.now ?? Date.now;
    this.#resolveCacheMs = options.resolveCacheMs ?? 2000;
    this.#repositories = options.repositories;
    this.#artifacts = options.artifacts;
    this.#manager = options.manager;
    this.#validationLimits = options.validationLimits;
    this.#plaintext = options.plaintext;
    this.#validateSavedModel = options.validateSavedModel;
    this.#maxModelBytes = options.maxModelBytes;
    this.#maxModelParameters = options.maxModelParameters ?? defaultMaxModelParameters;
    this.#signer = options.signer;
    this.#serverVersion = options.serverVersion ?? '0.1.0';
    this.#admitNewModel = options.admitNewModel;
  }

  /** Drops the tenant's cached resolutions; called by every change to its models. */
  #changed(tenantId: string): void {
    this.#resolved.delete(tenantId);
    this.#generations.set(tenantId, (this.#generations.get(tenantId) ?? 0) + 1);
  }

  // ---- models

  async createModel(tenantId: string, input: { name: string; description?: string; batching?: unknown; exportable?: unknown; outputPolicy?: unknown }): Promise<ModelRecord> {
    const name = validateName('model', input.name);
    if (input.description !== undefined && typeof input.description !== 'string') {
      throw new AiaasError('INVALID_REQUEST', 'description must be a string', { details: { field: 'description' } });
    }
    const batching = input.batching === undefined ? undefined : parseBatching(input.batching);
    const exportable = input.exportable === undefined ? undefined : parseExportable(input.exportable);
    const outputPolicy = input.outputPolicy === undefined ? undefined : parseOutputPolicy(input.outputPolicy);
    await this.#admitNewModel?.(tenantId);
    this.#changed(tenantId);
    return this.#repositories.models.create(tenantId, {
      name,
      ...(input.description === undefined ? {} : { description: input.description }),
      ...(batching === undefined || batching === null ? {} : { batching }),
      ...(exportable === undefined ? {} : { exportable }),
      ...(outputPolicy === undefined || outputPolicy === null ? {} : { outputPolicy }),
    });
  }

  async getModel(tenantId: string, name: string): Promise<ModelRecord> {
    const model = await this.#repositories.models.getByName(tenantId, name);
    if (model === undefined) throw modelNotFound(name);
    return model;
  }

  async listModels(tenantId: string): Promise<ModelRecord[]> {
    return this.#repositories.models.list(tenantId, { limit: 1000 });
  }

  /**
   * `exportable: false` can be set by the model's owner; setting it back to true only by the operator
   * (`mayLiftExportControl`), or the mark would stop no admin of the tenant.
   */
  async updateModel(
    tenantId: string,
    name: string,
    patch: { description?: unknown; batching?: unknown; exportable?: unknown; outputPolicy?: unknown },
    options: { mayLiftExportControl?: boolean } = {},
  ): Promise<ModelRecord> {
    const model = await this.getModel(tenantId, name);
    if (patch.description !== undefined && typeof patch.description !== 'string') {
      throw new AiaasError('INVALID_REQUEST', 'description must be a string', { details: { field: 'description' } });
    }
    const batching = patch.batching === undefined ? undefined : parseBatching(patch.batching);
    const exportable = patch.exportable === undefined ? undefined : parseExportable(patch.exportable);
    if (exportable === true && !model.exportable && options.mayLiftExportControl !== true) {
      throw new AiaasError('EXPORT_FORBIDDEN', `Model '${name}' is marked not exportable; only the operator can lift the mark`, { details: { model: name } });
    }
    const outputPolicy = patch.outputPolicy === undefined ? undefined : parseOutputPolicy(patch.outputPolicy);
    const updated = await this.#repositories.models.update(tenantId, model.id, {
      ...(patch.description === undefined ? {} : { description: patch.description as string }),
      ...(batching === undefined ? {} : { batching }),
      ...(exportable === undefined ? {} : { exportable }),
      ...(outputPolicy === undefined ? {} : { outputPolicy }),
    });
    this.#changed(tenantId);
    // A loaded version keeps the batcher it was built with; reload so new settings apply.
    if (batching !== undefined) await this.#unload((await this.#repositories.models.listVersions(tenantId, model.id)).map((version) => version.id));
    return updated ?? model;
  }

  async deleteModel(tenantId: string, name: string): Promise<void> {
    const model = await this.getModel(tenantId, name);
    const aliases = await this.#repositories.models.listAliases(tenantId, model.id);
    if (aliases.length > 0) {
      throw new AiaasError('ALIAS_IN_USE', `Model '${name}' still has aliases ${aliases.map((alias) => `'${alias.name}'`).join(', ')}; delete them first`, {
        details: { model: name, aliases: aliases.map((alias) => alias.name) },
      });
    }
    const versions = (await this.#repositories.models.delete(tenantId, model.id)) ?? [];
    this.#changed(tenantId);
    await this.#repositories.evaluations.deleteForVersions(tenantId, versions.map((version) => version.id));
    await this.#unload(versions.map((version) => version.id));
    for (const version of versions) await this.#releaseArtifacts(version);
  }

  async modelView(tenantId: string, model: ModelRecord): Promise<ModelView> {
    const [versions, aliases] = await Promise.all([
      this.#repositories.models.listVersions(tenantId, model.id),
      this.#repositories.models.listAliases(tenantId, model.id),
    ]);
    return {
      name: model.name,
      description: model.description,
      batching: (model.batching as Partial<BatchingOptions> | undefined) ?? null,
      exportable: model.exportable,
      outputPolicy: (model.outputPolicy as OutputPolicy | null) ?? null,
      versions: versions.map((version) => version.version),
      aliases: aliases.map((alias) => ({ name: alias.name, version: alias.version })),
      createdAt: model.createdAt,
    };
  }

  // ---- versions

  /** Stores a saved model (at least model.onnx) as a new version; spec and weights are checked to load together. */
  async addVersionFromSavedModel(tenantId: string, modelName: string, files: SavedModelUpload, options: AddVersionOptions): Promise<ModelVersionRecord> {
    const model = await this.#modelForNewVersion(tenantId, modelName, options.createModel === true);
    if (files.onnx.byteLength > this.#maxModelBytes) {
      throw new AiaasError('PAYLOAD_TOO_LARGE', `model.onnx is ${files.onnx.byteLength} bytes; the limit is ${this.#maxModelBytes}`, {
        details: { limit: this.#maxModelBytes },
      });
    }
    // Before anything opens the model: what it may read besides itself (finding: external data).
    const externalData = await externalDataFiles(files.onnx, files.archiveFiles, modelFileNames);
    const totalBytes = [...externalData.values()].reduce((sum, bytes) => sum + bytes.byteLength, files.onnx.byteLength);
    if (totalBytes > this.#maxModelBytes) {
      throw new AiaasError('PAYLOAD_TOO_LARGE', `model.onnx and its external data are ${totalBytes} bytes; the limit is ${this.#maxModelBytes}`, {
        details: { limit: this.#maxModelBytes },
      });
    }
    let metrics: unknown = options.metrics;
    if (metrics === undefined && files.metrics !== undefined) metrics = parseJsonFile(files.metrics, 'metrics.json');
    if (files.spec !== undefined && files.spec.byteLength > maxSpecBytes) {
      throw new AiaasError('INVALID_MODEL_FILE', `spec.json is ${files.spec.byteLength} bytes; a model spec is at most ${maxSpecBytes}`, { details: { file: 'spec.json', limit: maxSpecBytes } });
    }
    const specDocument = files.spec === undefined ? undefined : parseJsonFile(files.spec, 'spec.json');
    if (options.source === 'upload' && files.spec !== undefined) {
      // From shapes alone, before anything is allocated: a spec of billions of parameters or weights
      // that do not fit it are refused here, while they are still a few bytes of header.
      checkSavedModelHeaders(specDocument, files.weights, this.#maxModelParameters);
      // Building the network allocates every weight: that happens in a child process with limits.
      if (files.weights !== undefined) await this.#validateSavedModel(files.spec, files.weights);
    }
    const validated = await this.#validate('onnx', sourceFromBytes(files.onnx, externalData));
    const signature = withModelNames(validated.signature as ModelSignature, files.onnx);
    const derivation = await this.#derivation(tenantId, options.parentVersionId);
    const provenanceFiles: ProvenanceFile[] = [
      fileHash('model.onnx', files.onnx),
      ...(files.spec === undefined ? [] : [fileHash('spec.json', files.spec)]),
      ...(files.weights === undefined ? [] : [fileHash('model.safetensors', files.weights)]),
      ...(files.metrics === undefined ? [] : [fileHash('metrics.json', files.metrics)]),
      ...[...externalData].map(([location, bytes]) => fileHash(`${externalRefPrefix}${location}`, bytes)),
    ];

    const stored: string[] = [];
    try {
      const onnxRef = await this.#artifacts.put(tenantId, files.onnx);
      stored.push(onnxRef);
      const savedModelRefs: Record<string, string> = {};
      const extra: [ModelFileName, Uint8Array | undefined][] = [
        ['spec.json', files.spec],
        ['model.safetensors', files.weights],
        ['metrics.json', files.metrics],
      ];
      for (const [file, bytes] of extra) {
        if (bytes === undefined) continue;
        savedModelRefs[file] = await this.#artifacts.put(tenantId, bytes);
        stored.push(savedModelRefs[file]);
      }
      for (const [location, bytes] of externalData) {
        const ref = await this.#artifacts.put(tenantId, bytes);
        savedModelRefs[`${externalRefPrefix}${location}`] = ref;
        stored.push(ref);
      }
      const version = await this.#repositories.models.addVersion(tenantId, model.id, {
        source: options.source,
        onnxRef,
        savedModelRefs: Object.keys(savedModelRefs).length === 0 ? undefined : savedModelRefs,
        signature,
        measuredMemoryBytes: validated.measuredMemoryBytes ?? null,
        metrics: metrics ?? null,
        jobId: options.jobId ?? null,
        ...derivation.fields,
      });
      try {
        await this.#recordProvenance(tenantId, model, version, provenanceFiles, { ...options, spec: specDocument }, derivation.parent);
      } catch (error) {
        await this.#repositories.models.deleteVersion(tenantId, model.id, version.version).catch(() => undefined);
        throw error;
      }
      this.#locations.set(version.id, locationOf(tenantId, version));
      this.#changed(tenantId);
      return version;
    } catch (error) {
      for (const ref of stored) await this.#artifacts.delete(ref).catch(() => undefined);
      throw error;
    }
  }

  /** Validates and records a version over an artifact just streamed in; on any failure the artifact is deleted again. */
  async #registerStreamed(
    tenantId: string,
    ref: string,
    bytes: number,
    register: () => Promise<ModelVersionRecord>,
  ): Promise<{ version: ModelVersionRecord; bytes: number }> {
    try {
      const version = await register();
      this.#locations.set(version.id, locationOf(tenantId, version));
      this.#changed(tenantId);
      return { version, bytes };
    } catch (error) {
      await this.#artifacts.delete(ref).catch(() => undefined);
      throw error;
    }
  }

  /**
   * A bare model file streamed from the request (or a pulled file), of the format its first bytes
   * name (`formatOfFile`: GGUF by its magic, else ONNX): encrypted into the store as it arrives
   * (hashed on the way, never held whole), then validated by its format in a child process from a
   * private copy decrypted from the store. Over `maxModelBytes` the upload stops with
   * PAYLOAD_TOO_LARGE; on any failure nothing stays stored.
   */
  async addVersionFromStream(
    tenantId: string,
    modelName: string,
    head: Uint8Array,
    body: AsyncIterable<Uint8Array>,
    options: AddVersionOptions,
  ): Promise<{ version: ModelVersionRecord; bytes: number }> {
    const format = formatOfFile(head);
    const model = await this.#modelForNewVersion(tenantId, modelName, options.createModel === true);
    const hash = createHash('sha256');
    const hashed = (async function* () {
      for await (const chunk of body) {
        hash.update(chunk);
        yield chunk;
      }
    })();
    const { ref, bytes } = await this.#artifacts.putStream(tenantId, hashed, { maxBytes: this.#maxModelBytes, what: format.fileName });
    return await this.#registerStreamed(tenantId, ref, bytes, async () => {
      if (bytes === 0) throw new AiaasError('INVALID_MODEL_FILE', 'The upload is empty; send an .onnx file, a saved-model .tar or a .gguf file');
      // Before anything opens the model: a bare file may not read files besides itself.
      const skeleton = format.externalData ? await refuseExternalData(await this.#artifacts.getStream(tenantId, ref)) : undefined;
      const validated = await this.#validate(format.name, { byteLength: bytes, writeTo: async (path) => void (await this.#artifacts.decryptToFile(tenantId, ref, path)) });
      // An ONNX model's class and feature names live in its metadata, which the skeleton keeps.
      const signature = skeleton === undefined ? validated.signature : withModelNames(validated.signature as ModelSignature, skeleton);
      const derivation = await this.#derivation(tenantId, options.parentVersionId);
      const version = await this.#repositories.models.addVersion(tenantId, model.id, {
        source: options.source,
        format: format.name,
        onnxRef: ref,
        savedModelRefs: undefined,
        signature,
        measuredMemoryBytes: validated.measuredMemoryBytes ?? null,
        ...(validated.chatTemplate === undefined ? {} : { chatTemplate: validated.chatTemplate }),
        metrics: options.metrics ?? null,
        jobId: options.jobId ?? null,
        ...derivation.fields,
      });
      await this.#provenanceOrRemove(tenantId, model, version, [{ name: format.fileName, sha256: hash.digest('hex'), bytes }], options, derivation.parent);
      return version;
    });
  }

  /** Validates (and describes) a file with its format's isolated check. */
  async #validate(formatName: string, source: ModelSource): Promise<ValidatedModel> {
    return await formatNamed(formatName).validate(source, this.#validationLimits);
  }

  /**
   * A saved-model folder packed as tar: model.onnx required; spec.json, model.safetensors, metrics.json
   * optional; any files model.onnx keeps external data in, beside it in the archive.
   */
  async addVersionFromTar(tenantId: string, modelName: string, archive: Uint8Array, options: AddVersionOptions): Promise<ModelVersionRecord> {
    const entries = readTar(archive);
    const files = new Map<string, Uint8Array>();
    let onnxFolder: string[] = [];
    for (const entry of entries) {
      const parts = pathParts(entry.name);
      const base = parts.at(-1) ?? '';
      // macOS tar adds AppleDouble `._name` companions; they are metadata, not model files.
      if (base.startsWith('._')) continue;
      if ((modelFileNames as readonly string[]).includes(base)) {
        if (files.has(base)) throw new AiaasError('INVALID_MODEL_FILE', `the archive holds ${base} twice`);
        files.set(base, entry.bytes);
        if (base === 'model.onnx') onnxFolder = parts.slice(0, -1);
      }
    }
    const onnx = files.get('model.onnx');
    if (onnx === undefined) {
      throw new AiaasError('INVALID_MODEL_FILE', 'the archive has no model.onnx; a saved model holds model.onnx, spec.json, model.safetensors and metrics.json', {
        details: { found: entries.map((entry) => entry.name).slice(0, 20) },
      });
    }
    return this.addVersionFromSavedModel(
      tenantId,
      modelName,
      {
        onnx,
        spec: files.get('spec.json'),
        weights: files.get('model.safetensors'),
        metrics: files.get('metrics.json'),
        archiveFiles: filesBeside(entries, onnxFolder),
      },
      options,
    );
  }

  async listVersions(tenantId: string, modelName: string): Promise<VersionView[]> {
    const model = await this.getModel(tenantId, modelName);
    const [versions, aliases] = await Promise.all([
      this.#repositories.models.listVersions(tenantId, model.id),
      this.#repositories.models.listAliases(tenantId, model.id),
    ]);
    return versions.map((version) => versionView(model, version, aliases));
  }

  async getVersion(tenantId: string, modelName: string, selector: string): Promise<{ model: ModelRecord; version: ModelVersionRecord }> {
    const model = await this.getModel(tenantId, modelName);
    const version = await this.#selectVersion(tenantId, model, selector);
    if (version === undefined) throw versionNotFound(modelName, selector);
    return { model, version };
  }

  async versionView(tenantId: string, model: ModelRecord, version: ModelVersionRecord): Promise<VersionView> {
    return versionView(model, version, await this.#repositories.models.listAliases(tenantId, model.id));
  }

  /** Version numbers only: an alias naming the version to delete would be too easy to misread. */
  async deleteVersion(tenantId: string, modelName: string, version: number): Promise<void> {
    const model = await this.getModel(tenantId, modelName);
    const deleted = await this.#repositories.models.deleteVersion(tenantId, model.id, version);
    if (deleted === undefined) throw versionNotFound(modelName, String(version));
    this.#changed(tenantId);
    await this.#repositories.evaluations.deleteForVersions(tenantId, [deleted.id]);
    await this.#unload([deleted.id]);
    await this.#releaseArtifacts(deleted);
  }

  /** A stored file as a decrypting stream (bounded memory); see EncryptedArtifactStore.getStream for when it is trustworthy. */
  async openFile(tenantId: string, modelName: string, selector: string, file: string): Promise<{ stream: Readable; contentType: string }> {
    const ref = await this.#fileRef(tenantId, modelName, selector, file);
    return { stream: await this.#artifacts.getStream(tenantId, ref), contentType: contentTypeOf(file) };
  }

  async #fileRef(tenantId: string, modelName: string, selector: string, file: string): Promise<string> {
    const { version } = await this.getVersion(tenantId, modelName, selector);
    const ref = file === mainFileName(version) ? version.onnxRef : version.savedModelRefs?.[file];
    if (ref === undefined || !(file === mainFileName(version) || (modelFileNames as readonly string[]).includes(file))) {
      throw new AiaasError('NOT_FOUND', `Version ${version.version} of '${modelName}' has no file '${file}'`, {
        details: { model: modelName, version: version.version, file, files: filesOf(version) },
      });
    }
    return ref;
  }

  // ---- derived versions, provenance, export control

  /**
   * What a version derived from `parentVersionId` inherits: it is exportable only if the parent
   * version and the parent's model both are. Every derived-version path (quantization, fine-tunes)
   * goes through here, by passing `parentVersionId` in AddVersionOptions or by calling this.
   */
  async derivedVersionProtection(tenantId: string, parentVersionId: string): Promise<{ exportable: boolean; parent: { model: ModelRecord; version: ModelVersionRecord } }> {
    const version = await this.#repositories.models.getVersionById(tenantId, parentVersionId);
    const model = version === undefined ? undefined : await this.#repositories.models.get(tenantId, version.modelId);
    if (version === undefined || model === undefined) {
      throw new AiaasError('VERSION_NOT_FOUND', 'The parent version does not exist', { details: { parentVersionId } });
    }
    return { exportable: version.exportable && model.exportable, parent: { model, version } };
  }

  async #derivation(tenantId: string, parentVersionId: string | undefined): Promise<{ fields: { exportable?: boolean; parentVersionId?: string }; parent?: { model: ModelRecord; version: ModelVersionRecord } }> {
    if (parentVersionId === undefined) return { fields: {} };
    const { exportable, parent } = await this.derivedVersionProtection(tenantId, parentVersionId);
    return { fields: { exportable, parentVersionId }, parent };
  }

  async #recordProvenance(
    tenantId: string,
    model: ModelRecord,
    version: ModelVersionRecord,
    files: readonly ProvenanceFile[],
    options: AddVersionOptions & { spec?: unknown },
    parent: { model: ModelRecord; version: ModelVersionRecord } | undefined,
  ): Promise<void> {
    if (this.#signer === undefined) return;
    const record = buildProvenanceRecord({
      model: model.name,
      version,
      files,
      serverVersion: this.#serverVersion,
      keyId: this.#signer.published.keyId,
      ...(options.provenance === undefined ? {} : { inputs: options.provenance }),
      ...(options.spec === undefined ? {} : { spec: options.spec }),
      ...(parent === undefined ? {} : { parent: { versionId: parent.version.id, model: parent.model.name, version: parent.version.version } }),
    });
    await this.#repositories.models.setProvenance(tenantId, version.id, this.#signer.signRecord(record));
  }

  /** For the streamed paths: a version whose record cannot be stored is removed again (its artifact by the caller). */
  async #provenanceOrRemove(
    tenantId: string,
    model: ModelRecord,
    version: ModelVersionRecord,
    files: readonly ProvenanceFile[],
    options: AddVersionOptions,
    parent: { model: ModelRecord; version: ModelVersionRecord } | undefined,
  ): Promise<void> {
    try {
      await this.#recordProvenance(tenantId, model, version, files, options, parent);
    } catch (error) {
      await this.#repositories.models.deleteVersion(tenantId, model.id, version.version).catch(() => undefined);
      throw error;
    }
  }

  /** The version's signed record, as stored: its canonical text (what was signed) and signature. */
  async provenance(tenantId: string, modelName: string, selector: string): Promise<{ record: unknown; text: string; signature: string; keyId: string | null }> {
    const { version } = await this.getVersion(tenantId, modelName, selector);
    if (version.provenance === null) {
      throw new AiaasError('PROVENANCE_NOT_FOUND', `Version ${version.version} of '${modelName}' has no provenance record (it was stored before records existed)`, {
        details: { model: modelName, version: version.version },
      });
    }
    const record = JSON.parse(version.provenance.text) as { signingKey?: { keyId?: string } };
    return { record, text: version.provenance.text, signature: version.provenance.signature, keyId: record.signingKey?.keyId ?? null };
  }

  /**
   * Refuses a weight download of a model or version marked not exportable, unless the caller is the
   * operator. Returns whether the operator's override was used (the route audits it).
   */
  async checkExport(tenantId: string, modelName: string, selector: string, file: string, caller: { operator: boolean }): Promise<{ restricted: boolean }> {
    const { model, version } = await this.getVersion(tenantId, modelName, selector);
    const restricted = !(model.exportable && version.exportable);
    if (!restricted || !weightFiles(file)) return { restricted: false };
    if (!caller.operator) {
      throw new AiaasError('EXPORT_FORBIDDEN', `Model '${modelName}' is marked not exportable: its weights cannot be downloaded with this tenant's keys`, {
        details: { model: modelName, version: version.version, file },
      });
    }
    return { restricted: true };
  }

  // ---- aliases

  async setAlias(tenantId: string, modelName: string, alias: string, version: unknown): Promise<AliasRecord> {
    const model = await this.getModel(tenantId, modelName);
    validateName('alias', alias);
    validateAliasName(alias);
    if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1) {
      throw new AiaasError('INVALID_REQUEST', 'version must be a positive integer version number', { details: { field: 'version' } });
    }
    try {
      const record = await this.#repositories.models.setAlias(tenantId, model.id, alias, version);
      this.#changed(tenantId);
      return record;
    } catch (error) {
      if (AiaasError.isInstance(error) && error.code === 'VERSION_NOT_FOUND') throw versionNotFound(modelName, String(version));
      throw error;
    }
  }

  /** The alias, or undefined when the model has none of that name. */
  async getAlias(tenantId: string, modelName: string, alias: string): Promise<AliasRecord | undefined> {
    const model = await this.getModel(tenantId, modelName);
    return this.#repositories.models.getAlias(tenantId, model.id, alias);
  }

  /**
   * Creates or replaces an alias's routing: one version or a weighted split, a shadow version and a
   * gate (whose checks the caller has made: see src/quality/alias-changes.ts).
   */
  async setAliasRouting(tenantId: string, modelName: string, alias: string, routing: AliasRouting): Promise<AliasRecord> {
    const model = await this.getModel(tenantId, modelName);
    validateName('alias', alias);
    validateAliasName(alias);
    try {
      const record = await this.#repositories.models.setAliasRouting(tenantId, model.id, alias, routing);
      this.#changed(tenantId);
      return record;
    } catch (error) {
      if (AiaasError.isInstance(error) && error.code === 'VERSION_NOT_FOUND') throw versionNotFound(modelName, String(error.details?.version ?? ''));
      throw error;
    }
  }

  /** A version's number by id (for showing a shadow), undefined when it is gone. */
  async versionNumberOf(tenantId: string, versionId: string): Promise<number | undefined> {
    return (await this.#repositories.models.getVersionById(tenantId, versionId))?.version;
  }

  async listAliases(tenantId: string, modelName: string): Promise<AliasRecord[]> {
    const model = await this.getModel(tenantId, modelName);
    return this.#repositories.models.listAliases(tenantId, model.id);
  }

  async deleteAlias(tenantId: string, modelName: string, alias: string): Promise<void> {
    const model = await this.getModel(tenantId, modelName);
    const deleted = await this.#repositories.models.deleteAlias(tenantId, model.id, alias);
    this.#changed(tenantId);
    if (!deleted) {
      throw new AiaasError('NOT_FOUND', `Model '${modelName}' has no alias '${alias}'`, { details: { model: modelName, alias } });
    }
  }

  // ---- serving

  /**
   * What the inference routes serve: MODEL_NOT_FOUND / VERSION_NOT_FOUND, scoped to the tenant. An
   * alias with a split picks one of its versions: by `routeKey` (sticky) when given, else at random.
   */
  async resolve(tenantId: string, name: string, versionOrAlias?: string, options: { routeKey?: string; random?: () => number } = {}): Promise<ResolvedModel> {
    const selector = versionOrAlias ?? latestSelector;
    return this.#pick(this.#cachedRouting(tenantId, name, selector) ?? (await this.#routing(tenantId, name, selector)), name, selector, options);
  }

  /**
   * `resolve` answered from the routing cache, without a promise: undefined when the routing is not
   * cached (the caller then awaits `resolve`). The inference routes ask this first on every request.
   */
  resolveCached(tenantId: string, name: string, versionOrAlias?: string, options: { routeKey?: string; random?: () => number } = {}): ResolvedModel | undefined {
    const selector = versionOrAlias ?? latestSelector;
    const routing = this.#cachedRouting(tenantId, name, selector);
    return routing === undefined ? undefined : this.#pick(routing, name, selector, options);
  }

  #pick(routing: ResolvedRouting, name: string, selector: string, options: { routeKey?: string; random?: () => number }): ResolvedModel {
    if (routing.targets.length === 1 && routing.shadow === undefined) return routing.targets[0]!.model;
    const point = options.routeKey === undefined ? (options.random ?? Math.random)() : routeKeyPoint(`${name}\u0000${selector}`, options.routeKey);
    const chosen = chooseTarget(routing.targets, point).model;
    return { ...chosen, alias: selector, ...(routing.shadow === undefined ? {} : { shadow: routing.shadow }) };
  }

  #cachedRouting(tenantId: string, name: string, selector: string): ResolvedRouting | undefined {
    const cached = this.#resolved.get(tenantId)?.get(`${name}\u0000${selector}`);
    if (cached === undefined) return undefined;
    const now = this.#now();
    if (
      now - cached.at >= 0 &&
      now - cached.at < this.#resolveCacheMs &&
      cached.routing.targets.every((target) => this.#locations.has(target.model.versionId)) &&
      (cached.routing.shadow === undefined || this.#locations.has(cached.routing.shadow.versionId))
    ) {
      return cached.routing;
    }
    return undefined;
  }

  async #routing(tenantId: string, name: string, selector: string): Promise<ResolvedRouting> {
    const cacheKey = `${name}\u0000${selector}`;
    const now = this.#now();
    const generation = this.#generations.get(tenantId) ?? 0;
    const model = await this.#repositories.models.getByName(tenantId, name);
    if (model === undefined) throw modelNotFound(name);
    const batching = model.batching as Partial<BatchingOptions> | undefined;
    const servable = (version: ModelVersionRecord): ResolvedModel => {
      if (formatNamed(version.format).capability !== 'tensor') {
        // The tensor protocols cannot serve a language model; like a missing model, so routes stay uniform.
        throw new AiaasError('MODEL_NOT_FOUND', `Model '${name}' is a language model; use the OpenAI (/v1) or Ollama (/api) routes`, {
          details: { model: name, format: version.format },
        });
      }
      this.#locations.set(version.id, locationOf(tenantId, version));
      return {
        tenantId,
        name: model.name,
        version: String(version.version),
        versionId: version.id,
        platform: 'onnx',
        signature: version.signature as ModelSignature,
        ...(batching === undefined || batching === null ? {} : { batching }),
        ...(model.outputPolicy === null || model.outputPolicy === undefined ? {} : { outputPolicy: model.outputPolicy as OutputPolicy }),
        ...(version.savedModelRefs?.['spec.json'] !== undefined && version.savedModelRefs['model.safetensors'] !== undefined ? { inputGradients: true } : {}),
      };
    };
    let routing: ResolvedRouting;
    const alias = selector === latestSelector || /^[0-9]+$/.test(selector) ? undefined : await this.#repositories.models.getAlias(tenantId, model.id, selector);
    if (alias !== undefined && (alias.split !== null || alias.shadowVersionId !== null)) {
      const versionOf = async (versionId: string) => {
        const version = await this.#repositories.models.getVersionById(tenantId, versionId);
        if (version === undefined) throw versionNotFound(name, selector);
        return servable(version);
      };
      const split = alias.split ?? [{ versionId: alias.versionId, version: alias.version, weight: 1 }];
      const targets = await Promise.all(split.map(async (entry) => ({ model: await versionOf(entry.versionId), weight: entry.weight })));
      routing = { targets, ...(alias.shadowVersionId === null ? {} : { shadow: await versionOf(alias.shadowVersionId) }) };
    } else {
      const version = await this.#selectVersion(tenantId, model, selector);
      if (version === undefined) throw versionNotFound(name, selector);
      routing = { targets: [{ model: servable(version), weight: 1 }] };
    }
    if (this.#resolveCacheMs > 0 && generation === (this.#generations.get(tenantId) ?? 0)) {
      let tenantEntries = this.#resolved.get(tenantId);
      if (tenantEntries === undefined) {
        if (this.#resolved.size >= 10_000) this.#resolved.clear();
        tenantEntries = new Map();
        this.#resolved.set(tenantId, tenantEntries);
      }
      if (tenantEntries.size >= 10_000) tenantEntries.clear();
      tenantEntries.set(cacheKey, { routing, at: now });
    }
    return routing;
  }

  /** Every model of the tenant with its version numbers (for the V2 repository index and TF-Serving status). */
  async listForServing(tenantId: string): Promise<{ name: string; versions: string[] }[]> {
    const models = await this.listModels(tenantId);
    return Promise.all(
      models.map(async (model) => ({
        name: model.name,
        versions: (await this.#repositories.models.listVersions(tenantId, model.id)).map((version) => String(version.version)),
      })),
    );
  }

  /**
   * A tenant's language-model version: MODEL_NOT_FOUND / VERSION_NOT_FOUND as `resolve`, and
   * MODEL_NOT_FOUND for a version that is not a language model (the LLM routes cannot serve it).
   */
  async resolveLanguageModel(tenantId: string, name: string, versionOrAlias?: string): Promise<LanguageModelVersion> {
    const model = await this.#repositories.models.getByName(tenantId, name);
    if (model === undefined) throw modelNotFound(name);
    const selector = versionOrAlias ?? latestSelector;
    const version = await this.#selectVersion(tenantId, model, selector);
    if (version === undefined) throw versionNotFound(name, selector);
    if (formatNamed(version.format).capability !== 'language') {
      throw new AiaasError('MODEL_NOT_FOUND', `Model '${name}' is not a language model`, { details: { model: name, format: version.format } });
    }
    this.#locations.set(version.id, locationOf(tenantId, version));
    const aliases = await this.#repositories.models.listAliases(tenantId, model.id);
    return languageModelVersion(tenantId, model, version, aliases);
  }

  /**
   * The tenant's language models: for each model whose latest version is GGUF, that version
   * first, then every other GGUF version an alias points at; each with the aliases naming it.
   */
  async listLanguageModels(tenantId: string): Promise<LanguageModelVersion[]> {
    const result: LanguageModelVersion[] = [];
    for (const model of await this.listModels(tenantId)) {
      const latest = await this.#repositories.models.latestVersion(tenantId, model.id);
      if (latest === undefined || !isLanguageModel(latest)) continue;
      const aliases = await this.#repositories.models.listAliases(tenantId, model.id);
      result.push(languageModelVersion(tenantId, model, latest, aliases));
      const targets = [...new Set(aliases.map((alias) => alias.versionId))].filter((versionId) => versionId !== latest.id);
      for (const versionId of targets) {
        const version = await this.#repositories.models.getVersionById(tenantId, versionId);
        if (version !== undefined && isLanguageModel(version)) result.push(languageModelVersion(tenantId, model, version, aliases));
      }
    }
    return result;
  }

  /**
   * The model manager's loader: decrypts the version's model.onnx (ARTIFACT_CORRUPT if altered) and its
   * external-data files into the version's private plaintext directory, for the runtime to open from
   * there. The manager calls `release` when the version unloads, which removes the directory.
   */
  async openModelFiles(versionId: string): Promise<ModelFiles> {
    if (versionId.endsWith(inputGradientSuffix)) return this.#openInputGradientFiles(versionId);
    const location = this.#locations.get(versionId);
    if (location === undefined) throw new AiaasError('VERSION_NOT_FOUND', 'This model version is no longer available');
    const { tenantId } = location;
    const format = formatNamed(location.format);
    // Decrypted straight into the directory, a segment at a time: a multi-gigabyte model is never a
    // buffer here. llama.cpp memory-maps its file from there; ONNX Runtime reads external data beside it.
    const sizes = new Map<string, { byteLength: number }>();
    const fileOf = (path: string, ref: string) => ({
      path,
      writeTo: async (target: string) => {
        const { bytes } = await this.#artifacts.decryptToFile(tenantId, ref, target);
        sizes.set(path, { byteLength: bytes });
        return bytes;
      },
    });
    const files = [fileOf(format.fileName, location.onnxRef), ...[...location.externalRefs].map(([path, ref]) => fileOf(path, ref))];
    const written = await this.#plaintext.write(tenantId, versionId, files);
    if (format.externalData) {
      // Checked again at load, before the runtime opens anything: a version stored before this check
      // existed must not read outside its directory either.
      try {
        // From the file just written and authenticated: no second decryption.
        const skeleton = await skeletonOf(createReadStream(join(written.directory, format.fileName)));
        const external = new Map([...sizes].filter(([path]) => path !== format.fileName));
        await externalDataFiles(skeleton, external, modelFileNames);
      } catch (error) {
        await written.remove();
        throw new AiaasError('MODEL_LOAD_FAILED', `the stored model did not pass the external-data check: ${(error as Error).message}`, { cause: error });
      }
    }
    const path = join(written.directory, format.fileName);
    let measuredMemoryBytes: number | undefined;
    try {
      measuredMemoryBytes = location.measuredMemoryBytes ?? (format.measuresMemory ? await this.#measureAtLoad(versionId, location, path) : undefined);
    } catch (error) {
      await written.remove();
      throw error;
    }
    return {
      path,
      sizeBytes: written.sizeBytes,
      format: format.name,
      ...(measuredMemoryBytes === undefined ? {} : { measuredMemoryBytes }),
      release: written.remove,
    };
  }

  /** The version's spec.json (an engine model's), or undefined for a model uploaded as bare ONNX. */
  async versionSpec(tenantId: string, version: ModelVersionRecord): Promise<unknown> {
    const ref = version.savedModelRefs?.['spec.json'];
    if (ref === undefined) return undefined;
    return parseJsonFile(await this.#artifacts.get(tenantId, ref), 'spec.json');
  }

  /**
   * Decrypts an ONNX version's model.onnx and external-data files into `directory` (created 0700),
   * for a process of its own (an evaluation) to open; returns model.onnx's path. The caller removes
   * the directory. External-data paths were checked at upload to stay beside model.onnx.
   */
  async writeVersionFiles(tenantId: string, version: ModelVersionRecord, directory: string): Promise<string> {
    if (version.format !== 'onnx') {
      throw new AiaasError('INVALID_REQUEST', `version ${version.version} is a language model (${version.format}); only ONNX versions can be evaluated`);
    }
    const location = locationOf(tenantId, version);
    const root = resolvePath(directory);
    await mkdir(root, { recursive: true, mode: 0o700 });
    for (const [path, ref] of [['model.onnx', location.onnxRef] as const, ...location.externalRefs]) {
      const target = resolvePath(root, path);
      if (!target.startsWith(`${root}${sep}`)) throw new AiaasError('MODEL_LOAD_FAILED', 'the stored model names a file outside its directory');
      await mkdir(dirname(target), { recursive: true, mode: 0o700 });
      await this.#artifacts.decryptToFile(tenantId, ref, target);
    }
    return join(root, 'model.onnx');
  }

  /**
   * A version stored before measuring: opened and run once in the validation child, in place, under
   * the same memory limit as an upload; the measurement is stored, so this happens once. A model that
   * crosses the limit is not loaded (MODEL_LOAD_FAILED, 503) rather than let it grow in the server.
   * Undefined where nothing could be measured (no /proc): the runtime's estimate then applies.
   */
  async #measureAtLoad(versionId: string, location: VersionLocation, path: string): Promise<number | undefined> {
    let validated: ValidatedModel;
    try {
      validated = await formatNamed(location.format).validate({ path }, this.#validationLimits);
    } catch (error) {
      const reason = AiaasError.isInstance(error) ? error.message : 'the check failed';
      throw new AiaasError('MODEL_LOAD_FAILED', `the model could not be opened within the server's limits: ${reason}`, { cause: error });
    }
    const measured = validated.measuredMemoryBytes;
    if (measured !== undefined) {
      await this.#repositories.models.setMeasuredMemory(location.tenantId, versionId, measured);
      location.measuredMemoryBytes = measured;
    }
    return measured;
  }

  /**
   * The input-gradient graph of an engine model (spec.json + weights), built by the engine and
   * written into its own plaintext directory: the model manager loads it like any version, in
   * worker threads, and unloads it with its version.
   */
  async #openInputGradientFiles(key: string): Promise<ModelFiles> {
    const versionId = key.slice(0, -inputGradientSuffix.length);
    const location = this.#locations.get(versionId);
    const specRef = location?.savedModelRefs.get('spec.json');
    const weightsRef = location?.savedModelRefs.get('model.safetensors');
    if (location === undefined || specRef === undefined || weightsRef === undefined) {
      throw new AiaasError('EXPLANATION_UNSUPPORTED', 'This version has no spec.json and weights to build an input-gradient graph from');
    }
    const [spec, weights] = await Promise.all([this.#artifacts.get(location.tenantId, specRef), this.#artifacts.get(location.tenantId, weightsRef)]);
    const model = modelFromBytes(new TextDecoder().decode(spec), weights);
    const bytes = encodeOnnxModel(exportInputGradientModel(model.plan, model.parameters));
    const written = await this.#plaintext.write(location.tenantId, key, [{ path: 'model.onnx', bytes }]);
    return { path: join(written.directory, 'model.onnx'), sizeBytes: written.sizeBytes, format: 'onnx', release: written.remove };
  }

  /**
   * Unloads every loaded version of a deleted tenant (its data key is gone, so nothing would reload)
   * and removes its plaintext subtree, including anything a load in flight wrote.
   */
  async forgetTenant(tenantId: string): Promise<void> {
    this.#changed(tenantId);
    const versionIds = [...this.#locations].filter(([, location]) => location.tenantId === tenantId).map(([versionId]) => versionId);
    await this.#unload(versionIds);
    await this.#plaintext.removeTenant(tenantId);
  }

  async #unload(versionIds: readonly string[]): Promise<void> {
    for (const versionId of versionIds) {
      this.#locations.delete(versionId);
      await this.#manager.unload({ versionId });
      await this.#manager.unload({ versionId: `${versionId}${inputGradientSuffix}` });
    }
  }

  async #releaseArtifacts(version: ModelVersionRecord): Promise<void> {
    // Encrypted puts get fresh refs, so a version's artifacts are its own.
    for (const ref of [version.onnxRef, ...Object.values(version.savedModelRefs ?? {})]) {
      await this.#artifacts.delete(ref).catch(() => undefined);
    }
  }

  async #selectVersion(tenantId: string, model: ModelRecord, selector: string): Promise<ModelVersionRecord | undefined> {
    if (selector === latestSelector) return this.#repositories.models.latestVersion(tenantId, model.id);
    if (/^[0-9]+$/.test(selector)) {
      const number = Number(selector);
      return Number.isSafeInteger(number) ? this.#repositories.models.getVersion(tenantId, model.id, number) : undefined;
    }
    const alias = await this.#repositories.models.getAlias(tenantId, model.id, selector);
    return alias === undefined ? undefined : this.#repositories.models.getVersionById(tenantId, alias.versionId);
  }

  async #modelForNewVersion(tenantId: string, modelName: string, create: boolean): Promise<ModelRecord> {
    const existing = await this.#repositories.models.getByName(tenantId, modelName);
    if (existing !== undefined) return existing;
    if (!create) throw modelNotFound(modelName);
    try {
      return await this.createModel(tenantId, { name: modelName });
    } catch (error) {
      // Another request created it meanwhile.
      if (AiaasError.isInstance(error) && error.code === 'CONFLICT') return this.getModel(tenantId, modelName);
      throw error;
    }
  }
}

function contentTypeOf(file: string): string {
  return file.endsWith('.json') ? 'application/json; charset=utf-8' : 'application/octet-stream';
}

/** What a name@selector resolves to before a request picks: one version, or a split's, and a shadow. */
interface ResolvedRouting {
  targets: { model: ResolvedModel; weight: number }[];
  shadow?: ResolvedModel;
}

interface VersionLocation {
  tenantId: string;
  onnxRef: string;
  /** spec.json and model.safetensors, when the version has them (input-gradient graphs). */
  savedModelRefs: ReadonlyMap<string, string>;
  /** External-data file path (relative to model.onnx) → artifact ref. */
  externalRefs: ReadonlyMap<string, string>;
  format: ModelFormat;
  /** Null until measured (versions stored before measuring are measured at their first load). */
  measuredMemoryBytes: number | null;
}

function locationOf(tenantId: string, version: ModelVersionRecord): VersionLocation {
  const externalRefs = new Map<string, string>();
  for (const [key, ref] of Object.entries(version.savedModelRefs ?? {})) {
    if (key.startsWith(externalRefPrefix)) externalRefs.set(key.slice(externalRefPrefix.length), ref);
  }
  const savedModelRefs = new Map(Object.entries(version.savedModelRefs ?? {}).filter(([key]) => key === 'spec.json' || key === 'model.safetensors'));
  return { tenantId, onnxRef: version.onnxRef, externalRefs, savedModelRefs, format: version.format, measuredMemoryBytes: version.measuredMemoryBytes };
}

/** A tar entry name as path segments, without empty and `.` segments. */
function pathParts(name: string): string[] {
  return name.split('/').filter((part) => part !== '' && part !== '.');
}

/**
 * The archive's files under model.onnx's folder, keyed by their path relative to it. A path held
 * twice is left out: a location naming it is then refused as missing rather than resolved by guess.
 */
function filesBeside(entries: readonly { name: string; bytes: Uint8Array }[], folder: readonly string[]): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  const twice = new Set<string>();
  for (const entry of entries) {
    const parts = pathParts(entry.name);
    if (parts.length <= folder.length || folder.some((part, index) => parts[index] !== part)) continue;
    const relative = parts.slice(folder.length).join('/');
    if (files.has(relative)) twice.add(relative);
    files.set(relative, entry.bytes);
  }
  for (const path of twice) files.delete(path);
  return files;
}

/** The downloadable name of a version's model file. */
function mainFileName(version: ModelVersionRecord): string {
  return formatNamed(version.format).fileName;
}

/** The main file, then the saved-model files stored beside it (ONNX versions of a saved model). */
function filesOf(version: ModelVersionRecord): string[] {
  const main = mainFileName(version);
  return [main, ...modelFileNames.filter((file) => file !== main && version.savedModelRefs?.[file] !== undefined)];
}

function isLanguageModel(version: ModelVersionRecord): boolean {
  return formatNamed(version.format).capability === 'language';
}

function languageModelVersion(tenantId: string, model: ModelRecord, version: ModelVersionRecord, aliases: readonly AliasRecord[]): LanguageModelVersion {
  return {
    tenantId,
    name: model.name,
    version: version.version,
    versionId: version.id,
    createdAt: version.createdAt,
    aliases: aliases.filter((alias) => alias.versionId === version.id).map((alias) => alias.name),
    signature: version.signature as StoredGgufSignature,
    chatTemplate: version.chatTemplate,
  };
}

function versionView(model: ModelRecord, version: ModelVersionRecord, aliases: readonly AliasRecord[]): VersionView {
  return {
    id: version.id,
    model: model.name,
    version: version.version,
    source: version.source,
    format: version.format,
    signature: version.signature as ModelSignature | StoredGgufSignature,
    ...(isLanguageModel(version) ? { chatTemplate: version.chatTemplate } : {}),
    measuredMemoryBytes: version.measuredMemoryBytes,
    metrics: version.metrics ?? null,
    jobId: version.jobId,
    files: filesOf(version),
    aliases: aliases.filter((alias) => alias.versionId === version.id).map((alias) => alias.name),
    createdAt: version.createdAt,
    exportable: model.exportable && version.exportable,
    parentVersionId: version.parentVersionId,
    provenance: version.provenance !== null,
    quantization: (version.quantization as QuantizationReport | null) ?? null,
  };
}

/** What export control withholds: every file but metrics.json (the weights, and spec.json: the architecture is part of the model too). */
function weightFiles(file: string): boolean {
  return file !== 'metrics.json';
}

function parseExportable(value: unknown): boolean {
  if (typeof value !== 'boolean') throw new AiaasError('INVALID_REQUEST', 'exportable must be true or false', { details: { field: 'exportable' } });
  return value;
}

function fileHash(name: string, bytes: Uint8Array): ProvenanceFile {
  return { name, sha256: createHash('sha256').update(bytes).digest('hex'), bytes: bytes.byteLength };
}
