import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { SweepService } from '../../jobs/sweep-service.ts';
import { eventStreams } from '../event-stream.ts';
import { sweepSchemas } from '../schemas/sweeps.ts';

export interface SweepRouteDependencies {
  sweeps: SweepService;
  authorize(request: FastifyRequest, permission: 'jobs:read' | 'jobs:write' | 'models:write'): { tenantId: string; keyId: string; allowedModels: readonly string[] | null };
  /** How long an idle leaderboard stream waits before re-reading (a change wakes it sooner). */
  eventPollMs?: number;
}

/** Hyperparameter sweeps under /api/v1: submit, read, list, cancel, register, and a live leaderboard (SSE). */
export function sweepRoutes(deps: SweepRouteDependencies): FastifyPluginAsync {
  return async (app) => {
    const eventStream = eventStreams(app, deps.eventPollMs ?? 1000);

    app.post('/sweeps', { schema: sweepSchemas.submit, config: { permission: 'jobs:write', audit: { action: 'sweep.submit' } } }, async (request, reply) => {
      const { tenantId, keyId, allowedModels } = deps.authorize(request, 'jobs:write');
      const sweep = await deps.sweeps.submit(tenantId, request.body, allowedModels, keyId);
      request.audit = { resource: `sweep:${sweep.id}`, model: sweep.model };
      return reply.code(202).header('location', `/api/v1/sweeps/${sweep.id}`).send({ sweep });
    });

    app.get('/sweeps', { schema: sweepSchemas.list, config: { permission: 'jobs:read' } }, async (request) => {
      const { tenantId, allowedModels } = deps.authorize(request, 'jobs:read');
      return { sweeps: await deps.sweeps.list(tenantId, allowedModels) };
    });

    app.get<{ Params: { id: string } }>('/sweeps/:id', { schema: sweepSchemas.get, config: { permission: 'jobs:read' } }, async (request) => {
      const { tenantId, allowedModels } = deps.authorize(request, 'jobs:read');
      return { sweep: await deps.sweeps.get(tenantId, request.params.id, allowedModels) };
    });

    app.post<{ Params: { id: string } }>('/sweeps/:id/cancel', { schema: sweepSchemas.cancel, config: { permission: 'jobs:write', audit: { action: 'sweep.cancel' } } }, async (request, reply) => {
      const { tenantId, allowedModels } = deps.authorize(request, 'jobs:write');
      const sweep = await deps.sweeps.cancel(tenantId, request.params.id, allowedModels);
      request.audit = { resource: `sweep:${sweep.id}`, model: sweep.model };
      return reply.code(202).send({ sweep });
    });

    app.post<{ Params: { id: string } }>('/sweeps/:id/register', { schema: sweepSchemas.register, config: { permission: ['models:write', 'jobs:write'], audit: { action: 'sweep.register' } } }, async (request, reply) => {
      deps.authorize(request, 'models:write');
      const { tenantId, allowedModels } = deps.authorize(request, 'jobs:write');
      const sweep = await deps.sweeps.register(tenantId, request.params.id, allowedModels);
      request.audit = { resource: `sweep:${sweep.id}`, model: sweep.model, ...(sweep.resultVersion === null ? {} : { detail: { version: sweep.resultVersion.version } }) };
      return reply.code(201).send({ sweep });
    });

    app.get<{ Params: { id: string } }>('/sweeps/:id/events', { schema: sweepSchemas.events, config: { permission: 'jobs:read' } }, async (request, reply) => {
      const { tenantId, allowedModels } = deps.authorize(request, 'jobs:read');
      const sweepId = request.params.id;
      await deps.sweeps.record(tenantId, sweepId, allowedModels);
      await eventStream(request, reply, 'sweep', async (stream) => {
        let changed = true;
        const unsubscribe = deps.sweeps.onSweepChange((id) => {
          if (id !== sweepId) return;
          changed = true;
          stream.wake();
        });
        let eventId = 0;
        let last = '';
        try {
          while (!stream.closed) {
            if (changed) {
              changed = false;
              const sweep = await deps.sweeps.get(tenantId, sweepId, allowedModels);
              const text = JSON.stringify(sweep);
              if (text !== last) {
                last = text;
                stream.send(++eventId, 'sweep-leaderboard', text);
              }
              if (sweep.status !== 'running') {
                stream.send(++eventId, 'sweep-finished', JSON.stringify({ status: sweep.status, best: sweep.best, resultVersion: sweep.resultVersion }));
                break;
              }
              continue;
            }
            // Progress of a running trial (its loss) also changes the board: re-read on every poll.
            if (await stream.idle()) changed = true;
          }
        } finally {
          unsubscribe();
        }
      });
    });
  };
}
