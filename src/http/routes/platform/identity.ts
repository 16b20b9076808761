/** `/me`, tenants (operator admins) and API keys (tenant admins). */
import type { FastifyInstance } from 'fastify';
import { AiaasError } from '../../../errors.ts';
import { isRole, permissionsOf, scopeWithin, type Role } from '../../../security/roles.ts';
import type { ApiKeyRecord, TenantRecord } from '../../../storage/index.ts';
import { authorize, authorizeOperator, requirePrincipal } from '../../auth.ts';
import { readJsonObject, requireString, type PlatformRouteOptions } from './support.ts';
import { identitySchemas } from '../../schemas/identity.ts';

/** Never the hash: a key's secret is shown once at creation and stored only as an HMAC. */
export function keyView(record: ApiKeyRecord): Record<string, unknown> {
  return {
    id: record.id,
    name: record.name,
    prefix: record.prefix,
    role: record.role,
    allowedModels: record.allowedModels ?? null,
    createdAt: record.createdAt,
    expiresAt: record.expiresAt,
    revokedAt: record.revokedAt,
    lastUsedAt: record.lastUsedAt,
  };
}

/** Whether a key limited to `own` may hand out `requested` (null or absent: every model). */
function withinAllowList(own: readonly string[] | null, requested: unknown): boolean {
  if (own === null || own.includes('*')) return true;
  return Array.isArray(requested) && requested.every((model) => typeof model === 'string' && model !== '*' && own.includes(model));
}

function tenantView(record: TenantRecord): Record<string, unknown> {
  return { id: record.id, name: record.name, createdAt: record.createdAt };
}

export async function identityRoutes(app: FastifyInstance, { context }: PlatformRouteOptions): Promise<void> {
  app.get('/me', { schema: identitySchemas.me }, async (request) => {
    const principal = requirePrincipal(request);
    const key = await context.repositories.apiKeys.get(principal.tenantId, principal.keyId);
    return {
      tenant: { id: principal.tenantId, name: principal.tenantName, operator: principal.isOperator },
      key: {
        id: principal.keyId,
        name: principal.keyName,
        prefix: key?.prefix ?? null,
        role: principal.role,
        allowedModels: principal.allowedModels,
        expiresAt: key?.expiresAt ?? null,
      },
      permissions: permissionsOf(principal.role),
    };
  });

  // ---- tenants: across tenants, so reserved to the operator tenant's admins

  app.post('/tenants', { schema: identitySchemas.createTenant, config: { permission: 'tenants:manage', operator: true, audit: { action: 'tenant.create' } } }, async (request, reply) => {
    authorizeOperator(request, 'tenants:manage');
    const body = readJsonObject(request, ['name']);
    const { tenant, adminKey } = await context.access.createTenant(requireString(body, 'name'));
    request.audit = { resource: `tenant:${tenant.id}`, detail: { name: tenant.name, adminKeyId: adminKey.record.id } };
    return reply.status(201).send({
      tenant: tenantView(tenant),
      adminKey: { id: adminKey.record.id, key: adminKey.key, prefix: adminKey.record.prefix, role: adminKey.record.role },
    });
  });

  app.get('/tenants', { schema: identitySchemas.listTenants, config: { permission: 'tenants:manage', operator: true, audit: { action: 'tenant.list' } } }, async (request) => {
    authorizeOperator(request, 'tenants:manage');
    return { tenants: (await context.repositories.tenants.list()).map(tenantView) };
  });

  app.delete<{ Params: { id: string } }>('/tenants/:id', { schema: identitySchemas.deleteTenant, config: { permission: 'tenants:manage', operator: true, audit: { action: 'tenant.delete' } } }, async (request, reply) => {
    authorizeOperator(request, 'tenants:manage');
    request.audit = { resource: `tenant:${request.params.id}` };
    if (!(await context.access.deleteTenant(request.params.id))) {
      throw new AiaasError('NOT_FOUND', `Tenant '${request.params.id}' not found`, { details: { tenantId: request.params.id } });
    }
    return reply.status(204).send();
  });

  // ---- keys of the caller's tenant

  app.post('/keys', { schema: identitySchemas.createKey, config: { permission: 'keys:manage', audit: { action: 'key.create' } } }, async (request, reply) => {
    const principal = authorize(request, 'keys:manage');
    const body = readJsonObject(request, ['name', 'role', 'allowedModels', 'expiresAt']);
    if (!withinAllowList(principal.allowedModels, body.allowedModels)) {
      throw new AiaasError('FORBIDDEN', "A key restricted to some models can only create keys restricted to a subset of them", {
        details: { field: 'allowedModels', allowedModels: principal.allowedModels },
      });
    }
    // Admin holds every permission today; the check keeps "no key mints a wider one" true if roles change.
    if (isRole(body.role) && !scopeWithin({ role: body.role, allowedModels: principal.allowedModels }, principal)) {
      throw new AiaasError('FORBIDDEN', 'A key can only create keys whose permissions are a subset of its own', {
        details: { field: 'role', role: body.role },
      });
    }
    const created = await context.access.createKey(principal.tenantId, {
      name: requireString(body, 'name'),
      role: body.role as Role,
      allowedModels: body.allowedModels === undefined || body.allowedModels === null ? undefined : (body.allowedModels as string[]),
      expiresAt: body.expiresAt === undefined || body.expiresAt === null ? undefined : (body.expiresAt as string),
      creatorExpiresAt: principal.expiresAt,
    });
    request.audit = { resource: `key:${created.record.id}`, detail: { role: created.record.role, name: created.record.name } };
    return reply.status(201).send({ ...keyView(created.record), key: created.key });
  });

  app.get('/keys', { schema: identitySchemas.listKeys, config: { permission: 'keys:manage', audit: { action: 'key.list' } } }, async (request) => {
    const principal = authorize(request, 'keys:manage');
    return { keys: (await context.access.listKeys(principal.tenantId, principal)).map(keyView) };
  });

  app.delete<{ Params: { id: string } }>('/keys/:id', { schema: identitySchemas.revokeKey, config: { permission: 'keys:manage', audit: { action: 'key.revoke' } } }, async (request, reply) => {
    const principal = authorize(request, 'keys:manage');
    request.audit = { resource: `key:${request.params.id}` };
    // Revoking twice is a no-op; an unknown key, another tenant's, or one wider than the caller's is a 404.
    if (!(await context.access.revokeKey(principal.tenantId, request.params.id, principal))) {
      throw new AiaasError('NOT_FOUND', `API key '${request.params.id}' not found`, { details: { keyId: request.params.id } });
    }
    return reply.status(204).send();
  });
}
