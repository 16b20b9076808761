/**
 * Ollama's `/api/pull` and `/api/delete` over this server's pull jobs and model registry, for
 * `ollamaRoutes(app, {..., admin: createOllamaModelAdmin(...)})`. A pull is an ordinary pull job
 * (the same policy, quota, allow-list and job events); this adapter follows the job's events and
 * turns them into Ollama's progress objects. Both need `models:write`.
 */
import type { FastifyRequest } from 'fastify';
import { AiaasError, errorCatalogue, type ErrorCode } from '../../errors.ts';
import { isFinal, type JobService } from '../../jobs/job-service.ts';
import type { ModelRegistry } from '../../platform/model-registry.ts';
import { validateName } from '../../platform/names.ts';
import { authorize, authorizeModel } from '../auth.ts';
import type { OllamaModelAdmin } from '../routes/ollama.ts';

export interface OllamaModelAdminDeps {
  jobs: JobService;
  registry: ModelRegistry;
  /** How long to wait for a job event before re-reading (a job event wakes the wait sooner). */
  pollMs?: number;
}

interface ModelReference {
  name: string;
  selector?: string;
}

/** The job's stored failure as the error Ollama's client sees (same code and status as on /api/v1). */
function jobFailure(error: unknown): AiaasError {
  const record = (typeof error === 'object' && error !== null ? error : {}) as { code?: unknown; message?: unknown; details?: unknown };
  const code = typeof record.code === 'string' && record.code in errorCatalogue ? (record.code as ErrorCode) : 'PULL_FAILED';
  const message = typeof record.message === 'string' ? record.message : 'the pull failed';
  return new AiaasError(code, message, typeof record.details === 'object' && record.details !== null ? { details: record.details as Record<string, unknown> } : {});
}

/** A tag other than `latest` becomes an alias of the pulled version, as `ollama pull name:tag` names it. */
function aliasOf(model: ModelReference): string | undefined {
  if (model.selector === undefined || model.selector === 'latest') return undefined;
  if (/^[0-9]+$/.test(model.selector)) throw new AiaasError('INVALID_REQUEST', 'a pull cannot choose the version number; use NAME or NAME:ALIAS');
  return validateName('alias', model.selector);
}

export function createOllamaModelAdmin(deps: OllamaModelAdminDeps): OllamaModelAdmin {
  const pollMs = deps.pollMs ?? 1000;

  async function* pull(request: FastifyRequest, model: ModelReference, source: { url: string; sha256?: string }, signal: AbortSignal): AsyncGenerator<Record<string, unknown>> {
    const principal = authorize(request, 'models:write');
    authorizeModel(request, model.name);
    const alias = aliasOf(model);
    const { tenantId } = principal;
    const job = await deps.jobs.submitKind(tenantId, 'pull', { model: model.name, url: source.url, ...(source.sha256 === undefined ? {} : { sha256: source.sha256 }) }, principal.allowedModels);
    // Ollama's clients key their progress bars by digest; the expected one, or the job's id until the file is hashed.
    const digest = source.sha256 === undefined ? job.id : `sha256:${source.sha256.replace(/^sha256:/, '').toLowerCase()}`;
    let wake: (() => void) | undefined;
    const unsubscribe = deps.jobs.onJobEvent((changed) => {
      if (changed === job.id) wake?.();
    });
    const onAbort = () => wake?.();
    signal.addEventListener('abort', onAbort);
    let afterId = 0;
    let finished = false;
    try {
      yield { status: 'pulling manifest' };
      while (!signal.aborted) {
        const events = await deps.jobs.events(tenantId, job.id, afterId);
        for (const event of events) {
          afterId = event.id;
          const payload = (event.payload ?? {}) as Record<string, unknown>;
          if (event.type === 'job-progress' && payload.phase === 'downloading') {
            yield { status: `pulling ${digest.replace(/^sha256:/, '').slice(0, 12)}`, digest, total: payload.bytesTotal ?? undefined, completed: payload.bytesDone };
          } else if (event.type === 'job-progress' && payload.phase === 'verifying') {
            yield { status: 'verifying sha256 digest' };
          } else if (event.type === 'job-progress' && payload.phase === 'registering') {
            yield { status: 'writing manifest' };
          } else if (event.type === 'job-finished') {
            finished = true;
            if (payload.status === 'succeeded') {
              if (alias !== undefined && typeof payload.version === 'number') await deps.registry.setAlias(tenantId, model.name, alias, payload.version);
              yield { status: 'success' };
              return;
            }
            if (payload.status === 'cancelled') throw new AiaasError('PULL_FAILED', 'the pull was cancelled');
            throw jobFailure(payload.error);
          }
        }
        if (events.length > 0) continue;
        if (isFinal((await deps.jobs.record(tenantId, job.id)).status) && (await deps.jobs.events(tenantId, job.id, afterId)).length === 0) {
          throw new AiaasError('PULL_FAILED', 'the pull ended without a result');
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, pollMs);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = undefined;
      }
    } finally {
      unsubscribe();
      signal.removeEventListener('abort', onAbort);
      // The client went away (Ollama's clients cancel a pull by closing the stream): stop the download.
      if (!finished && signal.aborted) await deps.jobs.cancel(tenantId, job.id).catch(() => undefined);
    }
  }

  async function remove(request: FastifyRequest, model: ModelReference): Promise<void> {
    const principal = authorize(request, 'models:write');
    authorizeModel(request, model.name);
    const { tenantId } = principal;
    if (model.selector === undefined || model.selector === 'latest') {
      await deps.registry.deleteModel(tenantId, model.name);
    } else if (/^[0-9]{1,15}$/.test(model.selector)) {
      await deps.registry.deleteVersion(tenantId, model.name, Number(model.selector));
    } else {
      authorize(request, 'aliases:write');
      await deps.registry.deleteAlias(tenantId, model.name, model.selector);
    }
  }

  return { pull, remove };
}
