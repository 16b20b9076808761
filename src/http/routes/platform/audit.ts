/** The audit log: read, verify, export. */
import type { FastifyInstance } from 'fastify';
import { authorize, authorizeOperator, type Principal } from '../../auth.ts';
import { parsePositiveInteger, readQuery, type PlatformRouteOptions } from './support.ts';
import { auditSchemas } from '../../schemas/audit.ts';

/**
 * Which entries a key reads: an unrestricted operator admin the whole chain, an unrestricted admin
 * its tenant's, and a key restricted to some models only its tenant's entries about those models.
 */
function auditScope(principal: Principal): { tenantId: string | undefined; models?: readonly string[] } {
  const restricted = principal.allowedModels !== null && !principal.allowedModels.includes('*');
  if (restricted) return { tenantId: principal.tenantId, models: principal.allowedModels ?? [] };
  return { tenantId: principal.isOperator ? undefined : principal.tenantId };
}

export async function auditRoutes(app: FastifyInstance, { context }: PlatformRouteOptions): Promise<void> {
  // Operator admins read the whole chain; other tenants' admins read their own entries.
  app.get('/audit', { schema: auditSchemas.list, config: { audit: { action: 'audit.read' } } }, async (request) => {
    const principal = authorize(request, 'audit:read');
    const query = readQuery(request, ['after', 'limit']);
    const afterSeq = parsePositiveInteger(query.after, 'after');
    const limit = parsePositiveInteger(query.limit, 'limit');
    const { tenantId, models } = auditScope(principal);
    const entries = await context.audit.list(tenantId, {
      ...(afterSeq === undefined ? {} : { afterSeq }),
      ...(limit === undefined ? {} : { limit }),
      ...(models === undefined ? {} : { models }),
    });
    return { entries };
  });

  // The chain spans every tenant, so verifying it is an operator task.
  app.get('/audit/verify', { schema: auditSchemas.verify, config: { audit: { action: 'audit.verify' } } }, async (request) => {
    authorizeOperator(request, 'audit:read');
    const result = await context.audit.verify();
    return result.ok ? { ok: true, count: result.count } : { ok: false, position: result.position, seq: result.seq, reason: result.reason, message: result.message };
  });

  app.get('/audit/export', { schema: auditSchemas.export, config: { audit: { action: 'audit.export' } } }, async (request, reply) => {
    const principal = authorize(request, 'audit:read');
    readQuery(request, []);
    const { tenantId, models } = auditScope(principal);
    const lines: string[] = [];
    let afterSeq: number | undefined;
    for (;;) {
      const page = await context.audit.list(tenantId, { ...(afterSeq === undefined ? {} : { afterSeq }), limit: 1000, ...(models === undefined ? {} : { models }) });
      for (const entry of page) lines.push(JSON.stringify(entry));
      if (page.length < 1000) break;
      afterSeq = page.at(-1)!.seq;
    }
    return reply
      .type('application/x-ndjson; charset=utf-8')
      .header('content-disposition', 'attachment; filename="aiaas-audit.jsonl"')
      .send(lines.length === 0 ? '' : `${lines.join('\n')}\n`);
  });
}
