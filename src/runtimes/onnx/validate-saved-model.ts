/**
 * Builds a network from an uploaded saved model's spec.json and model.safetensors in a child process
 * with a time and memory limit, like every other model-file check: the server's main thread only
 * reads headers (engine/parameters.ts `checkSavedModelHeaders`), and whatever the build costs is
 * paid, and bounded, elsewhere.
 */
import { AiaasError, errorCatalogue, type ErrorCode } from '../../errors.ts';
import { forkIsolated, siblingModule } from '../isolated-process.ts';

export interface SavedModelCheckRequest {
  spec: Uint8Array;
  weights: Uint8Array;
}

export type SavedModelCheckReply = { ok: true; parameters: number } | { ok: false; code: string; message: string };

export interface ValidateSavedModelOptions {
  /** Wall-clock limit for the child; on expiry it is killed. */
  timeoutMs?: number;
  /** Resident-set limit of the child in bytes. */
  memoryLimitBytes?: number;
  memoryPollMs?: number;
}

const childModule = siblingModule(import.meta.url, 'validate-saved-model-child');
const mebibyte = 1024 * 1024;

function reject(reason: string): AiaasError {
  return new AiaasError('INVALID_MODEL_FILE', `the network could not be built from spec.json and model.safetensors: ${reason}`);
}

/** Resolves with the network's parameter count once it has been built and released in the child. */
export async function validateSavedModelInChild(spec: Uint8Array, weights: Uint8Array, options: ValidateSavedModelOptions = {}): Promise<number> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const memoryLimitBytes = options.memoryLimitBytes ?? 2 * 1024 ** 3;
  const child = forkIsolated<SavedModelCheckRequest, SavedModelCheckReply>(childModule, {
    memoryLimitBytes,
    timeoutMs,
    ...(options.memoryPollMs === undefined ? {} : { memoryPollMs: options.memoryPollMs }),
  });
  let reply: SavedModelCheckReply | undefined;
  child.onMessage((message) => {
    reply = message;
    child.kill();
  });
  child.send({ spec, weights });
  const exit = await child.exited;
  if (reply === undefined) {
    if (exit.limit === 'memory') throw reject(`building it exceeded the memory limit of ${Math.round(memoryLimitBytes / mebibyte)} MiB`);
    if (exit.limit === 'time') throw reject(`building it did not finish within ${timeoutMs} ms`);
    throw reject(`the checking process ended unexpectedly (${exit.signal === null ? `exit code ${exit.code}` : `signal ${exit.signal}`})`);
  }
  if (reply.ok) return reply.parameters;
  // The engine's own codes (INVALID_SPEC, INVALID_WEIGHTS) pass through; anything else is a bad file.
  const code: ErrorCode = Object.hasOwn(errorCatalogue, reply.code) && errorCatalogue[reply.code as ErrorCode].status === 400 ? (reply.code as ErrorCode) : 'INVALID_MODEL_FILE';
  throw new AiaasError(code, reply.message);
}
