import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { SweepService } from '../../jobs/sweep-service.ts';
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
    const openStreams = new Set<() => void>();
    app.addHook('preClose', async () => {
      for (const end of openStreams) end();
    });

    app.post('/sweeps', { schema: sweepSchemas.submit, config: { audit: { action: 'sweep.submit' } } }, async (request, reply) => {
      const { tenantId, keyId, allowedModels } = deps.authorize(request, 'jobs:write');
      const sweep = await deps.sweeps.submit(tenantId, request.body, allowedModels, keyId);
      request.audit = { resource: `sweep:${sweep.id}`, model: sweep.model };
      return reply.code(202).header('location', `/api/v1/sweeps/${sweep.id}`).send({ sweep });
    });

    app.get('/sweeps', { schema: sweepSchemas.list }, async (request) => {
      const { tenantId, allowedModels } = deps.authorize(request, 'jobs:read');
      return { sweeps: await deps.sweeps.list(tenantId, allowedModels) };
    });

    app.get<{ Params: { id: string } }>('/sweeps/:id', { schema: sweepSchemas.get }, async (request) => {
      const { tenantId, allowedModels } = deps.authorize(request, 'jobs:read');
      return { sweep: await deps.sweeps.get(tenantId, request.params.id, allowedModels) };
    });

    app.post<{ Params: { id: string } }>('/sweeps/:id/cancel', { schema: sweepSchemas.cancel, config: { audit: { action: 'sweep.cancel' } } }, async (request, reply) => {
      const { tenantId, allowedModels } = deps.authorize(request, 'jobs:write');
      const sweep = await deps.sweeps.cancel(tenantId, request.params.id, allowedModels);
      request.audit = { resource: `sweep:${sweep.id}`, model: sweep.model };
      return reply.code(202).send({ sweep });
    });

    app.post<{ Params: { id: string } }>('/sweeps/:id/register', { schema: sweepSchemas.register, config: { audit: { action: 'sweep.register' } } }, async (request, reply) => {
      deps.authorize(request, 'models:write');
      const { tenantId, allowedModels } = deps.authorize(request, 'jobs:write');
      const sweep = await deps.sweeps.register(tenantId, request.params.id, allowedModels);
      request.audit = { resource: `sweep:${sweep.id}`, model: sweep.model, ...(sweep.resultVersion === null ? {} : { detail: { version: sweep.resultVersion.version } }) };
      return reply.code(201).send({ sweep });
    });

    app.get<{ Params: { id: string } }>('/sweeps/:id/events', { schema: sweepSchemas.events }, async (request, reply) => {
      const { tenantId, allowedModels } = deps.authorize(request, 'jobs:read');
      const sweepId = request.params.id;
      await deps.sweeps.record(tenantId, sweepId, allowedModels);
      reply.hijack();
      const response = reply.raw;
      response.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
        'x-content-type-options': 'nosniff',
      });
      response.write(': aiaas sweep events\n\n');
      let closed = false;
      let changed = true;
      let wakeUp: (() => void) | undefined;
      const unsubscribe = deps.sweeps.onSweepChange((id) => {
        if (id !== sweepId) return;
        changed = true;
        wakeUp?.();
      });
      const end = () => {
        closed = true;
        wakeUp?.();
      };
      openStreams.add(end);
      response.on('close', end);
      const pollMs = deps.eventPollMs ?? 1000;
      let eventId = 0;
      let last = '';
      try {
        while (!closed) {
          if (changed) {
            changed = false;
            const sweep = await deps.sweeps.get(tenantId, sweepId, allowedModels);
            const text = JSON.stringify(sweep);
            if (text !== last) {
              last = text;
              response.write(`id: ${++eventId}\nevent: sweep-leaderboard\ndata: ${text}\n\n`);
            }
            if (sweep.status !== 'running') {
              response.write(`id: ${++eventId}\nevent: sweep-finished\ndata: ${JSON.stringify({ status: sweep.status, best: sweep.best, resultVersion: sweep.resultVersion })}\n\n`);
              break;
            }
            continue;
          }
          await new Promise<void>((resolve) => {
            const timer = setTimeout(() => {
              // Progress of a running trial (its loss) also changes the board: re-read on every poll.
              changed = true;
              resolve();
            }, pollMs);
            wakeUp = () => {
              clearTimeout(timer);
              resolve();
            };
          });
          wakeUp = undefined;
          if (!closed) response.write(': keep-alive\n\n');
        }
      } catch (error) {
        request.log.error({ err: error }, 'sweep event stream failed');
      } finally {
        openStreams.delete(end);
        unsubscribe();
        if (!response.writableEnded) response.end();
      }
    });
  };
}
