import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type ort from 'onnxruntime-node';
import { AiaasError } from '../../errors.ts';
import { signatureFromMetadata } from './onnx-runtime.ts';
import { cleanRuntimeMessage } from '../runtime-errors.ts';
import type { ModelSignature } from '../runtime.ts';
import { residentBytes } from '../isolated-process.ts';

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

/**
 * Opens an uploaded model in a separate Node process so that a malicious or broken file that crashes,
 * hangs or balloons ONNX Runtime takes down only the child. Resolves with the model's signature.
 *
 * Memory limit, honestly: `--max-old-space-size` caps only the child's JavaScript heap; ONNX Runtime
 * allocates natively. So the parent also samples the child's RSS from /proc every `memoryPollMs` and
 * kills it above `memoryLimitBytes`. A spike shorter than one poll interval can slip through, and on
 * systems without /proc only the heap cap and the time limit apply.
 */
export async function validateOnnxInChild(model: ModelUpload, options: ValidateOptions = {}): Promise<ModelSignature> {
  if (model.onnx.byteLength === 0) throw reject('the file is empty');
  const { directory, modelPath } = await writeScratchModel(model, options.scratchRoot ?? tmpdir());
  try {
    return await runChild(modelPath, directory, options);
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

async function runChild(modelPath: string, directory: string, options: ValidateOptions): Promise<ModelSignature> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const memoryLimitBytes = options.memoryLimitBytes ?? 2 * 1024 ** 3;
  const memoryPollMs = options.memoryPollMs ?? 50;
  const heapMegabytes = Math.max(64, Math.floor(memoryLimitBytes / 1024 ** 2 / 2));
  const child = spawn(process.execPath, [`--max-old-space-size=${heapMegabytes}`, options.scriptPath ?? defaultScript, modelPath], {
    stdio: ['pipe', 'pipe', 'pipe'],
    // The private directory as working directory too: nothing the child resolves lands in the server's.
    cwd: directory,
    // The parent's NODE_OPTIONS may carry test-runner or tsx loader flags the child has no use for.
    env: { ...process.env, NODE_OPTIONS: '' },
  });

  return await new Promise<ModelSignature>((resolve, rejectPromise) => {
    let stdout = '';
    let stderr = '';
    let failure: AiaasError | undefined;
    let settled = false;
    const kill = (error: AiaasError): void => {
      failure ??= error;
      child.kill('SIGKILL');
    };
    const timer = setTimeout(() => kill(reject(`validation did not finish within ${timeoutMs} ms`)), timeoutMs);
    const poll = setInterval(() => {
      if (child.pid === undefined) return;
      void residentBytes(child.pid).then((rss) => {
        if (rss !== undefined && rss > memoryLimitBytes) {
          kill(reject(`validation exceeded the memory limit of ${Math.round(memoryLimitBytes / 1024 ** 2)} MiB`));
        }
      });
    }, memoryPollMs);
    const finish = (outcome: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearInterval(poll);
      outcome();
    };

    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      // Keep only the tail: a crashing child can print a lot.
      stderr = (stderr + chunk).slice(-2000);
    });
    child.on('error', (error) => finish(() => rejectPromise(new AiaasError('INTERNAL', `could not start the validator: ${error.message}`))));
    child.on('close', (code, signal) =>
      finish(() => {
        if (failure !== undefined) return rejectPromise(failure);
        const line = stdout.trim().split('\n').pop() ?? '';
        let message: { ok: boolean; error?: string; inputs?: ort.InferenceSession.ValueMetadata[]; outputs?: ort.InferenceSession.ValueMetadata[] };
        try {
          message = JSON.parse(line) as typeof message;
        } catch {
          const how = signal !== null ? `signal ${signal}` : `exit code ${code}`;
          const tail = stderr.trim().split('\n').slice(-1)[0] ?? '';
          return rejectPromise(reject(`the validator crashed (${how})${tail === '' ? '' : `: ${cleanRuntimeMessage(tail)}`}`, new Error(stderr)));
        }
        if (!message.ok) {
          const raw = message.error ?? 'unknown ONNX Runtime error';
          return rejectPromise(reject(cleanRuntimeMessage(raw), new Error(raw)));
        }
        try {
          resolve(signatureFromMetadata(message.inputs ?? [], message.outputs ?? []));
        } catch (error) {
          rejectPromise(error);
        }
      }),
    );
    // The model is read from its path; stdin only signals the start (test children wait for its end).
    child.stdin.on('error', () => undefined);
    child.stdin.end();
  });
}
