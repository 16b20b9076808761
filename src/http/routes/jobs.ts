import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { AiaasError } from '../../errors.ts';
import { jobKinds, jobStatuses } from '../../storage/repositories/jobs.ts';
import type { JobKind, JobStatus } from '../../storage/schema.ts';
import { isFinal, type JobService } from '../../jobs/job-service.ts';
import { eventStreams } from '../event-stream.ts';
import { jobSchemas } from '../schemas/jobs.ts';

export interface JobRouteDependencies {
  service: JobService;
  /** The auth layer's check: returns the caller's tenant and model allow-list (null: all), or throws 401/403. */
  authorize(request: FastifyRequest, permission: 'jobs:read' | 'jobs:write'): { tenantId: string; keyId: string; allowedModels: readonly string[] | null };
  /** How long an idle event stream waits before re-reading (a job event wakes it sooner). */
  eventPollMs?: number;
}

/** Jobs of every kind (training, pulls) under /api/v1: submit, read, list, cancel, and a Server-Sent Events progress stream. */
export function jobRoutes(deps: JobRouteDependencies): FastifyPluginAsync {
  return async (app) => {
    const eventStream = eventStreams(app, deps.eventPollMs ?? 1000);

    app.post('/jobs', { schema: jobSchemas.submit, config: { permission: 'jobs:write', audit: { action: 'job.submit' } } }, async (request, reply) => {
      const { tenantId, keyId, allowedModels } = deps.authorize(request, 'jobs:write');
      const job = await deps.service.submit(tenantId, request.body, allowedModels, keyId);
      request.audit = { resource: `job:${job.id}`, model: job.model };
      return reply.code(202).header('location', `/api/v1/jobs/${job.id}`).send({ job });
    });

    app.get<{ Querystring: { status?: string; kind?: string; limit?: string; offset?: string } }>('/jobs', { schema: jobSchemas.list, config: { permission: 'jobs:read' } }, async (request) => {
      const { tenantId, allowedModels } = deps.authorize(request, 'jobs:read');
      const { status, kind, limit, offset } = request.query;
      if (kind !== undefined && !jobKinds.includes(kind as JobKind)) {
        throw new AiaasError('INVALID_REQUEST', `kind must be one of ${jobKinds.join(', ')}, got "${kind}"`);
      }
      if (status !== undefined && !jobStatuses.includes(status as JobStatus)) {
        throw new AiaasError('INVALID_REQUEST', `status must be one of ${jobStatuses.join(', ')}, got "${status}"`);
      }
      const page = (value: string | undefined, name: string, maximum: number) => {
        if (value === undefined) return undefined;
        const parsed = Number(value);
        if (!Number.isInteger(parsed) || parsed < 0 || parsed > maximum) throw new AiaasError('INVALID_REQUEST', `${name} must be an integer from 0 to ${maximum}`);
        return parsed;
      };
      const limitValue = page(limit, 'limit', 1000);
      const offsetValue = page(offset, 'offset', Number.MAX_SAFE_INTEGER);
      return {
        jobs: await deps.service.list(tenantId, {
          ...(status === undefined ? {} : { status: status as JobStatus }),
          ...(kind === undefined ? {} : { kind: kind as JobKind }),
          ...(limitValue === undefined ? {} : { limit: limitValue }),
          ...(offsetValue === undefined ? {} : { offset: offsetValue }),
        }, allowedModels),
      };
    });

    app.get<{ Params: { id: string } }>('/jobs/:id', { schema: jobSchemas.get, config: { permission: 'jobs:read' } }, async (request) => {
      const { tenantId, allowedModels } = deps.authorize(request, 'jobs:read');
      return { job: await deps.service.get(tenantId, request.params.id, allowedModels) };
    });

    app.post<{ Params: { id: string } }>('/jobs/:id/cancel', { schema: jobSchemas.cancel, config: { permission: 'jobs:write', audit: { action: 'job.cancel' } } }, async (request, reply) => {
      const { tenantId, allowedModels } = deps.authorize(request, 'jobs:write');
      const job = await deps.service.cancel(tenantId, request.params.id, allowedModels);
      request.audit = { resource: `job:${job.id}`, model: job.model };
      return reply.code(202).send({ job });
    });

    app.get<{ Params: { id: string }; Querystring: { after?: string } }>('/jobs/:id/events', { schema: jobSchemas.events, config: { permission: 'jobs:read' } }, async (request, reply) => {
      const { tenantId, allowedModels } = deps.authorize(request, 'jobs:read');
      const jobId = request.params.id;
      await deps.service.record(tenantId, jobId, allowedModels);
      const resumeFrom = request.headers['last-event-id'] ?? request.query.after ?? '0';
      let afterId = Number(resumeFrom);
      if (!Number.isInteger(afterId) || afterId < 0) throw new AiaasError('INVALID_REQUEST', `Last-Event-ID / after must be a non-negative integer, got "${String(resumeFrom)}"`);

      await eventStream(request, reply, 'job', async (stream) => {
        const unsubscribe = deps.service.onJobEvent((changed) => {
          if (changed === jobId) stream.wake();
        });
        try {
          while (!stream.closed) {
            const events = await deps.service.events(tenantId, jobId, afterId);
            for (const event of events) {
              stream.send(event.id, event.type, JSON.stringify(event.payload));
              afterId = event.id;
            }
            if (events.length > 0) continue;
            const job = await deps.service.record(tenantId, jobId);
            if (isFinal(job.status)) {
              // Events written just before the status change are already read; one more read closes the gap.
              const tail = await deps.service.events(tenantId, jobId, afterId);
              for (const event of tail) stream.send(event.id, event.type, JSON.stringify(event.payload));
              break;
            }
            await stream.idle();
          }
        } finally {
          unsubscribe();
        }
      });
    });
  };
}
