/**
 * Builds the Fastify app from a ServerContext (never listens): request ids, body limits, the
 * platform error contract, security headers, authentication, the audit trail, and every route.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import Fastify, { type FastifyInstance, type FastifyPluginAsync, type FastifyReply, type FastifyRequest } from 'fastify';
import { AiaasError } from '../errors.ts';
import type { ServerContext } from '../startup/context.ts';
import { auditPlugin } from './audit.ts';
import { authorize, authorizeModel, authPlugin, routeHooks } from './auth.ts';
import { installJsonBodyParser } from './json-depth.ts';
import { handleFrameworkError, installErrorHandling, isInferenceUrl, maxPathParameterLength } from './errors.ts';
import { serializeRequestForLog } from './request-log.ts';
import { buildOpenApiDocument, type RegisteredRoute } from './openapi.ts';
import type { InferenceDeps } from './protocols/route-support.ts';
import type { RouteSchema } from './schemas/common.ts';
import { installSchemaCompilers, refuseUnknownQueryParameters } from './schemas/validation.ts';
import { jobRoutes } from './routes/jobs.ts';
import { sweepRoutes } from './routes/sweeps.ts';
import { platformRoutes } from './routes/platform/index.ts';
import { serviceRoutes, type ServiceRouteContext } from './routes/service.ts';
import type { PlatformRouteContext } from './routes/platform/support.ts';
import { tfServingRoutes } from './routes/tfserving.ts';
import { v2Routes } from './routes/v2.ts';
import { aiaasVersion } from '../version.ts';
import { modelAllowed } from '../security/roles.ts';
import { languageModelDeps } from './llm-deps.ts';
import { GenerationShutdown } from './protocols/generation-shutdown.ts';
import { trackResponse } from './served-version.ts';
import { createOllamaModelAdmin } from './protocols/ollama-model-admin.ts';
import { ollamaRoutes } from './routes/ollama.ts';
import { openAiRoutes } from './routes/openai.ts';
import { createUsageMeter, type UsageMeter } from './usage-metering.ts';
import { consoleRoutes } from './routes/console.ts';

export const serverVersion = aiaasVersion;

/** What the inference routes' dependencies use of the composition root. */
export type InferenceContext = Pick<ServerContext, 'registry' | 'manager' | 'metrics' | 'config' | 'explainer' | 'quotas' | 'bootstrap' | 'drift' | 'shadows' | 'jsonParsing'>;

/** What the app uses of the composition root: its routes' needs and its own (logging, auth, audit). */
export type AppContext = ServiceRouteContext & PlatformRouteContext & InferenceContext & Pick<ServerContext, 'logger' | 'now' | 'nowMs'>;

export interface BuildAppOptions {
  /** More routes under /api/v1, registered with `{ context }` as options (tests and extensions). */
  extraRoutes?: FastifyPluginAsync<{ context: AppContext }>;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Every route registered (method + URL), for the OpenAPI document and inventory checks. */
    registeredRoutes: RegisteredRoute[];
  }
}

const requestIdPattern = /^[A-Za-z0-9._:-]{1,128}$/;
/**
 * The OpenAI routes (/v1) and Ollama's paths (/api/<verb>, beside but never under the management
 * API at /api/v1): inference-sized bodies and no caching, like V2 and TF-Serving.
 */
function isLanguageModelUrl(rawUrl: string): boolean {
  const url = rawUrl.split('?', 1)[0]!;
  if (url === '/v1' || url.startsWith('/v1/')) return true;
  return url.startsWith('/api/') && url !== '/api/v1' && !url.startsWith('/api/v1/');
}

export function inferenceDeps(context: InferenceContext, meter: UsageMeter): InferenceDeps {
  const { registry } = context;
  /** Who may infer with `name`, as the registry's lookups take it: the caller's tenant and route key. */
  const servingScope = (request: FastifyRequest, name: string): { tenantId: string; options: { routeKey?: string } } => {
    const principal = authorize(request, 'inference');
    authorizeModel(request, name);
    const routeKey = routeKeyOf(request);
    return { tenantId: principal.tenantId, options: routeKey === undefined ? {} : { routeKey } };
  };
  return {
    async resolveModel(request: FastifyRequest, name: string, versionOrAlias?: string) {
      const { tenantId, options } = servingScope(request, name);
      return registry.resolve(tenantId, name, versionOrAlias, options);
    },
    resolveModelNow(request: FastifyRequest, name: string, versionOrAlias?: string) {
      const { tenantId, options } = servingScope(request, name);
      return registry.resolveCached(tenantId, name, versionOrAlias, options);
    },
    authorizeModelControl(request: FastifyRequest) {
      authorize(request, 'models:write');
    },
    async listModels(request: FastifyRequest) {
      const principal = authorize(request, 'inference');
      return (await registry.listForServing(principal.tenantId)).filter((model) => modelAllowed(principal.allowedModels, model.name));
    },
    manager: context.manager,
    metrics: context.metrics,
    limits: { maxTensorElements: context.config.maxTensorElements },
    onInference(request, model, protocol, outcome, measures) {
      // Billed is what a tenant got: a failed inference is recorded as a failure only.
      meter.inference(request, model, protocol, outcome, measures);
    },
    server: { name: 'aiaas', version: serverVersion },
    explainer: context.explainer,
    // The model's tenant pays: versions are tenant-scoped, so it is the caller's own tenant.
    admit: (_request, model, items) => {
      const tenantId = model.tenantId ?? context.bootstrap.tenantId;
      return context.quotas.planOf(tenantId) === undefined ? undefined : context.quotas.admit(tenantId, { predictions: items });
    },
    ...(context.drift.enabled ? { drift: context.drift } : {}),
    shadows: context.shadows,
    ...(context.jsonParsing === undefined ? {} : { jsonParsing: context.jsonParsing }),
  };
}

/** The header that makes a canary split sticky: requests with the same key get the same version. */
export const routeKeyHeader = 'x-aiaas-route-key';

function routeKeyOf(request: FastifyRequest): string | undefined {
  const value = request.headers[routeKeyHeader];
  const key = Array.isArray(value) ? value[0] : value;
  // Hashed, never stored or echoed; the cut only bounds the work.
  return key === undefined || key === '' ? undefined : key.slice(0, 1024);
}

const trackResponseHook = (request: FastifyRequest, reply: FastifyReply, done: () => void): void => {
  trackResponse(request, reply);
  done();
};

export async function buildApp(context: AppContext, options: BuildAppOptions = {}): Promise<FastifyInstance> {
  const { config } = context;
  const tls = config.tlsCert !== undefined && config.tlsKey !== undefined;
  const app = Fastify({
    // A child with our own request serializer: it replaces Fastify's, which logs the query string.
    loggerInstance: context.logger.child({}, { serializers: { req: serializeRequestForLog } }),
    bodyLimit: config.bodyLimitBytes,
    trustProxy: config.trustProxy,
    exposeHeadRoutes: false,
    requestIdHeader: false,
    genReqId: (raw) => {
      const presented = raw.headers['x-request-id'];
      return typeof presented === 'string' && requestIdPattern.test(presented) ? presented : randomUUID();
    },
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    routerOptions: { maxParamLength: maxPathParameterLength },
    frameworkErrors: handleFrameworkError,
    ...(tls ? { https: { cert: readFileSync(config.tlsCert!), key: readFileSync(config.tlsKey!) } } : {}),
  }) as unknown as FastifyInstance;

  const registeredRoutes: RegisteredRoute[] = [];
  app.decorate('registeredRoutes', registeredRoutes);
  app.addHook('onRoute', (route) => {
    // Inference bodies are tensors; uploads are files. Different sizes, different limits.
    if ((isInferenceUrl(route.url) || isLanguageModelUrl(route.url)) && route.bodyLimit === undefined) route.bodyLimit = config.inferenceBodyLimitBytes;
    // The language-model routes name the served version from where only the request is at hand
    // (llm-deps.ts); the tensor routes set it on their reply directly.
    if (isLanguageModelUrl(route.url)) route.onRequest = [...routeHooks(route.onRequest), trackResponseHook] as typeof route.onRequest;
    if (route.url.startsWith('/api/v1/')) refuseUnknownQueryParameters(route);
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const schema = route.schema as RouteSchema | undefined;
    for (const method of methods) registeredRoutes.push({ method, url: route.url, ...(schema === undefined ? {} : { schema }) });
  });

  installErrorHandling(app);
  installJsonBodyParser(app);
  installSchemaCompilers(app);

  // Callback hooks rather than async ones: they run on every request, and each async hook costs a
  // promise and a trip through the microtask queue.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    done();
  });
  app.addHook('onSend', (request, reply, payload, done) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('x-frame-options', 'DENY');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('cross-origin-resource-policy', 'same-origin');
    if (!reply.hasHeader('content-security-policy')) reply.header('content-security-policy', "default-src 'none'; frame-ancestors 'none'");
    if (request.url.startsWith('/api/') || isInferenceUrl(request.url) || isLanguageModelUrl(request.url)) reply.header('cache-control', 'no-store');
    if (tls) reply.header('strict-transport-security', 'max-age=31536000; includeSubDomains');
    done(null, payload);
  });

  await app.register(authPlugin, {
    access: context.access,
    repositories: context.repositories,
    rateLimitPerSecond: config.rateLimitPerSecond,
    rateLimitBurst: config.rateLimitBurst,
    now: context.nowMs,
  });
  await app.register(auditPlugin, { logger: context.audit });

  let document: Record<string, unknown> | undefined;
  await app.register(serviceRoutes, {
    context,
    openApiDocument: () => (document ??= buildOpenApiDocument(registeredRoutes, { version: serverVersion })),
  });
  await app.register(platformRoutes, { prefix: '/api/v1', context });
  await app.register(jobRoutes({ service: context.jobs.service, authorize }), { prefix: '/api/v1' });
  await app.register(sweepRoutes({ sweeps: context.jobs.sweeps, authorize }), { prefix: '/api/v1' });
  if (options.extraRoutes !== undefined) await app.register(options.extraRoutes, { prefix: '/api/v1', context });
  const meter = createUsageMeter(context.ledger);
  meter.install(app, (url) => isInferenceUrl(url) || isLanguageModelUrl(url));
  const deps = inferenceDeps(context, meter);
  await app.register(v2Routes, deps);
  await app.register(tfServingRoutes, deps);
  const generations = new GenerationShutdown();
  // Before the server waits for open responses: streamed generations end within the grace period.
  app.addHook('preClose', async () => generations.close(config.shutdownGraceMs));
  const llmDeps = languageModelDeps({
    shutdown: generations,
    registry: context.registry,
    manager: context.manager,
    usage: meter,
    metrics: context.metrics,
    config,
    now: context.now,
    quotas: context.quotas,
  });
  await app.register(openAiRoutes, { ...llmDeps, prefix: '/v1' });
  await app.register(ollamaRoutes, { ...llmDeps, admin: createOllamaModelAdmin({ jobs: context.jobs.service, registry: context.registry }) });
  await app.register(consoleRoutes, {});

  app.addHook('onClose', async () => {
    // Everything answered is recorded by now; a failing write is logged by the ledger and retried at context close.
    await context.ledger.flush().catch(() => undefined);
  });
  await app.ready();
  if (registeredRoutes.length === 0) throw new AiaasError('INTERNAL', 'no routes registered');
  return app;
}
