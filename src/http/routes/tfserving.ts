/**
 * TensorFlow Serving REST routes under `/tfserving/v1/models/...` (api_rest.md): model status,
 * metadata, `:predict` and `:classify`. Register with `app.register(tfServingRoutes, deps)`.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AiaasError } from '../../errors.ts';
import {
  parseTfServingClassifyRequest,
  parseTfServingPredictRequest,
  renderTfServingClassifyResponse,
  renderTfServingMetadata,
  renderTfServingPredictResponse,
  renderTfServingStatus,
} from '../protocols/tfserving.ts';
import { type InferenceDeps, installProtocolHandling, runInference, sendJson, signatureOf, versionsOf } from '../protocols/route-support.ts';
import { tfServingSchemas } from '../schemas/tfserving.ts';

const base = '/tfserving/v1/models';

/**
 * Splits `name:predict` into name and verb. The router cannot match a literal colon right after a
 * parameter (`:name::predict` swallows the suffix into the parameter), so the segment is parsed here.
 */
function splitVerb(segment: string): { target: string; verb: string } {
  const colon = segment.lastIndexOf(':');
  if (colon <= 0) throw new AiaasError('NOT_FOUND', `no such endpoint; POST .../${segment}:predict`);
  return { target: segment.slice(0, colon), verb: segment.slice(colon + 1) };
}

type Verb = 'predict' | 'classify';

function knownVerb(verb: string): Verb {
  if (verb === 'predict' || verb === 'classify') return verb;
  if (verb === 'regress') throw new AiaasError('INVALID_REQUEST', ':regress is not supported; use :predict (or :classify for a classifier)');
  throw new AiaasError('NOT_FOUND', `unknown method ':${verb}'; use :predict or :classify`);
}

export async function tfServingRoutes(app: FastifyInstance, deps: InferenceDeps): Promise<void> {
  installProtocolHandling(app, { allowNonFiniteTokens: true, ...(deps.jsonParsing === undefined ? {} : { jsonParsing: deps.jsonParsing }) });

  const call = async (verb: Verb, request: FastifyRequest, reply: FastifyReply, name: string, versionOrAlias?: string): Promise<Record<string, unknown>> => {
    const target = { name, ...(versionOrAlias === undefined ? {} : { versionOrAlias }) };
    if (verb === 'classify') {
      return await runInference(
        deps,
        request,
        reply,
        'tfserving',
        target,
        (signature) => parseTfServingClassifyRequest(request.body, signature, deps.limits),
        (model, parsed, response) => renderTfServingClassifyResponse(response.outputs[0]!, parsed.classNames, model.outputPolicy),
      );
    }
    return await runInference(
      deps,
      request,
      reply,
      'tfserving',
      target,
      (signature) => parseTfServingPredictRequest(request.body, signature, deps.limits),
      (_model, parsed, response) => renderTfServingPredictResponse(parsed.format, response.outputs),
    );
  };

  app.post<{ Params: { segment: string } }>(`${base}/:segment`, { schema: tfServingSchemas.predict }, async (request, reply) => {
    const { target, verb } = splitVerb(request.params.segment);
    return sendJson(reply, await call(knownVerb(verb), request, reply, target), 'tokens');
  });
  for (const kind of ['versions', 'labels']) {
    app.post<{ Params: { name: string; segment: string } }>(`${base}/:name/${kind}/:segment`, { schema: tfServingSchemas.predictVersion }, async (request, reply) => {
      const { target, verb } = splitVerb(request.params.segment);
      return sendJson(reply, await call(knownVerb(verb), request, reply, request.params.name, target), 'tokens');
    });
  }

  // Status: all versions without a version or label, as api_rest.md describes.
  app.get<{ Params: { name: string } }>(`${base}/:name`, { schema: tfServingSchemas.status }, async (request, reply) => {
    const model = await deps.resolveModel(request, request.params.name);
    const versions = await versionsOf(deps, request, model.name, model.version);
    return sendJson(reply, renderTfServingStatus(versions.map((version) => ({ version, available: true }))));
  });
  for (const kind of ['versions', 'labels']) {
    app.get<{ Params: { name: string; selector: string } }>(`${base}/:name/${kind}/:selector`, { schema: tfServingSchemas.selectorStatus }, async (request, reply) => {
      const model = await deps.resolveModel(request, request.params.name, request.params.selector);
      return sendJson(reply, renderTfServingStatus([{ version: model.version, available: true }]));
    });
    app.get<{ Params: { name: string; selector: string } }>(`${base}/:name/${kind}/:selector/metadata`, { schema: tfServingSchemas.selectorMetadata }, async (request, reply) => {
      const model = await deps.resolveModel(request, request.params.name, request.params.selector);
      return sendJson(reply, renderTfServingMetadata(model.name, model.version, await signatureOf(deps, model)));
    });
  }
  app.get<{ Params: { name: string } }>(`${base}/:name/metadata`, { schema: tfServingSchemas.metadata }, async (request, reply) => {
    const model = await deps.resolveModel(request, request.params.name);
    return sendJson(reply, renderTfServingMetadata(model.name, model.version, await signatureOf(deps, model)));
  });
}
