/** Drift scores of a served version, and the load-test (bench) reports stored with versions. */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Static } from '@sinclair/typebox';
import { authorize, authorizeModel } from '../../auth.ts';
import type { Permission } from '../../../security/roles.ts';
import type { Principal } from '../../../platform/access.ts';
import type { VersionReportRecord } from '../../../storage/index.ts';
import { qualitySchemas, type BenchReportBody } from '../../schemas/quality.ts';
import type { PlatformRouteOptions } from './support.ts';
import { AiaasError } from '../../../errors.ts';

function authorizeOnModel(request: FastifyRequest, permission: Permission, modelName: string): Principal {
  authorize(request, permission);
  return authorizeModel(request, modelName);
}

export async function qualityRoutes(app: FastifyInstance, { context }: PlatformRouteOptions): Promise<void> {
  const { registry, drift, repositories, datasets } = context;

  // Rows of a stored dataset, for load tests that replay real inputs (`aiaas bench --dataset`).
  // The dataset is parsed whole on this thread: meant for the occasional bench run, not for serving.
  app.get<{ Params: { id: string }; Querystring: { offset?: string; limit?: string } }>('/datasets/:id/rows', { schema: qualitySchemas.datasetRows }, async (request) => {
    const principal = authorize(request, 'datasets:read');
    const offset = Number(request.query.offset ?? '0');
    const limit = Number(request.query.limit ?? '100');
    if (limit < 1 || limit > 1000) throw new AiaasError('INVALID_REQUEST', 'limit must be from 1 to 1000', { details: { parameter: 'limit' } });
    const dataset = await datasets.load(principal.tenantId, request.params.id);
    const features = dataset.featureShape.reduce((total, dimension) => total * dimension, 1);
    const labels = Math.max(1, dataset.labelShape.reduce((total, dimension) => total * dimension, 1));
    const end = Math.min(dataset.count, offset + limit);
    const rows: number[][] = [];
    const labelRows: number[][] = [];
    for (let row = offset; row < end; row++) {
      rows.push(Array.from(dataset.features.subarray(row * features, (row + 1) * features)));
      labelRows.push(Array.from(dataset.labels.subarray(row * labels, (row + 1) * labels)));
    }
    return { datasetId: request.params.id, featureShape: dataset.featureShape, labelShape: dataset.labelShape, count: dataset.count, offset, rows, labels: labelRows };
  });

  app.get<{ Params: { name: string }; Querystring: { version?: string } }>('/models/:name/drift', { schema: qualitySchemas.drift }, async (request) => {
    const principal = authorizeOnModel(request, 'models:read', request.params.name);
    const model = await registry.resolve(principal.tenantId, request.params.name, request.query.version);
    return drift.report(model);
  });

  const view = (modelName: string, version: number, record: VersionReportRecord) => ({
    id: record.id,
    model: modelName,
    version,
    createdAt: record.createdAt,
    report: record.body as Static<typeof BenchReportBody>,
  });

  app.post<{ Params: { name: string; version: string }; Body: Static<typeof BenchReportBody> }>(
    '/models/:name/versions/:version/bench-reports',
    { schema: qualitySchemas.addBenchReport, config: { audit: { action: 'bench-report.create' } } },
    async (request, reply) => {
      const principal = authorizeOnModel(request, 'models:write', request.params.name);
      const { model, version } = await registry.getVersion(principal.tenantId, request.params.name, request.params.version);
      const record = await repositories.versionReports.add(principal.tenantId, version.id, 'bench', request.body);
      request.audit = { resource: `model:${model.name}/versions/${version.version}/bench-reports/${record.id}`, model: model.name };
      return reply.status(201).send({ benchReport: view(model.name, version.version, record) });
    },
  );

  app.get<{ Params: { name: string; version: string } }>('/models/:name/versions/:version/bench-reports', { schema: qualitySchemas.listBenchReports }, async (request) => {
    const principal = authorizeOnModel(request, 'models:read', request.params.name);
    const { model, version } = await registry.getVersion(principal.tenantId, request.params.name, request.params.version);
    const records = await repositories.versionReports.list(principal.tenantId, version.id, 'bench');
    return { benchReports: records.map((record) => view(model.name, version.version, record)) };
  });
}
