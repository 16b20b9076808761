import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type ort from 'onnxruntime-node';
import { AiaasError } from '../../errors.ts';
import { signatureFromMetadata } from './onnx-runtime.ts';
import { cleanRuntimeMessage } from '../runtime-errors.ts';
import type { ModelSignature } from '../runtime.ts';
import { runScriptInChild } from '../isolated-process.ts';

/** A model to validate: its ONNX bytes and the files its external data names, by relative location. */
export interface ModelUpload {
  /** The bytes, or (a streamed upload) a size and a way to write the plaintext to a path with bounded memory. */
  onnx: Uint8Array | ModelFileSource;
  /** Locations must already be checked safe (`isSafeRelativePath`): they become paths in the scratch directory. */
  externalData?: ReadonlyMap<string, Uint8Array>;
}

export interface ModelFileSource {
  byteLength: number;
  /** Creates `path` (0600) holding the model. */
  writeTo(path: string): Promise<void>;
}

export interface ValidateOptions {
  /** Wall-clock limit for the child; on expiry it is killed. */
  timeoutMs?: number;
  /** Resident-set limit for the child in bytes (see the note on `validateOnnxInChild`). */
  memoryLimitBytes?: number;
  /** How often the child's RSS is sampled. */
  memoryPollMs?: number;
  /** Replaces the child script; for tests that need a child which hangs or crashes. */
  scriptPath?: string;
  /**
   * Where the private (0700) directory holding the model's plaintext for the child is created and,
   * afterwards, removed; the server passes one under its data dir's `plain/`. Default: the OS temp dir.
   */
  scratchRoot?: string;
}

const defaultScript = fileURLToPath(new URL('./validate-child.mjs', import.meta.url));

function reject(reason: string, cause?: unknown): AiaasError {
  return new AiaasError('INVALID_MODEL_FILE', `the uploaded file is not a loadable ONNX model: ${reason}`, cause === undefined ? {} : { cause });
}

/**
 * Writes the model and its external data into a fresh private directory: the child opens the model
 * from a path there, so relative references resolve inside it and never against a working directory.
 */
async function writeScratchModel(model: ModelUpload, scratchRoot: string): Promise<{ directory: string; modelPath: string }> {
  await mkdir(scratchRoot, { recursive: true, mode: 0o700 });
  // mkdtemp creates the directory with mode 0700.
  const directory = await mkdtemp(join(scratchRoot, 'validate-'));
  try {
    const modelPath = join(directory, 'model.onnx');
    if (model.onnx instanceof Uint8Array) await writeFile(modelPath, model.onnx, { mode: 0o600, flag: 'wx' });
    else await model.onnx.writeTo(modelPath);
    for (const [location, bytes] of model.externalData ?? new Map<string, Uint8Array>()) {
      const path = join(directory, location);
      if (dirname(path) !== directory) await mkdir(dirname(path), { recursive: true, mode: 0o700 });
      await writeFile(path, bytes, { mode: 0o600, flag: 'wx' });
    }
    return { directory, modelPath };
  } catch (error) {
    await rm(directory, { recursive: true, force: true });
    throw error;
  }
}

/** What the child reports about a model it opened and ran once. */
export interface OnnxValidation {
  signature: ModelSignature;
  /**
   * The child's RSS after opening the model and one run on zero inputs, minus its RSS before opening
   * (ONNX Runtime and Node already loaded): what one instance of the model takes. Undefined where
   * the platform reports no RSS, or the zero run failed (then only the open was measured: see `warmupError`).
   */
  measuredMemoryBytes?: number;
  /** Why the run on zero inputs failed (inputs whose zero is not valid for the model); the open still passed. */
  warmupError?: string;
}

/**
 * Opens an uploaded model in a separate Node process so that a malicious or broken file that crashes,
 * hangs or balloons ONNX Runtime takes down only the child, runs it once on zero inputs built from
 * its signature (dynamic dimensions as 1), and measures the memory that took. Resolves with the
 * model's signature and measurement.
 *
 * Memory limit, honestly: `--max-old-space-size` caps only the child's JavaScript heap; ONNX Runtime
 * allocates natively. So the parent also samples the child's RSS from /proc every `memoryPollMs` and
 * kills it above `memoryLimitBytes`. A spike shorter than one poll interval can slip through, and on
 * systems without /proc only the heap cap and the time limit apply.
 */
export async function validateOnnxInChild(model: ModelUpload, options: ValidateOptions = {}): Promise<OnnxValidation> {
  if (model.onnx.byteLength === 0) throw reject('the file is empty');
  const { directory, modelPath } = await writeScratchModel(model, options.scratchRoot ?? tmpdir());
  try {
    return await validateOnnxFileInChild(modelPath, options);
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

/**
 * Validates and measures a model file already in a private directory (a loading version's plaintext
 * directory), with its external data beside it; the directory is the child's working directory.
 */
export async function validateOnnxFileInChild(modelPath: string, options: ValidateOptions = {}): Promise<OnnxValidation> {
  const memoryLimitBytes = options.memoryLimitBytes ?? 2 * 1024 ** 3;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const outcome = await runScriptInChild({
    script: options.scriptPath ?? defaultScript,
    arguments: [modelPath],
    cwd: dirname(modelPath),
    timeoutMs,
    memoryLimitBytes,
    ...(options.memoryPollMs === undefined ? {} : { memoryPollMs: options.memoryPollMs }),
  });
  if (outcome.kind === 'not-started') throw new AiaasError('INTERNAL', `could not start the validator: ${outcome.message}`);
  const overLimit = reject(`opening and running it once exceeded the validation memory limit of ${Math.round(memoryLimitBytes / 1024 ** 2)} MiB (validationMemoryBytes)`);
  if (outcome.kind === 'killed') throw outcome.limit === 'memory' ? overLimit : reject(`validation did not finish within ${timeoutMs} ms`);
  if (outcome.kind === 'crashed') {
    const tail = outcome.lastErrorLine;
    throw reject(`the validator crashed (${outcome.how})${tail === '' ? '' : `: ${cleanRuntimeMessage(tail)}`}`, new Error(outcome.errorOutput));
  }
  const reply = outcome.reply as {
    ok?: boolean;
    error?: string;
    inputs?: ort.InferenceSession.ValueMetadata[];
    outputs?: ort.InferenceSession.ValueMetadata[];
    memoryBytes?: unknown;
    peakResidentBytes?: unknown;
    warmupError?: unknown;
  };
  if (reply.ok !== true) {
    const raw = reply.error ?? 'unknown ONNX Runtime error';
    throw reject(cleanRuntimeMessage(raw), new Error(raw));
  }
  // A peak between two polls is caught here: the child reports the highest RSS it reached.
  if (typeof reply.peakResidentBytes === 'number' && reply.peakResidentBytes > memoryLimitBytes) throw overLimit;
  const signature = signatureFromMetadata(reply.inputs ?? [], reply.outputs ?? []);
  const measured = typeof reply.memoryBytes === 'number' && Number.isSafeInteger(reply.memoryBytes) && reply.memoryBytes > 0 ? reply.memoryBytes : undefined;
  return {
    signature,
    ...(measured === undefined ? {} : { measuredMemoryBytes: measured }),
    ...(typeof reply.warmupError === 'string' ? { warmupError: cleanRuntimeMessage(reply.warmupError) } : {}),
  };
}
