/**
 * Billing routes: plans and tenants' plans (operator admins), the caller's quota status, and the
 * caller's tenant's webhook. The work is in src/billing and src/platform/webhooks.ts.
 */
import type { FastifyInstance } from 'fastify';
import type { StoredPlan } from '../../../billing/plan-store.ts';
import { parsePlan, type Plan } from '../../../billing/plans.ts';
import { invoiceContentSecurityPolicy, invoiceCsv, invoiceHtml, invoiceJson } from '../../../billing/invoice-render.ts';
import type { FastifyRequest } from 'fastify';
import { AiaasError } from '../../../errors.ts';
import { authorize, authorizeOperator } from '../../auth.ts';
import { billingSchemas } from '../../schemas/billing.ts';
import { readJsonObject, readQuery, type PlatformRouteOptions } from './support.ts';

export async function billingRoutes(app: FastifyInstance, { context }: PlatformRouteOptions): Promise<void> {
  const { plans, quotas, webhooks, invoices } = context;

  const planView = (stored: StoredPlan): Record<string, unknown> => ({
    plan: stored.plan,
    source: stored.source,
    tenants: plans.tenantsOn(stored.plan.name).length,
    createdAt: stored.createdAt,
    updatedAt: stored.updatedAt,
  });
  const requirePlan = (name: string): StoredPlan => {
    const stored = plans.get(name);
    if (stored === undefined) throw new AiaasError('NOT_FOUND', `plan "${name.slice(0, 64)}" not found`, { details: { plan: name.slice(0, 64) } });
    return stored;
  };
  const tenantPlanView = async (tenantId: string): Promise<Record<string, unknown>> => ({
    tenantId,
    plan: plans.currentPlan(tenantId)?.name ?? null,
    history: (await plans.history(tenantId)).map((period) => ({ plan: period.planName, effectiveFrom: period.effectiveFrom, effectiveTo: period.effectiveTo })),
  });
  const requireTenant = async (tenantId: string): Promise<void> => {
    const tenant = await context.repositories.tenants.get(tenantId);
    if (tenant === undefined || tenant === null) throw new AiaasError('NOT_FOUND', `Tenant '${tenantId}' not found`, { details: { tenantId } });
  };

  // ---- plans: operator admins only (they set every tenant's prices)

  app.get('/plans', { schema: billingSchemas.listPlans }, async (request) => {
    authorizeOperator(request, 'tenants:manage');
    readQuery(request, []);
    return { plans: plans.list().map(planView) };
  });

  app.get<{ Params: { name: string } }>('/plans/:name', { schema: billingSchemas.getPlan }, async (request) => {
    authorizeOperator(request, 'tenants:manage');
    return planView(requirePlan(request.params.name));
  });

  app.post('/plans', { schema: billingSchemas.createPlan, config: { audit: { action: 'plan.create' } } }, async (request, reply) => {
    authorizeOperator(request, 'tenants:manage');
    const plan = parsePlan(request.body);
    if (plans.get(plan.name) !== undefined) throw new AiaasError('CONFLICT', `plan "${plan.name}" already exists; PUT /api/v1/plans/${plan.name} replaces it`, { details: { plan: plan.name } });
    await plans.put(plan);
    request.audit = { resource: `plan:${plan.name}` };
    return reply.status(201).send(planView(requirePlan(plan.name)));
  });

  app.put<{ Params: { name: string } }>('/plans/:name', { schema: billingSchemas.putPlan, config: { audit: { action: 'plan.put' } } }, async (request, reply) => {
    authorizeOperator(request, 'tenants:manage');
    const body = readJsonObject(request, ['name', 'currency', 'prices', 'included', 'hardCap', 'softCap', 'rateLimit', 'limits']);
    if (body['name'] !== undefined && body['name'] !== request.params.name) {
      throw new AiaasError('INVALID_REQUEST', `the body's name (${JSON.stringify(String(body['name']).slice(0, 64))}) differs from the URL's; plans are not renamed`, { details: { field: 'name' } });
    }
    const plan: Plan = parsePlan({ ...body, name: request.params.name });
    const { created } = await plans.put(plan);
    request.audit = { resource: `plan:${plan.name}`, detail: { created } };
    return reply.status(created ? 201 : 200).send(planView(requirePlan(plan.name)));
  });

  app.delete<{ Params: { name: string } }>('/plans/:name', { schema: billingSchemas.deletePlan, config: { audit: { action: 'plan.delete' } } }, async (request, reply) => {
    authorizeOperator(request, 'tenants:manage');
    request.audit = { resource: `plan:${request.params.name.slice(0, 64)}` };
    await plans.delete(request.params.name);
    return reply.status(204).send();
  });

  // ---- a tenant's plan (operator admins)

  app.get<{ Params: { id: string } }>('/tenants/:id/plan', { schema: billingSchemas.getTenantPlan }, async (request) => {
    authorizeOperator(request, 'tenants:manage');
    await requireTenant(request.params.id);
    return tenantPlanView(request.params.id);
  });

  app.put<{ Params: { id: string }; Body: { plan: string | null } }>('/tenants/:id/plan', { schema: billingSchemas.putTenantPlan, config: { audit: { action: 'tenant.plan' } } }, async (request) => {
    authorizeOperator(request, 'tenants:manage');
    await requireTenant(request.params.id);
    await plans.assign(request.params.id, request.body.plan);
    request.audit = { resource: `tenant:${request.params.id}`, detail: { plan: request.body.plan } };
    return tenantPlanView(request.params.id);
  });

  // ---- the caller's own tenant

  app.get('/quota', { schema: billingSchemas.quota }, async (request) => {
    const principal = authorize(request, 'usage:read');
    readQuery(request, []);
    return quotas.status(principal.tenantId);
  });

  app.put('/webhooks', { schema: billingSchemas.putWebhook, config: { audit: { action: 'webhook.put' } } }, async (request) => {
    const principal = authorize(request, 'keys:manage');
    const body = request.body as { url: unknown; events: unknown };
    const hook = await webhooks.set(principal.tenantId, body);
    request.audit = { resource: 'webhook', detail: { url: hook.url, events: hook.events } };
    return hook;
  });

  app.get('/webhooks', { schema: billingSchemas.getWebhook }, async (request) => {
    const principal = authorize(request, 'keys:manage');
    const hook = await webhooks.get(principal.tenantId);
    if (hook === undefined) throw new AiaasError('NOT_FOUND', 'This tenant has no webhook; PUT /api/v1/webhooks sets one');
    return hook;
  });

  app.delete('/webhooks', { schema: billingSchemas.deleteWebhook, config: { audit: { action: 'webhook.delete' } } }, async (request, reply) => {
    const principal = authorize(request, 'keys:manage');
    if (!(await webhooks.delete(principal.tenantId))) throw new AiaasError('NOT_FOUND', 'This tenant has no webhook');
    return reply.status(204).send();
  });

  app.get('/webhooks/deliveries', { schema: billingSchemas.webhookDeliveries }, async (request) => {
    const principal = authorize(request, 'keys:manage');
    readQuery(request, []);
    return { deliveries: await webhooks.deliveries(principal.tenantId) };
  });

  app.post('/webhooks/test', { schema: billingSchemas.testWebhook, config: { audit: { action: 'webhook.test' } } }, async (request, reply) => {
    const principal = authorize(request, 'keys:manage');
    const hook = await webhooks.get(principal.tenantId);
    if (hook === undefined) throw new AiaasError('NOT_FOUND', 'This tenant has no webhook; PUT /api/v1/webhooks sets one');
    await webhooks.notify(principal.tenantId, 'webhook.test', { message: 'a test event sent by POST /api/v1/webhooks/test' });
    return reply.status(202).send({ queued: hook.events.includes('webhook.test') });
  });

  // ---- invoices: the caller's tenant, or (operator admins, ?tenant=) any tenant

  /** Whose invoices: the caller's tenant; another one for unrestricted operator admins. Money covers every model, so no model-restricted keys. */
  const invoiceTenant = async (request: FastifyRequest, tenant: string | undefined): Promise<{ id: string; name: string; createdAt: string }> => {
    const principal = tenant === undefined ? authorize(request, 'usage:read') : authorizeOperator(request, 'tenants:manage');
    if (principal.allowedModels !== null && !principal.allowedModels.includes('*')) {
      throw new AiaasError('FORBIDDEN', 'Invoices cover every model of the tenant: use a key not restricted to some models', { details: { scope: 'tenant' } });
    }
    const id = tenant ?? principal.tenantId;
    const record = await context.repositories.tenants.get(id);
    if (record === undefined || record === null) throw new AiaasError('NOT_FOUND', `Tenant '${id}' not found`, { details: { tenantId: id } });
    return { id, name: record.name, createdAt: record.createdAt };
  };

  app.get<{ Querystring: { tenant?: string } }>('/invoices', { schema: billingSchemas.listInvoices }, async (request) => {
    const tenant = await invoiceTenant(request, request.query.tenant);
    const list = await invoices.list(tenant.id, new Date(tenant.createdAt));
    return { invoices: list.map((invoice) => ({ period: invoice.period, status: invoice.status, totals: invoice.totals, lines: invoice.lines.length })) };
  });

  app.get<{ Params: { period: string }; Querystring: { tenant?: string; format?: 'json' | 'csv' | 'html' } }>('/invoices/:period', { schema: billingSchemas.getInvoice }, async (request, reply) => {
    const tenant = await invoiceTenant(request, request.query.tenant);
    const invoice = await invoices.invoice(tenant.id, request.params.period);
    const format = request.query.format ?? negotiate(request.headers.accept);
    if (format === 'csv') {
      return reply
        .type('text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="invoice-${invoice.period}-${tenant.id}.csv"`)
        .send(invoiceCsv(invoice));
    }
    if (format === 'html') return reply.type('text/html; charset=utf-8').header('content-security-policy', invoiceContentSecurityPolicy).send(invoiceHtml(invoice, { tenantName: tenant.name }));
    return reply.type('application/json; charset=utf-8').send(invoiceJson(invoice));
  });
}

/** The first of CSV or HTML the Accept header names before JSON; JSON otherwise. */
function negotiate(accept: string | undefined): 'json' | 'csv' | 'html' {
  for (const part of (accept ?? '').split(',')) {
    const type = part.split(';', 1)[0]!.trim().toLowerCase();
    if (type === 'text/csv') return 'csv';
    if (type === 'text/html') return 'html';
    if (type === 'application/json') return 'json';
  }
  return 'json';
}
