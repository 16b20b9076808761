/**
 * Model pulls: a background job (kind `pull`) that downloads a model file from a URL the tenant
 * names, verifies its sha256 and registers it as a new version through the registry's normal path
 * (so the same validation applies as to an upload). Submitted by `POST /api/v1/models/:name/versions`
 * with a JSON body, `POST /api/v1/jobs` with `kind: "pull"`, or Ollama's `/api/pull`.
 */
import { createReadStream, mkdirSync, rmSync } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { AiaasError } from '../errors.ts';
import type { JobKindContext, JobKindHandler, JobKindParser, JobKindResult } from '../jobs/job-types.ts';
import type { JobRecord } from '../storage/repositories/jobs.ts';
import { downloadToFile } from './download.ts';
import type { AddVersionOptions, ModelRegistry } from './model-registry.ts';
import { validateName } from './names.ts';
import { checkUrl, type PullPolicy } from './pull-policy.ts';

/** What a pull job stores (sealed) as its settings. `url` is as submitted; hf:// is mapped when it runs. */
export interface PullSettings {
  url: string;
  /** Lowercase hex, when the submitter gave one. */
  sha256?: string;
}

const hfPrefix = 'hf://';

/**
 * `hf://OWNER/REPO/PATH/FILE.gguf` is shorthand for Hugging Face's resolve URL on the main branch,
 * `https://huggingface.co/OWNER/REPO/resolve/main/PATH/FILE.gguf`. Other URLs pass through.
 */
export function resolvePullUrl(text: string): URL {
  if (text.startsWith(hfPrefix)) {
    const parts = text.slice(hfPrefix.length).split('/');
    if (parts.length < 3 || parts.some((part) => part === '' || part === '.' || part === '..')) {
      throw new AiaasError('INVALID_REQUEST', `url: expected hf://OWNER/REPO/FILE, got ${JSON.stringify(text)}`, { details: { field: 'url' } });
    }
    const [owner, repository, ...file] = parts.map(encodeURIComponent);
    return new URL(`https://huggingface.co/${owner}/${repository}/resolve/main/${file.join('/')}`);
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new AiaasError('INVALID_REQUEST', `url: expected an http(s):// or hf:// URL, got ${JSON.stringify(text)}`, { details: { field: 'url' } });
  }
  return url;
}

/** Validates `{model, url, sha256?}` and applies what can be checked before the job runs (scheme, allow-list, IP literals). */
export function parsePullRequest(body: Record<string, unknown>, policy: PullPolicy): { model: string; settings: PullSettings } {
  for (const key of Object.keys(body)) {
    if (!['model', 'url', 'sha256'].includes(key)) throw new AiaasError('INVALID_REQUEST', `Unknown field '${key}'`, { details: { field: key, allowed: ['model', 'url', 'sha256'] } });
  }
  const model = validateName('model', body.model);
  if (typeof body.url !== 'string' || body.url.length > 4096) {
    throw new AiaasError('INVALID_REQUEST', 'url is required: an http(s):// or hf://OWNER/REPO/FILE URL (at most 4096 characters)', { details: { field: 'url' } });
  }
  checkUrl(policy, resolvePullUrl(body.url));
  let sha256: string | undefined;
  if (body.sha256 !== undefined) {
    if (typeof body.sha256 !== 'string' || !/^(sha256:)?[0-9a-fA-F]{64}$/.test(body.sha256)) {
      throw new AiaasError('INVALID_REQUEST', 'sha256 must be 64 hex digits (optionally prefixed with "sha256:")', { details: { field: 'sha256' } });
    }
    sha256 = body.sha256.replace(/^sha256:/, '').toLowerCase();
  }
  return { model, settings: { url: body.url, ...(sha256 === undefined ? {} : { sha256 }) } };
}

export interface ModelPullOptions {
  policy: PullPolicy;
  /** Largest file a pull downloads (the registry's maxModelBytes). */
  maxBytes: number;
  /** Private directory for files being downloaded (plaintext until registered); swept at start. */
  temporaryDirectory: string;
  /** Turns the downloaded, verified file into a model version; see `registerPulledFile`. */
  register(job: JobRecord, path: string): Promise<{ versionId: string; version: number }>;
  maxResumes?: number;
}

/** Reports progress at most about every 1 % (and at least every 8 MiB): cheap for the event log, steady for watchers. */
function progressStep(total: number | undefined): number {
  return total === undefined ? 8 * 1024 * 1024 : Math.max(1, Math.min(8 * 1024 * 1024, Math.floor(total / 100)));
}

/** Sets up the pull kind; at server start, so leftovers of a previous run are swept synchronously. */
export function createPullHandler(options: ModelPullOptions): { parser: JobKindParser; handler: JobKindHandler } {
  // Files here are from a previous run that died mid-download (one server per data directory):
  // its job restarts from byte 0 when its lease expires.
  rmSync(options.temporaryDirectory, { recursive: true, force: true });
  mkdirSync(options.temporaryDirectory, { recursive: true, mode: 0o700 });
  const parser: JobKindParser = {
    parse: (body) => {
      const { model, settings } = parsePullRequest(body, options.policy);
      return { model, settings: { ...settings } };
    },
  };
  const handler: JobKindHandler = {
    async run(job: JobRecord, context: JobKindContext): Promise<JobKindResult> {
      const settings = job.settings as PullSettings;
      const url = resolvePullUrl(settings.url);
      const path = join(options.temporaryDirectory, `${job.id}.part`);
      let reported = 0;
      let reporting: Promise<void> = Promise.resolve();
      let latest: { bytesDone: number; bytesTotal: number | null } = { bytesDone: 0, bytesTotal: null };
      const report = () => {
        reported = latest.bytesDone;
        const payload = { phase: 'downloading', ...latest };
        reporting = reporting.then(() => context.appendEvent('job-progress', payload));
      };
      try {
        await context.appendEvent('job-progress', { phase: 'connecting', host: url.host });
        const result = await downloadToFile(url, path, {
          policy: options.policy,
          maxBytes: options.maxBytes,
          signal: context.signal,
          ...(options.maxResumes === undefined ? {} : { maxResumes: options.maxResumes }),
          onProgress: (bytesDone, bytesTotal) => {
            latest = { bytesDone, bytesTotal: bytesTotal ?? null };
            if (bytesDone - reported >= progressStep(bytesTotal) || bytesDone === bytesTotal) report();
          },
          onResume: (fromByte) => {
            reporting = reporting.then(() => context.appendEvent('download-resumed', { fromByte }));
          },
        });
        if (reported !== latest.bytesDone) report();
        await reporting;
        await context.appendEvent('job-progress', { phase: 'verifying', bytesDone: result.bytes, sha256: result.sha256 });
        if (settings.sha256 !== undefined && settings.sha256 !== result.sha256) {
          throw new AiaasError('PULL_HASH_MISMATCH', `the downloaded file's sha256 is ${result.sha256}, not the expected ${settings.sha256}; nothing was registered`, {
            details: { expected: settings.sha256, actual: result.sha256, bytes: result.bytes },
          });
        }
        context.signal.throwIfAborted();
        await context.appendEvent('job-progress', { phase: 'registering' });
        const { versionId, version } = await options.register(job, path);
        return { versionId, summary: { version, versionId, bytes: result.bytes, sha256: result.sha256, resumes: result.resumes } };
      } finally {
        await reporting.catch(() => undefined);
        await rm(path, { force: true });
      }
    },
  };
  return { parser, handler };
}

/**
 * The one place a pulled file becomes a version: streamed from disk into the registry's streaming
 * add-version path (encrypted as it is stored, validated from the stored artifact), so a model is
 * never held whole in memory.
 */
export async function registerPulledFile(
  registry: ModelRegistry,
  job: JobRecord,
  path: string,
  derivation: Pick<AddVersionOptions, 'parentVersionId' | 'provenance'> = {},
): Promise<{ versionId: string; version: number }> {
  // Also how a quantize job registers its file, with the version it derives from.
  const options: AddVersionOptions = { source: 'job', createModel: true, jobId: job.id, ...derivation };
  // The format by its first bytes, as an upload's (runtimes/formats.ts).
  const handle = await open(path, 'r');
  const head = Buffer.alloc(512);
  let read: number;
  try {
    ({ bytesRead: read } = await handle.read(head, 0, head.length, 0));
  } finally {
    await handle.close();
  }
  const { version } = await registry.addVersionFromStream(job.tenantId, job.modelName, head.subarray(0, read), createReadStream(path), options);
  return { versionId: version.id, version: version.version };
}
