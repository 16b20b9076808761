/**
 * KServe V2 / Open Inference Protocol REST routes plus Triton's model-repository extension.
 * Register with `app.register(v2Routes, deps)`; errors under these routes render as `{"error": "..."}`.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, FastifySchema, FastifySchemaCompiler } from 'fastify';
import { parseV2InferRequest, renderV2InferResponse, renderV2ModelMetadata } from '../protocols/v2.ts';
import {
  type InferenceDeps,
  type ResolvedModel,
  installProtocolHandling,
  modelKey,
  runInference,
  sendJson,
  sendJsonWithBinary,
  signatureOf,
  versionsOf,
} from '../protocols/route-support.ts';
import type { TSchema } from '@sinclair/typebox';
import { compileValidator } from '../schemas/validation.ts';
import { v2Schemas } from '../schemas/v2.ts';
import { AiaasError } from '../../errors.ts';
import { renderHeatmapPng } from '../../explain/heatmap.ts';
import { inferencePart, parseExplainOptions, renderExplanation } from '../protocols/explain.ts';

export type { InferenceDeps, ResolvedModel } from '../protocols/route-support.ts';

interface ModelParams {
  name: string;
  version?: string;
}

export async function v2Routes(app: FastifyInstance, deps: InferenceDeps): Promise<void> {
  const binarySections = installProtocolHandling(app, { allowNonFiniteTokens: false, binaryTensors: true, ...(deps.jsonParsing === undefined ? {} : { jsonParsing: deps.jsonParsing }) });
  const server = deps.server ?? { name: 'aiaas', version: '0.1.0' };

  app.get('/v2', { schema: v2Schemas.server }, async (_request, reply) =>
    sendJson(reply, { name: server.name, version: server.version, extensions: ['model_repository', 'binary_tensor_data', 'classification'] }),
  );
  app.get('/v2/health/live', { schema: v2Schemas.live }, async (_request, reply) => reply.status(200).send());
  app.get('/v2/health/ready', { schema: v2Schemas.ready }, async (_request, reply) => reply.status(200).send());

  const metadata = async (request: FastifyRequest<{ Params: ModelParams }>): Promise<Record<string, unknown>> => {
    const { name, version } = request.params;
    const model = await deps.resolveModel(request, name, version);
    return renderV2ModelMetadata(model.name, await versionsOf(deps, request, model.name, model.version), await signatureOf(deps, model));
  };
  app.get<{ Params: ModelParams }>('/v2/models/:name', { schema: v2Schemas.modelMetadata }, async (request, reply) => sendJson(reply, await metadata(request)));
  app.get<{ Params: ModelParams }>('/v2/models/:name/versions/:version', { schema: v2Schemas.versionMetadata }, async (request, reply) => sendJson(reply, await metadata(request)));

  // Models load on demand, so a version that resolves is ready: its first request loads it.
  const ready = async (request: FastifyRequest<{ Params: ModelParams }>): Promise<void> => {
    await deps.resolveModel(request, request.params.name, request.params.version);
  };
  app.get<{ Params: ModelParams }>('/v2/models/:name/ready', { schema: v2Schemas.modelReady }, async (request, reply) => {
    await ready(request);
    return reply.status(200).send();
  });
  app.get<{ Params: ModelParams }>('/v2/models/:name/versions/:version/ready', { schema: v2Schemas.versionReady }, async (request, reply) => {
    await ready(request);
    return reply.status(200).send();
  });

  const infer = async (request: FastifyRequest<{ Params: ModelParams }>, reply: FastifyReply): Promise<FastifyReply> => {
    const { json, binary } = await runInference(
      deps,
      request,
      reply,
      'v2',
      { name: request.params.name, ...(request.params.version === undefined ? {} : { versionOrAlias: request.params.version }) },
      (signature) => parseV2InferRequest(request.body, signature, deps.limits, binarySections.of(request)),
      (model, call, response) => renderV2InferResponse(model, call, response.outputs),
    );
    return binary === undefined ? sendJson(reply, json) : sendJsonWithBinary(reply, json, binary);
  };
  // A raw binary request (Inference-Header-Content-Length: 0) has no JSON header, so its body is
  // absent, which Fastify validates as null; the tensor parser checks such a request (and answers
  // an empty JSON body with its own 400) against the model's signature instead.
  const validatorCompiler: FastifySchemaCompiler<FastifySchema> = ({ schema, httpPart }) => {
    const validate = compileValidator(schema as TSchema, httpPart);
    return httpPart === 'body' ? (value: unknown) => (value === null ? true : validate(value)) : validate;
  };
  app.post<{ Params: ModelParams }>('/v2/models/:name/infer', { schema: v2Schemas.modelInfer, validatorCompiler }, infer);
  app.post<{ Params: ModelParams }>('/v2/models/:name/versions/:version/infer', { schema: v2Schemas.versionInfer, validatorCompiler }, infer);

  // Explanations (docs/quality.md): attributions with the input's shape, or a heatmap PNG.
  const explain = async (request: FastifyRequest<{ Params: ModelParams }>, reply: FastifyReply): Promise<FastifyReply> => {
    const { name, version } = request.params;
    const model = await deps.resolveModel(request, name, version);
    // Attributions reveal far more about the model than top-k labels do.
    if (model.outputPolicy !== undefined) {
      throw new AiaasError('OUTPUT_POLICY_RESTRICTED', `Model '${model.name}' has an output policy; explanations would reveal more than it allows`, { details: { model: model.name, outputPolicy: { ...model.outputPolicy } } });
    }
    if (deps.explainer === undefined) throw new AiaasError('NOT_FOUND', 'This server does not run explanations');
    const signature = await signatureOf(deps, model);
    const options = parseExplainOptions(request.body, signature, { inputGradients: model.inputGradients === true });
    const call = parseV2InferRequest(inferencePart(request.body), signature, deps.limits, binarySections.of(request));
    const started = performance.now();
    const labels = { ...(model.tenantId === undefined ? {} : { tenant: model.tenantId }), model: model.name, version: model.version };
    // Billed as one inference per explained row (the many forward passes behind it are the method's).
    const measures = { items: call.request.inputs[0]?.shape[0] ?? 0 };
    let result;
    try {
      result = await deps.explainer.explain(model, signature, { ...options.request, inputs: call.request.inputs }, {
        ...(request.principal === undefined ? {} : { fairnessKey: request.principal.keyId }),
      });
    } catch (error) {
      deps.metrics.recordRequest(labels, 'v2', 'error', (performance.now() - started) / 1000);
      deps.onInference?.(request, model, 'v2', 'error', measures);
      throw error;
    }
    deps.metrics.recordRequest(labels, 'v2', 'ok', (performance.now() - started) / 1000);
    deps.onInference?.(request, model, 'v2', 'ok', measures);
    if (options.format === 'png') {
      if (result.image === undefined) {
        throw new AiaasError('EXPLANATION_UNSUPPORTED', `input '${result.input}' does not read as an image ([H, W], [H, W, C], [C, H, W] with C of 1, 3 or 4, or a square vector); ask for format "json"`);
      }
      if (result.shape[0] !== 1) throw new AiaasError('INVALID_REQUEST', 'a heatmap shows one sample: send one row (or ask for format "json")');
      const sample = call.request.inputs.find((tensor) => tensor.name === result.input)!.data as Float32Array;
      const { png } = renderHeatmapPng({ input: sample, attributions: result.attributions, layout: result.image, ...(options.scale === undefined ? {} : { scale: options.scale }) });
      return reply
        .type('image/png')
        .header('x-aiaas-explain-method', result.method)
        .header('x-aiaas-explain-target', String(result.targets[0]))
        .send(png);
    }
    return sendJson(reply, renderExplanation(model, call.request.id, result));
  };
  app.post<{ Params: ModelParams }>('/v2/models/:name/explain', { schema: v2Schemas.modelExplain }, explain);
  app.post<{ Params: ModelParams }>('/v2/models/:name/versions/:version/explain', { schema: v2Schemas.versionExplain }, explain);

  // Triton model-repository extension (docs/protocol/extension_model_repository.md).
  app.post('/v2/repository/index', { schema: v2Schemas.repositoryIndex }, async (request, reply) => {
    const body = request.body as { ready?: unknown } | undefined;
    const onlyReady = typeof body === 'object' && body !== null && body.ready === true;
    const entries: { name: string; version: string; state: string; reason: string }[] = [];
    for (const { name, versions } of await deps.listModels(request)) {
      const resolved = await Promise.all(versions.map((version) => deps.resolveModel(request, name, version)));
      for (const model of resolved) {
        const loaded = deps.manager.isLoaded(model.versionId);
        if (onlyReady && !loaded) continue;
        entries.push({ name: model.name, version: model.version, state: loaded ? 'READY' : 'UNAVAILABLE', reason: loaded ? '' : 'unloaded; loads on first request' });
      }
    }
    return sendJson(reply, entries);
  });

  app.post<{ Params: ModelParams }>('/v2/repository/models/:name/load', { schema: v2Schemas.load }, async (request, reply) => {
    deps.authorizeModelControl(request);
    const model = await deps.resolveModel(request, request.params.name);
    await deps.manager.acquire(modelKey(model));
    return reply.status(200).send();
  });

  // Triton unloads a model as a whole, so every version of the name is unloaded.
  app.post<{ Params: ModelParams }>('/v2/repository/models/:name/unload', { schema: v2Schemas.unload }, async (request, reply) => {
    deps.authorizeModelControl(request);
    const latest: ResolvedModel = await deps.resolveModel(request, request.params.name);
    const versions = await versionsOf(deps, request, latest.name, latest.version);
    const models = await Promise.all(versions.map((version) => deps.resolveModel(request, latest.name, version)));
    await Promise.all(models.map((model) => deps.manager.unload({ versionId: model.versionId })));
    return reply.status(200).send();
  });
}
