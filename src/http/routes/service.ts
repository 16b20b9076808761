/** Unauthenticated service routes: health, readiness, Prometheus metrics, the OpenAPI document and its page. */
import { stat } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import type { ServerContext } from '../../startup/context.ts';
import { modelAllowed } from '../../security/roles.ts';
import { authorize, type Principal } from '../auth.ts';
import { prometheusContentType, type Labels } from '../metrics.ts';
import { renderDocsPage } from '../openapi.ts';
import { serviceSchemas } from '../schemas/service.ts';

/** What the service routes use of the composition root. */
export type ServiceRouteContext = Pick<ServerContext, 'config' | 'database' | 'artifactStore' | 'repositories' | 'metrics' | 'manager'>;

export interface ServiceRouteOptions {
  context: ServiceRouteContext;
  /** Built lazily: the document lists every route, which exist only once the app is ready. */
  openApiDocument: () => Record<string, unknown>;
}

export async function serviceRoutes(app: FastifyInstance, { context, openApiDocument }: ServiceRouteOptions): Promise<void> {
  const config = { public: true } as const;
  app.get('/healthz', { schema: serviceSchemas.health, config }, async () => ({ status: 'ok' }));

  app.get('/readyz', { schema: serviceSchemas.ready, config }, async (request, reply) => {
    try {
      await sql`select 1`.execute(context.database.db);
      if (!(await stat(context.artifactStore.rootDir)).isDirectory()) throw new Error('artifact root is not a directory');
      return { status: 'ready' };
    } catch (error) {
      request.log.warn({ err: error }, 'readiness check failed');
      return reply.status(503).send({ status: 'unavailable' });
    }
  });

  // Public only when the operator says so (--metrics-public); otherwise a key with metrics:read.
  app.get('/metrics', { schema: serviceSchemas.metrics, config: { public: context.config.metricsPublic } }, async (request, reply) => {
    const include = context.config.metricsPublic ? undefined : seriesVisibleTo(authorize(request, 'metrics:read'));
    context.metrics.jobCounts(await context.repositories.jobs.countByTenantAndStatus());
    context.metrics.languageModelLoad(
      context.manager.languageModelLoad().map(({ key, running, waiting }) => ({
        ...(key.tenantId === undefined ? {} : { tenant: key.tenantId }),
        model: key.name ?? key.versionId,
        version: key.version ?? '',
        running,
        waiting,
      })),
    );
    return reply.type(prometheusContentType).send(context.metrics.render(include));
  });

  app.get('/openapi.json', { schema: serviceSchemas.openApi, config }, async () => openApiDocument());

  // Public and unchanging once the app is ready: rendered on first request only.
  let docsPage: string | undefined;
  app.get('/docs', { schema: serviceSchemas.docs, config }, async (_request, reply) =>
    reply
      .type('text/html; charset=utf-8')
      // The page has no scripts; inline styles only.
      .header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
      .send((docsPage ??= renderDocsPage(openApiDocument()))),
  );
}

/**
 * Which series a key reads: an unrestricted operator key every series; any other key only its own
 * tenant's, and a key restricted to some models only the series of those models. Server-wide
 * series (no tenant label) say how busy the whole server is, so they are the operator's.
 */
export function seriesVisibleTo(principal: Principal): ((labels: Labels) => boolean) | undefined {
  const restricted = principal.allowedModels !== null && !principal.allowedModels.includes('*');
  if (principal.isOperator && !restricted) return undefined;
  return (labels) => {
    if (labels.tenant !== principal.tenantId) return false;
    if (!restricted) return true;
    return labels.model !== undefined && modelAllowed(principal.allowedModels, labels.model);
  };
}
