/** Server-made backups: `POST /admin/backups` takes one into the configured backupDir, `GET` lists them. */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AiaasError } from '../../../errors.ts';
import type { BackupListing } from '../../../storage/backup/index.ts';
import { authorizeOperator } from '../../auth.ts';
import { readQuery, type PlatformRouteOptions } from './support.ts';
import { backupSchemas } from '../../schemas/backups.ts';

/**
 * A backup holds every tenant's data, so only the operator tenant's admins may take or list one,
 * and only with a key not restricted to some models (such a key must not see other models' data).
 */
function authorizeBackups(request: FastifyRequest): void {
  const principal = authorizeOperator(request, 'tenants:manage');
  if (principal.allowedModels !== null) {
    throw new AiaasError('FORBIDDEN', 'Backups cover every model of every tenant: use an operator admin key not restricted to some models', {
      details: { scope: 'operator', allowedModels: principal.allowedModels },
    });
  }
}

/** No file system paths: the client learns names, never where the server keeps them. */
function listingView(listing: BackupListing): Record<string, unknown> {
  return {
    name: listing.name,
    state: listing.state,
    createdAt: listing.createdAt,
    tenants: listing.tenants,
    artifacts: listing.artifacts,
    bytes: listing.bytes,
    problem: listing.problem,
  };
}

export async function backupRoutes(app: FastifyInstance, { context }: PlatformRouteOptions): Promise<void> {
  app.post('/admin/backups', { schema: backupSchemas.create, config: { permission: 'tenants:manage', operator: true, audit: { action: 'backup.create' } } }, async (request, reply) => {
    authorizeBackups(request);
    readQuery(request, []);
    // The destination is the server's own setting. A body naming a path is refused, not ignored.
    const body = request.body;
    if (body !== undefined && body !== null && (typeof body !== 'object' || Array.isArray(body) || Object.keys(body).length > 0)) {
      const field = typeof body === 'object' && !Array.isArray(body) ? Object.keys(body)[0] : undefined;
      throw new AiaasError('INVALID_REQUEST', 'This request takes no body: backups go to the server\'s configured backupDir under a name it chooses', {
        details: field === undefined ? {} : { field },
      });
    }
    const result = await context.backups.create();
    request.audit = { resource: `backup:${result.name}`, detail: { artifacts: result.artifacts, bytes: result.bytes, pruned: result.pruned } };
    return reply.status(201).send(result);
  });

  app.get('/admin/backups', { schema: backupSchemas.list, config: { permission: 'tenants:manage', operator: true, audit: { action: 'backup.list' } } }, async (request) => {
    authorizeBackups(request);
    readQuery(request, []);
    return { backups: (await context.backups.list()).map(listingView) };
  });
}
