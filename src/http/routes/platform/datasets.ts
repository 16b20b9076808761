/** Dataset upload (raw body or multipart), list, get and delete. */
import type { FastifyInstance } from 'fastify';
import { AiaasError } from '../../../errors.ts';
import { datasetView, parseDatasetFormat, type DatasetUpload } from '../../../platform/datasets.ts';
import { authorize } from '../../auth.ts';
import { acceptRawBodies, isMultipart, multipartParts, parsePositiveInteger, rawBody, readQuery, type PlatformRouteOptions } from './support.ts';
import { datasetSchemas } from '../../schemas/datasets.ts';

function text(bytes: Buffer | undefined): string | undefined {
  return bytes === undefined ? undefined : bytes.toString('utf8');
}

export async function datasetRoutes(app: FastifyInstance, { context }: PlatformRouteOptions): Promise<void> {
  await app.register(async (uploads) => {
    acceptRawBodies(uploads);
    uploads.post('/datasets', { schema: datasetSchemas.upload, config: { permission: 'datasets:write', audit: { action: 'dataset.create' } } }, async (request, reply) => {
      const principal = authorize(request, 'datasets:write');
      const query = readQuery(request, ['name', 'format', 'label']);
      let upload: DatasetUpload;
      if (isMultipart(request)) {
        const parts = multipartParts(request, ['file', 'labels', 'name', 'format', 'label']);
        const file = parts.get('file');
        if (file === undefined) throw new AiaasError('INVALID_REQUEST', "multipart upload needs a 'file' part", { details: { field: 'file' } });
        const labels = parts.get('labels');
        const name = query.name ?? text(parts.get('name')?.bytes) ?? file.fileName?.replace(/(\.gz)?$/, '').replace(/\.[^.]*$/, '');
        upload = {
          name: name ?? '',
          bytes: file.bytes,
          format: parseDatasetFormat(query.format ?? text(parts.get('format')?.bytes)),
          label: query.label ?? text(parts.get('label')?.bytes),
          labelsBytes: labels?.bytes,
          fileName: file.fileName,
          labelsFileName: labels?.fileName,
        };
      } else {
        if (query.name === undefined) throw new AiaasError('INVALID_REQUEST', "'name' query parameter is required", { details: { parameter: 'name' } });
        upload = { name: query.name, bytes: rawBody(request), format: parseDatasetFormat(query.format), label: query.label };
      }
      const record = await context.datasets.upload(principal.tenantId, upload);
      request.audit = { resource: `dataset:${record.id}`, detail: { name: record.name, format: record.format, bytes: record.bytes } };
      return reply.status(201).send({ dataset: datasetView(record) });
    });
  });

  app.get('/datasets', { schema: datasetSchemas.list, config: { permission: 'datasets:read' } }, async (request) => {
    const principal = authorize(request, 'datasets:read');
    const query = readQuery(request, ['limit', 'offset']);
    const page = { limit: parsePositiveInteger(query.limit, 'limit') ?? 100, offset: parsePositiveInteger(query.offset, 'offset') ?? 0 };
    return { datasets: (await context.datasets.list(principal.tenantId, page)).map(datasetView) };
  });

  app.get<{ Params: { id: string } }>('/datasets/:id', { schema: datasetSchemas.get, config: { permission: 'datasets:read' } }, async (request) => {
    const principal = authorize(request, 'datasets:read');
    return datasetView(await context.datasets.get(principal.tenantId, request.params.id));
  });

  app.delete<{ Params: { id: string } }>('/datasets/:id', { schema: datasetSchemas.delete, config: { permission: 'datasets:write', audit: { action: 'dataset.delete' } } }, async (request, reply) => {
    const principal = authorize(request, 'datasets:write');
    request.audit = { resource: `dataset:${request.params.id}` };
    await context.datasets.delete(principal.tenantId, request.params.id);
    return reply.status(204).send();
  });
}
