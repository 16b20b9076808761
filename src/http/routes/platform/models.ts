/** Models, versions (upload .onnx, saved-model .tar or multipart; download files) and aliases. */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AiaasError } from '../../../errors.ts';
import { modelAllowed } from '../../../security/roles.ts';
import type { Principal } from '../../../platform/access.ts';
import type { AddVersionOptions } from '../../../platform/model-registry.ts';
import { AliasChanges, aliasView } from '../../../quality/alias-changes.ts';
import { authorize, authorizeModel, authorizeOperator } from '../../auth.ts';
import type { JsonValue } from '../../../security/audit-chain.ts';
import type { Permission } from '../../../security/roles.ts';
import {
  acceptStreamedBodies,
  isMultipart,
  multipartParts,
  peekBytes,
  readJsonObject,
  readQuery,
  replayed,
  readWithin,
  refuseDeclaredOver,
  requestBodyStream,
  type PlatformRouteOptions,
} from './support.ts';
import { Readable } from 'node:stream';
import { modelSchemas } from '../../schemas/models.ts';
import { describeJsonSyntaxError } from '../../../data/json-syntax.ts';

interface NameParams {
  name: string;
}
interface VersionParams extends NameParams {
  version: string;
}

/** Role check, then the key's model allow-list (404 outside it, like a missing model). */
function authorizeOnModel(request: FastifyRequest, permission: Permission, modelName: string): Principal {
  authorize(request, permission);
  return authorizeModel(request, modelName);
}

function isTarContentType(contentType: string | undefined): boolean {
  return (contentType ?? '').toLowerCase().startsWith('application/x-tar');
}

function isTar(bytes: Uint8Array, contentType: string | undefined, fileName: string | undefined): boolean {
  if (isTarContentType(contentType)) return true;
  if (fileName?.toLowerCase().endsWith('.tar')) return true;
  // ustar magic at offset 257.
  return bytes.length >= 512 && Buffer.from(bytes.subarray(257, 262)).toString('latin1') === 'ustar';
}

/** A pull's body is a URL and a hash, never a file. */
const pullBodyLimitBytes = 64 * 1024;

function isJson(request: FastifyRequest): boolean {
  return /^application\/json\s*(;|$)/i.test(request.headers['content-type'] ?? '');
}

/** `{"url", "sha256"?}`; the model comes from the path. */
function parseJsonBody(bytes: Uint8Array): Record<string, unknown> {
  let body: unknown;
  const text = new TextDecoder().decode(bytes);
  try {
    body = JSON.parse(text);
  } catch (error) {
    throw new AiaasError('INVALID_JSON', `The request body is not valid JSON: ${describeJsonSyntaxError(text, error)}`);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new AiaasError('INVALID_REQUEST', 'A pull takes a JSON object {"url", "sha256"?}');
  if ('model' in body) throw new AiaasError('INVALID_REQUEST', "Unknown field 'model': the model is named by the path", { details: { field: 'model' } });
  return body as Record<string, unknown>;
}

/** The same stream, after its first chunk (or its end, or its error) has arrived. */
async function primed(stream: Readable): Promise<Readable> {
  const iterator = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const first = await iterator.next();
  return Readable.from(first.done === true ? [] : replayed([first.value], iterator));
}

function versionNumber(text: string): number {
  if (!/^[0-9]{1,15}$/.test(text)) {
    throw new AiaasError('INVALID_REQUEST', 'Versions are deleted by number, not by alias', { details: { version: text } });
  }
  return Number(text);
}

export async function modelRoutes(app: FastifyInstance, { context }: PlatformRouteOptions): Promise<void> {
  const registry = context.registry;
  const evaluations = context.jobs.evaluations;
  const aliasChanges = new AliasChanges({ registry, evaluations, defaultWaitSeconds: context.config.gateWaitSeconds });

  app.post('/models', { schema: modelSchemas.create, config: { permission: 'models:write', audit: { action: 'model.create' } } }, async (request, reply) => {
    const principal = authorize(request, 'models:write');
    const body = readJsonObject(request, ['name', 'description', 'batching', 'exportable', 'outputPolicy']);
    if (typeof body.name === 'string') authorizeModel(request, body.name);
    const model = await registry.createModel(principal.tenantId, {
      name: body.name as string,
      ...(body.description === undefined ? {} : { description: body.description as string }),
      ...(body.batching === undefined ? {} : { batching: body.batching }),
      ...(body.exportable === undefined ? {} : { exportable: body.exportable }),
      ...(body.outputPolicy === undefined ? {} : { outputPolicy: body.outputPolicy }),
    });
    request.audit = { resource: `model:${model.name}`, model: model.name };
    return reply.status(201).send({ model: await registry.modelView(principal.tenantId, model) });
  });

  app.get('/models', { schema: modelSchemas.list, config: { permission: 'models:read' } }, async (request) => {
    const principal = authorize(request, 'models:read');
    const models = (await registry.listModels(principal.tenantId)).filter((model) => modelAllowed(principal.allowedModels, model.name));
    return { models: await Promise.all(models.map((model) => registry.modelView(principal.tenantId, model))) };
  });

  app.get<{ Params: NameParams }>('/models/:name', { schema: modelSchemas.get, config: { permission: 'models:read' } }, async (request) => {
    const principal = authorizeOnModel(request, 'models:read', request.params.name);
    return registry.modelView(principal.tenantId, await registry.getModel(principal.tenantId, request.params.name));
  });

  app.patch<{ Params: NameParams }>('/models/:name', { schema: modelSchemas.update, config: { permission: 'models:write', audit: { action: 'model.update' } } }, async (request) => {
    const principal = authorizeOnModel(request, 'models:write', request.params.name);
    request.audit = { resource: `model:${request.params.name}` };
    const body = readJsonObject(request, ['description', 'batching', 'exportable', 'outputPolicy']);
    // Lifting export control is the operator's alone: the mark exists to stop the tenant's own admins.
    const model = await registry.updateModel(principal.tenantId, request.params.name, body, { mayLiftExportControl: principal.isOperator && principal.role === 'admin' });
    if (body.exportable !== undefined || body.outputPolicy !== undefined) {
      // Validated by updateModel above, so both are plain JSON.
      request.audit.detail = { ...(body.exportable === undefined ? {} : { exportable: body.exportable as boolean }), ...(body.outputPolicy === undefined ? {} : { outputPolicy: body.outputPolicy as JsonValue }) };
    }
    return { model: await registry.modelView(principal.tenantId, model) };
  });

  app.delete<{ Params: NameParams }>('/models/:name', { schema: modelSchemas.delete, config: { permission: 'models:write', audit: { action: 'model.delete' } } }, async (request, reply) => {
    const principal = authorizeOnModel(request, 'models:write', request.params.name);
    request.audit = { resource: `model:${request.params.name}` };
    await registry.deleteModel(principal.tenantId, request.params.name);
    return reply.status(204).send();
  });

  // ---- versions

  await app.register(async (uploads) => {
    // A bare .onnx streams into encrypted storage as it arrives (bounded by maxModelBytes, not by
    // bodyLimitBytes); a saved-model .tar or a multipart form is parsed in memory, within bodyLimitBytes.
    acceptStreamedBodies(uploads);
    uploads.post<{ Params: NameParams }>('/models/:name/versions', { schema: modelSchemas.addVersion, config: { permission: 'models:write', audit: { action: 'version.create' } } }, async (request, reply) => {
      const principal = authorizeOnModel(request, 'models:write', request.params.name);
      readQuery(request, []);
      request.audit = { resource: `model:${request.params.name}` };
      if (isJson(request)) {
        // A pull: the server downloads the file in a background job (202 + the job).
        const body = parseJsonBody(await readWithin(requestBodyStream(request), pullBodyLimitBytes));
        const job = await context.jobs.service.submitKind(principal.tenantId, 'pull', { ...body, model: request.params.name }, principal.allowedModels);
        request.audit = { resource: `job:${job.id}`, model: request.params.name, detail: { kind: 'pull' } };
        return reply.status(202).header('location', `/api/v1/jobs/${job.id}`).send({ job });
      }
      const options: AddVersionOptions = { source: 'upload' };
      const bodyLimit = context.config.bodyLimitBytes;
      const body = requestBodyStream(request);
      let contentType = request.headers['content-type'];
      let fileName: string | undefined;
      let buffered: Uint8Array | undefined;
      let added;
      // A refusal mid-upload (413, 400) leaves the body unread: closing the connection after the
      // answer spares reading gigabytes only to discard them.
      reply.header('connection', 'close');
      if (isMultipart(request)) {
        refuseDeclaredOver(request, bodyLimit);
        const file = multipartParts(request, ['file'], await readWithin(body, bodyLimit)).get('file');
        if (file === undefined) throw new AiaasError('INVALID_REQUEST', "multipart upload needs a 'file' part", { details: { field: 'file' } });
        buffered = file.bytes;
        contentType = file.contentType;
        fileName = file.fileName;
      } else {
        if (!isTarContentType(contentType)) refuseDeclaredOver(request, Math.max(bodyLimit, context.config.maxModelBytes));
        const { head, whole } = await peekBytes(body, 512);
        if (isTar(head, contentType, undefined)) {
          refuseDeclaredOver(request, bodyLimit);
          buffered = await readWithin(whole, bodyLimit);
        } else {
          if (head.byteLength === 0) throw new AiaasError('INVALID_MODEL_FILE', 'The upload is empty; send an .onnx file, a saved-model .tar or a .gguf file');
          // The format is the file's magic, not its name or content type (runtimes/formats.ts).
          added = await registry.addVersionFromStream(principal.tenantId, request.params.name, head, whole, options);
        }
      }
      if (added === undefined) {
        const bytes = buffered ?? new Uint8Array(0);
        if (bytes.byteLength === 0) throw new AiaasError('INVALID_MODEL_FILE', 'The upload is empty; send an .onnx file, a saved-model .tar or a .gguf file');
        if (isTar(bytes, contentType, fileName)) added = { version: await registry.addVersionFromTar(principal.tenantId, request.params.name, bytes, options), bytes: bytes.byteLength };
        else added = await registry.addVersionFromStream(principal.tenantId, request.params.name, bytes.subarray(0, 512), (async function* () { yield bytes; })(), options);
      }
      reply.removeHeader('connection');
      const model = await registry.getModel(principal.tenantId, request.params.name);
      request.audit = { resource: `model:${model.name}/versions/${added.version.version}`, detail: { bytes: added.bytes } };
      return reply.status(201).send({ version: await registry.versionView(principal.tenantId, model, added.version) });
    });
  });

  app.get<{ Params: NameParams }>('/models/:name/versions', { schema: modelSchemas.listVersions, config: { permission: 'models:read' } }, async (request) => {
    const principal = authorizeOnModel(request, 'models:read', request.params.name);
    return { versions: await registry.listVersions(principal.tenantId, request.params.name) };
  });

  app.get<{ Params: VersionParams }>('/models/:name/versions/:version', { schema: modelSchemas.getVersion, config: { permission: 'models:read' } }, async (request) => {
    const principal = authorizeOnModel(request, 'models:read', request.params.name);
    const { model, version } = await registry.getVersion(principal.tenantId, request.params.name, request.params.version);
    return registry.versionView(principal.tenantId, model, version);
  });

  app.delete<{ Params: VersionParams }>('/models/:name/versions/:version', { schema: modelSchemas.deleteVersion, config: { permission: 'models:write', audit: { action: 'version.delete' } } }, async (request, reply) => {
    const principal = authorizeOnModel(request, 'models:write', request.params.name);
    request.audit = { resource: `model:${request.params.name}/versions/${request.params.version}` };
    await registry.deleteVersion(principal.tenantId, request.params.name, versionNumber(request.params.version));
    return reply.status(204).send();
  });

  app.get<{ Params: VersionParams & { file: string } }>(
    '/models/:name/versions/:version/files/:file',
    { schema: modelSchemas.downloadFile, config: { permission: 'models:download', audit: { action: 'version.download' } } },
    async (request, reply) => {
      const principal = authorizeOnModel(request, 'models:download', request.params.name);
      const { name, version, file } = request.params;
      request.audit = { resource: `model:${name}/versions/${version}/files/${file}` };
      // Export control: only the operator tenant's admins get past a not-exportable mark, audited as such.
      const { restricted } = await registry.checkExport(principal.tenantId, name, version, file, { operator: principal.isOperator && principal.role === 'admin' });
      if (restricted) request.audit.detail = { exportControl: 'operator-override' };
      const { stream, contentType } = await registry.openFile(principal.tenantId, name, version, file);
      // Wait for the first authenticated bytes (or the failure) before the status line goes out, so a
      // corrupt small file is a clean 500; a later failure can only cut the download short.
      const body = await primed(stream);
      return reply.type(contentType).header('content-disposition', `attachment; filename="${file}"`).send(body);
    },
  );

  app.get<{ Params: VersionParams }>('/models/:name/versions/:version/provenance', { schema: modelSchemas.provenance, config: { permission: 'models:read' } }, async (request) => {
    const principal = authorizeOnModel(request, 'models:read', request.params.name);
    const { record, signature, keyId } = await registry.provenance(principal.tenantId, request.params.name, request.params.version);
    return { record, signature, keyId };
  });

  // The public half of the provenance signing key: anyone may verify a record.
  app.get('/signing-key', { schema: modelSchemas.signingKey, config: { public: true } }, async () => context.signingKey.published);

  // The operator downloads any tenant's weights, exportable or not; always audited.
  app.get<{ Params: VersionParams & { file: string; tenantId: string } }>(
    '/tenants/:tenantId/models/:name/versions/:version/files/:file',
    { schema: modelSchemas.operatorDownloadFile, config: { permission: 'tenants:manage', operator: true, audit: { action: 'version.download.operator' } } },
    async (request, reply) => {
      authorizeOperator(request, 'tenants:manage');
      const { tenantId, name, version, file } = request.params;
      request.audit = { resource: `tenant:${tenantId}/model:${name}/versions/${version}/files/${file}`, detail: { tenantId, exportControl: 'operator' } };
      if ((await context.repositories.tenants.get(tenantId)) === undefined) {
        throw new AiaasError('NOT_FOUND', `Tenant '${tenantId}' not found`, { details: { tenantId } });
      }
      await registry.checkExport(tenantId, name, version, file, { operator: true });
      const { stream, contentType } = await registry.openFile(tenantId, name, version, file);
      const body = await primed(stream);
      return reply.type(contentType).header('content-disposition', `attachment; filename="${file}"`).send(body);
    },
  );

  // Only the operator lifts (or sets) another tenant's export-control mark; audited.
  app.patch<{ Params: { tenantId: string; name: string } }>(
    '/tenants/:tenantId/models/:name',
    { schema: modelSchemas.operatorUpdate, config: { permission: 'tenants:manage', operator: true, audit: { action: 'model.export-control' } } },
    async (request) => {
      authorizeOperator(request, 'tenants:manage');
      const { tenantId, name } = request.params;
      const body = readJsonObject(request, ['exportable']);
      request.audit = { resource: `tenant:${tenantId}/model:${name}`, detail: { tenantId, ...(typeof body.exportable === 'boolean' ? { exportable: body.exportable } : {}) } };
      if ((await context.repositories.tenants.get(tenantId)) === undefined) {
        throw new AiaasError('NOT_FOUND', `Tenant '${tenantId}' not found`, { details: { tenantId } });
      }
      const model = await registry.updateModel(tenantId, name, { exportable: body.exportable }, { mayLiftExportControl: true });
      return { model: await registry.modelView(tenantId, model) };
    },
  );

  // ---- aliases

  app.put<{ Params: NameParams & { alias: string } }>('/models/:name/aliases/:alias', { schema: modelSchemas.setAlias, config: { permission: 'aliases:write', audit: { action: 'alias.set' } } }, async (request, reply) => {
    const principal = authorizeOnModel(request, 'aliases:write', request.params.name);
    request.audit = { resource: `model:${request.params.name}/aliases/${request.params.alias}` };
    const body = readJsonObject(request, ['version', 'split', 'shadow', 'gate', 'force', 'waitSeconds']);
    const result = await aliasChanges.change(
      { tenantId: principal.tenantId, allowedModels: principal.allowedModels, isAdmin: principal.role === 'admin' },
      request.params.name,
      request.params.alias,
      body,
    );
    if (result.status === 'evaluating') {
      request.audit.detail = { evaluating: result.jobs.map((job) => job.id) };
      return reply.status(202).send({
        status: 'evaluating',
        message: "the alias has a promotion gate whose evaluations are still running; the alias was not changed. Send the same request again once they finish: it reuses their reports",
        jobs: result.jobs,
      });
    }
    const { alias, gate } = result;
    request.audit.detail = {
      version: alias.version,
      ...(alias.split === null ? {} : { split: alias.split.map((entry) => ({ ...entry })) }),
      shadow: alias.shadow,
      // A forced move is what the audit trail is for: who moved the alias past its gate. The figures
      // themselves are tenant content (sealed in the evaluation), so the clear audit log names only ids.
      ...(gate === null ? {} : { gate: { forced: gate.forced, decisions: gate.decisions.map((decision) => ({ version: decision.candidate.version, evaluationId: decision.candidate.evaluationId, passed: decision.passed })) } }),
    };
    return { alias, gate };
  });

  app.get<{ Params: NameParams }>('/models/:name/aliases', { schema: modelSchemas.listAliases, config: { permission: 'models:read' } }, async (request) => {
    const principal = authorizeOnModel(request, 'models:read', request.params.name);
    const aliases = await registry.listAliases(principal.tenantId, request.params.name);
    return { aliases: await Promise.all(aliases.map((alias) => aliasView(registry, principal.tenantId, alias))) };
  });

  // ---- int8 quantization and cost cards

  app.post<{ Params: VersionParams }>('/models/:name/versions/:version/quantize', { schema: modelSchemas.quantize, config: { permission: 'models:write', audit: { action: 'version.quantize' } } }, async (request, reply) => {
    const principal = authorizeOnModel(request, 'models:write', request.params.name);
    request.audit = { resource: `model:${request.params.name}/versions/${request.params.version}` };
    const body = readJsonObject(request, ['mode', 'calibrationDatasetId', 'evaluationDatasetId']);
    // An alias or "latest" names the version it points at now; the job keeps that number.
    const { version } = await registry.getVersion(principal.tenantId, request.params.name, request.params.version);
    for (const field of ['calibrationDatasetId', 'evaluationDatasetId'] as const) {
      if (typeof body[field] === 'string') await context.datasets.get(principal.tenantId, body[field]);
    }
    const job = await context.jobs.service.submitKind(principal.tenantId, 'quantize', { ...body, model: request.params.name, version: version.version }, principal.allowedModels);
    request.audit = { resource: `job:${job.id}`, model: request.params.name, detail: { kind: 'quantize', version: version.version } };
    return reply.status(202).header('location', `/api/v1/jobs/${job.id}`).send({ job });
  });

  app.get<{ Params: VersionParams }>('/models/:name/versions/:version/quantization', { schema: modelSchemas.quantization, config: { permission: 'models:read' } }, async (request) => {
    const principal = authorizeOnModel(request, 'models:read', request.params.name);
    const { version } = await registry.getVersion(principal.tenantId, request.params.name, request.params.version);
    if (version.quantization === null) {
      throw new AiaasError('NOT_FOUND', `Version ${version.version} of '${request.params.name}' was not made by a quantize job`, { details: { version: version.version } });
    }
    return version.quantization;
  });

  app.get<{ Params: VersionParams }>('/models/:name/versions/:version/cost', { schema: modelSchemas.cost, config: { permission: 'models:read' } }, async (request) => {
    const principal = authorizeOnModel(request, 'models:read', request.params.name);
    return context.costs.card(principal.tenantId, request.params.name, request.params.version);
  });

  app.post<{ Params: VersionParams }>('/models/:name/versions/:version/cost/calibrate', { schema: modelSchemas.calibrateCost, config: { permission: 'models:write', audit: { action: 'version.calibrate' } } }, async (request) => {
    const principal = authorizeOnModel(request, 'models:write', request.params.name);
    request.audit = { resource: `model:${request.params.name}/versions/${request.params.version}` };
    return context.costs.calibrate(principal.tenantId, request.params.name, request.params.version);
  });

  app.delete<{ Params: NameParams & { alias: string } }>('/models/:name/aliases/:alias', { schema: modelSchemas.deleteAlias, config: { permission: 'aliases:write', audit: { action: 'alias.delete' } } }, async (request, reply) => {
    const principal = authorizeOnModel(request, 'aliases:write', request.params.name);
    request.audit = { resource: `model:${request.params.name}/aliases/${request.params.alias}` };
    await registry.deleteAlias(principal.tenantId, request.params.name, request.params.alias);
    return reply.status(204).send();
  });

  app.get<{ Params: NameParams & { alias: string } }>('/models/:name/aliases/:alias/shadow', { schema: modelSchemas.shadowStatus, config: { permission: 'models:read' } }, async (request) => {
    const principal = authorizeOnModel(request, 'models:read', request.params.name);
    const alias = await registry.getAlias(principal.tenantId, request.params.name, request.params.alias);
    if (alias === undefined) {
      throw new AiaasError('NOT_FOUND', `Model '${request.params.name}' has no alias '${request.params.alias}'`, { details: { model: request.params.name, alias: request.params.alias } });
    }
    const view = await aliasView(registry, principal.tenantId, alias);
    return { model: request.params.name, alias: alias.name, shadow: view.shadow, comparisons: context.shadows.comparisons(principal.tenantId, request.params.name, alias.name) };
  });

  // ---- evaluations

  app.post<{ Params: VersionParams }>('/models/:name/versions/:version/evaluations', { schema: modelSchemas.evaluate, config: { permission: 'jobs:write', audit: { action: 'evaluation.create' } } }, async (request, reply) => {
    const principal = authorizeOnModel(request, 'jobs:write', request.params.name);
    const body = readJsonObject(request, ['datasetId', 'outputs', 'label', 'classNames', 'topK', 'task']);
    const evaluation = await evaluations.submit(principal.tenantId, request.params.name, request.params.version, body, principal.allowedModels);
    request.audit = { resource: `model:${request.params.name}/versions/${evaluation.version}/evaluations/${evaluation.id}`, model: request.params.name, detail: { datasetId: evaluation.datasetId } };
    return reply
      .status(202)
      .header('location', `/api/v1/models/${encodeURIComponent(request.params.name)}/versions/${evaluation.version}/evaluations/${evaluation.id}`)
      .send({ evaluation });
  });

  app.get<{ Params: VersionParams }>('/models/:name/versions/:version/evaluations', { schema: modelSchemas.listEvaluations, config: { permission: 'models:read' } }, async (request) => {
    const principal = authorizeOnModel(request, 'models:read', request.params.name);
    return { evaluations: await evaluations.list(principal.tenantId, request.params.name, request.params.version, principal.allowedModels) };
  });

  app.get<{ Params: VersionParams & { id: string } }>('/models/:name/versions/:version/evaluations/:id', { schema: modelSchemas.getEvaluation, config: { permission: 'models:read' } }, async (request) => {
    const principal = authorizeOnModel(request, 'models:read', request.params.name);
    const { version } = await registry.getVersion(principal.tenantId, request.params.name, request.params.version);
    const evaluation = await evaluations.get(principal.tenantId, request.params.name, request.params.id, principal.allowedModels);
    if (evaluation.version !== version.version) {
      throw new AiaasError('EVALUATION_NOT_FOUND', `version ${version.version} of '${request.params.name}' has no evaluation ${request.params.id.slice(0, 120)}`);
    }
    return evaluation;
  });
}
