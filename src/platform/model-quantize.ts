/**
 * Quantize jobs (kind `quantize`): a float ONNX version becomes a new version of the same model with
 * int8 weights (src/onnx/quantize.ts), measured against the original in a child process
 * (jobs/quantize-child.ts), and registered through the registry's normal path (validated like an
 * upload) with its report stored beside it. Submitted by
 * `POST /api/v1/models/:name/versions/:v/quantize` or `POST /api/v1/jobs` with `kind: "quantize"`.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { resolveSpec, scalesIdxPixelsAtLoad } from '../engine/spec.ts';
import { AiaasError, errorCatalogue, type ErrorCode } from '../errors.ts';
import type { JobKindContext, JobKindHandler, JobKindParser, JobKindResult } from '../jobs/job-types.ts';
import { quantizeChildModule, type QuantizeReply, type QuantizeStart } from '../jobs/quantize-protocol.ts';
import type { DatasetSource } from '../jobs/worker-protocol.ts';
import type { FloatNode, QuantizedNode } from '../onnx/quantize.ts';
import type { ComparisonFigures } from '../jobs/quantize-compare.ts';
import { forkIsolated } from '../runtimes/isolated-process.ts';
import type { ModelSignature } from '../runtimes/runtime.ts';
import type { JobRecord } from '../storage/repositories/jobs.ts';
import type { ModelVersionRecord } from '../storage/repositories/models.ts';
import { validateName } from './names.ts';

export const quantizationModes = ['dynamic-int8'] as const;
export type QuantizationMode = (typeof quantizationModes)[number];

/** What a quantize job stores (sealed) as its settings; the version is resolved to a number at submission. */
export interface QuantizeSettings {
  version: number;
  mode: QuantizationMode;
  calibrationDatasetId?: string;
  evaluationDatasetId?: string;
}

/** Stored with the quantized version (`GET …/versions/:v/quantization`, and `quantization` in the version JSON). */
export interface QuantizationReport {
  mode: QuantizationMode;
  /** The float version this one was made from. */
  sourceVersion: number;
  jobId: string;
  floatBytes: number;
  quantizedBytes: number;
  /** quantizedBytes / floatBytes. */
  sizeRatio: number;
  /** quantized / float p50 at batch 1 (the first entry of `latency`). */
  latencyRatio: number;
  latency: ComparisonFigures['latency'];
  /** Null without an evaluation dataset. */
  accuracy: ComparisonFigures['accuracy'];
  accuracyNote?: string;
  maxAbsoluteOutputDifference: number;
  maxAbsoluteFloatOutput: number;
  sampleItems: number;
  /** Where the sample came from: the calibration dataset, else the evaluation dataset, else generated values in [0, 1). */
  sampleSource: 'calibration' | 'evaluation' | 'synthetic';
  /** At most `reportedNodesLimit` of each list (the version JSON carries the report); the counts are whole. */
  quantizedNodes: QuantizedNode[];
  floatNodes: FloatNode[];
  quantizedNodeCount: number;
  floatNodeCount: number;
  weightBytesBefore: number;
  weightBytesAfter: number;
}

const allowedFields = ['model', 'version', 'mode', 'calibrationDatasetId', 'evaluationDatasetId'];

function datasetId(body: Record<string, unknown>, field: 'calibrationDatasetId' | 'evaluationDatasetId'): string | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || value.length === 0 || value.length > 64) {
    throw new AiaasError('INVALID_REQUEST', `${field} must be a dataset id`, { details: { field } });
  }
  return value;
}

/** Validates `{model, version, mode, calibrationDatasetId?, evaluationDatasetId?}`. */
export function parseQuantizeRequest(body: Record<string, unknown>): { model: string; settings: QuantizeSettings } {
  for (const key of Object.keys(body)) {
    if (!allowedFields.includes(key)) throw new AiaasError('INVALID_REQUEST', `Unknown field '${key}'`, { details: { field: key, allowed: allowedFields } });
  }
  const model = validateName('model', body.model);
  if (typeof body.version !== 'number' || !Number.isSafeInteger(body.version) || body.version < 1) {
    throw new AiaasError('INVALID_REQUEST', 'version must be a version number (1 or more)', { details: { field: 'version' } });
  }
  if (!(quantizationModes as readonly unknown[]).includes(body.mode)) {
    throw new AiaasError('INVALID_REQUEST', `mode: expected one of ${quantizationModes.join(', ')}, got ${JSON.stringify(body.mode ?? null)}`, {
      details: { field: 'mode', allowed: quantizationModes },
    });
  }
  const calibrationDatasetId = datasetId(body, 'calibrationDatasetId');
  const evaluationDatasetId = datasetId(body, 'evaluationDatasetId');
  return {
    model,
    settings: {
      version: body.version,
      mode: body.mode as QuantizationMode,
      ...(calibrationDatasetId === undefined ? {} : { calibrationDatasetId }),
      ...(evaluationDatasetId === undefined ? {} : { evaluationDatasetId }),
    },
  };
}

export interface ModelQuantizeOptions {
  /** The float version to quantize (tenant-scoped; VERSION_NOT_FOUND when it is gone). */
  version(tenantId: string, modelName: string, version: number): Promise<ModelVersionRecord>;
  /** Decrypts the version's model.onnx to `path`. */
  writeModelFile(tenantId: string, version: ModelVersionRecord, path: string): Promise<void>;
  /** Private directory for the plaintext files of running quantize jobs; swept at start. */
  scratchDirectory: string;
  loadDatasetSource(tenantId: string, datasetId: string): Promise<DatasetSource | undefined>;
  /** The version's spec.json, parsed, when it has one (versions trained here). */
  specOf(tenantId: string, version: ModelVersionRecord): Promise<unknown>;
  /** Registers the quantized file as a new version of the model derived from `source` (validated like an upload). */
  register(job: JobRecord, path: string, source: ModelVersionRecord): Promise<{ versionId: string; version: number }>;
  saveReport(tenantId: string, versionId: string, report: QuantizationReport): Promise<void>;
  /** The child's resident-set limit (the job memory limit). */
  memoryLimitBytes: number;
  /** Items of the sample whose largest output difference is reported (default 1,000). */
  sampleItems?: number;
  /** Timed rounds per batch size (default 100). */
  latencyRounds?: number;
  onOutput?: (text: string) => void;
}

const latencyBatches = [1, 32];
/** Nodes listed per list in a stored report: a large model's hundreds would bloat every version listing. */
export const reportedNodesLimit = 200;

/** Runs the quantize child to its reply; kills it when the job's signal aborts. */
async function runChild(start: QuantizeStart, options: ModelQuantizeOptions, signal: AbortSignal): Promise<Extract<QuantizeReply, { ok: true }>> {
  const child = forkIsolated<QuantizeStart, QuantizeReply>(quantizeChildModule, {
    memoryLimitBytes: options.memoryLimitBytes,
    ...(options.onOutput === undefined ? {} : { onOutput: options.onOutput }),
  });
  let reply: QuantizeReply | undefined;
  child.onMessage((message) => {
    reply = message;
  });
  const abort = () => child.kill();
  signal.addEventListener('abort', abort, { once: true });
  try {
    child.send(start);
    const exit = await child.exited;
    signal.throwIfAborted();
    if (reply === undefined) {
      if (exit.limit === 'memory') {
        throw new AiaasError('JOB_MEMORY_EXCEEDED', `quantizing and measuring the model exceeded the job memory limit of ${Math.round(options.memoryLimitBytes / 1024 ** 2)} MiB`, {
          details: { limitBytes: options.memoryLimitBytes, peakResidentBytes: exit.peakResidentBytes },
        });
      }
      throw new AiaasError('INTERNAL', `the quantize process ended without a result (${exit.signal === null ? `exit code ${exit.code}` : `signal ${exit.signal}`})`);
    }
    if (!reply.ok) {
      const code: ErrorCode = Object.hasOwn(errorCatalogue, reply.code) ? (reply.code as ErrorCode) : 'QUANTIZATION_UNSUPPORTED';
      throw new AiaasError(code, reply.message, reply.details === undefined ? {} : { details: reply.details });
    }
    return reply;
  } finally {
    signal.removeEventListener('abort', abort);
  }
}

/**
 * Whether IDX pixels are divided by 255 for this version, as its training loaded them: a spec with
 * input preprocessing scales in its graph and takes raw pixels; an older spec, or an imported model
 * without one, takes pixels in [0, 1] (the loader's default).
 */
function idxScalingOf(spec: unknown): boolean {
  if (spec === undefined) return true;
  try {
    return scalesIdxPixelsAtLoad(resolveSpec(spec));
  } catch {
    return true;
  }
}

/** Sets up the quantize kind; at server start, so files of a previous run are swept synchronously. */
export function createQuantizeHandler(options: ModelQuantizeOptions): { parser: JobKindParser; handler: JobKindHandler } {
  // Leftovers of a server that died mid-job: the job itself runs again when its lease expires.
  rmSync(options.scratchDirectory, { recursive: true, force: true });
  mkdirSync(options.scratchDirectory, { recursive: true, mode: 0o700 });
  const parser: JobKindParser = {
    parse: (body) => {
      const { model, settings } = parseQuantizeRequest(body);
      return { model, settings: { ...settings } };
    },
  };
  const scaleIdxPixelsFor = async (tenantId: string, version: ModelVersionRecord) => idxScalingOf(await options.specOf(tenantId, version));
  const dataset = async (tenantId: string, id: string | undefined, role: string): Promise<DatasetSource | undefined> => {
    if (id === undefined) return undefined;
    const source = await options.loadDatasetSource(tenantId, id);
    if (source === undefined) throw new AiaasError('DATASET_NOT_FOUND', `${role} dataset ${id} not found`);
    return source;
  };
  const handler: JobKindHandler = {
    async run(job: JobRecord, context: JobKindContext): Promise<JobKindResult> {
      const settings = job.settings as QuantizeSettings;
      const source = await options.version(job.tenantId, job.modelName, settings.version);
      if (source.format !== 'onnx') {
        throw new AiaasError('QUANTIZATION_UNSUPPORTED', `version ${source.version} of '${job.modelName}' is a ${source.format} model; dynamic-int8 quantizes ONNX models`);
      }
      if (Object.keys(source.savedModelRefs ?? {}).some((file) => file.startsWith('external/'))) {
        throw new AiaasError('QUANTIZATION_UNSUPPORTED', `version ${source.version} of '${job.modelName}' keeps its weights in external data files, which quantization does not read yet`);
      }
      if (source.quantization !== null) {
        throw new AiaasError('QUANTIZATION_UNSUPPORTED', `version ${source.version} of '${job.modelName}' is already quantized; quantize its float source version instead`);
      }
      const evaluation = await dataset(job.tenantId, settings.evaluationDatasetId, 'evaluation');
      const calibration = await dataset(job.tenantId, settings.calibrationDatasetId, 'calibration');
      const directory = join(options.scratchDirectory, job.id);
      await mkdir(directory, { recursive: true, mode: 0o700 });
      try {
        return await quantizeIn(directory, job, context, settings, source, evaluation, calibration);
      } finally {
        await rm(directory, { recursive: true, force: true });
      }
    },
  };

  async function quantizeIn(
    directory: string,
    job: JobRecord,
    context: JobKindContext,
    settings: QuantizeSettings,
    source: ModelVersionRecord,
    evaluation: DatasetSource | undefined,
    calibration: DatasetSource | undefined,
  ): Promise<JobKindResult> {
    const floatPath = join(directory, 'float.onnx');
    const quantizedPath = join(directory, 'quantized.onnx');
    await options.writeModelFile(job.tenantId, source, floatPath);
    await context.appendEvent('job-progress', { phase: 'quantizing', sourceVersion: source.version, bytes: (await stat(floatPath)).size });
    context.signal.throwIfAborted();
    const reply = await runChild(
      {
        floatPath,
        quantizedPath,
        signature: source.signature as ModelSignature,
        // The calibration set, when given, is the sample; accuracy always needs the evaluation set.
        ...(evaluation === undefined ? {} : { evaluation }),
        ...(calibration === undefined ? {} : { sample: calibration }),
        scaleIdxPixels: await scaleIdxPixelsFor(job.tenantId, source),
        sampleItems: options.sampleItems ?? 1000,
        latencyBatches,
        latencyRounds: options.latencyRounds ?? 100,
      },
      options,
      context.signal,
    );
    const { comparison } = reply;
    const report: QuantizationReport = {
      mode: settings.mode,
      sourceVersion: source.version,
      jobId: job.id,
      floatBytes: reply.floatBytes,
      quantizedBytes: reply.quantizedBytes,
      sizeRatio: Math.round((reply.quantizedBytes / reply.floatBytes) * 1e4) / 1e4,
      latencyRatio: comparison.latency[0]?.ratio ?? 1,
      latency: comparison.latency,
      accuracy: comparison.accuracy,
      ...(comparison.accuracyNote === undefined ? {} : { accuracyNote: comparison.accuracyNote }),
      maxAbsoluteOutputDifference: comparison.maxAbsoluteOutputDifference,
      maxAbsoluteFloatOutput: comparison.maxAbsoluteFloatOutput,
      sampleItems: comparison.sampleItems,
      sampleSource: calibration !== undefined ? 'calibration' : evaluation !== undefined ? 'evaluation' : 'synthetic',
      quantizedNodes: reply.quantizedNodes.slice(0, reportedNodesLimit),
      floatNodes: reply.floatNodes.slice(0, reportedNodesLimit),
      quantizedNodeCount: reply.quantizedNodes.length,
      floatNodeCount: reply.floatNodes.length,
      weightBytesBefore: reply.weightBytesBefore,
      weightBytesAfter: reply.weightBytesAfter,
    };
    await context.appendEvent('job-progress', { phase: 'registering', sizeRatio: report.sizeRatio, latencyRatio: report.latencyRatio, accuracy: report.accuracy });
    context.signal.throwIfAborted();
    const version = await options.register(job, quantizedPath, source);
    await options.saveReport(job.tenantId, version.versionId, report);
    return {
      versionId: version.versionId,
      summary: {
        version: version.version,
        versionId: version.versionId,
        sizeRatio: report.sizeRatio,
        latencyRatio: report.latencyRatio,
        accuracyDeltaPercentagePoints: report.accuracy?.deltaPercentagePoints ?? null,
        maxAbsoluteOutputDifference: report.maxAbsoluteOutputDifference,
        floatNodes: report.floatNodeCount,
      },
    };
  }
  return { parser, handler };
}
