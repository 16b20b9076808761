import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type ort from 'onnxruntime-node';
import { AiaasError } from '../errors.ts';
import { signatureFromMetadata } from './onnx-runtime.ts';
import type { ModelSignature } from './runtime.ts';

export interface ValidateOptions {
  /** Wall-clock limit for the child; on expiry it is killed. */
  timeoutMs?: number;
  /** Resident-set limit for the child in bytes (see the note on `validateOnnxInChild`). */
  memoryLimitBytes?: number;
  /** How often the child's RSS is sampled. */
  memoryPollMs?: number;
  /** Replaces the child script; for tests that need a child which hangs or crashes. */
  scriptPath?: string;
}

const defaultScript = fileURLToPath(new URL('./validate-child.mjs', import.meta.url));

/** Resident set size of a process from /proc (Linux); undefined where /proc is unavailable. */
async function residentBytes(pid: number): Promise<number | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return match === null ? undefined : Number(match[1]) * 1024;
  } catch {
    return undefined;
  }
}

function reject(reason: string): AiaasError {
  return new AiaasError('INVALID_MODEL_FILE', `the uploaded file is not a loadable ONNX model: ${reason}`);
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
export async function validateOnnxInChild(bytes: Uint8Array, options: ValidateOptions = {}): Promise<ModelSignature> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const memoryLimitBytes = options.memoryLimitBytes ?? 2 * 1024 ** 3;
  const memoryPollMs = options.memoryPollMs ?? 50;
  if (bytes.byteLength === 0) throw reject('the file is empty');

  const heapMegabytes = Math.max(64, Math.floor(memoryLimitBytes / 1024 ** 2 / 2));
  const child = spawn(process.execPath, [`--max-old-space-size=${heapMegabytes}`, options.scriptPath ?? defaultScript], {
    stdio: ['pipe', 'pipe', 'pipe'],
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
          return rejectPromise(reject(`the validator crashed (${how})${tail === '' ? '' : `: ${tail}`}`));
        }
        if (!message.ok) return rejectPromise(reject(message.error ?? 'unknown ONNX Runtime error'));
        try {
          resolve(signatureFromMetadata(message.inputs ?? [], message.outputs ?? []));
        } catch (error) {
          rejectPromise(error);
        }
      }),
    );
    // The child may die before reading everything; that surfaces through 'close', not as an EPIPE throw.
    child.stdin.on('error', () => undefined);
    child.stdin.end(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  });
}
