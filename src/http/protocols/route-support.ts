/**
 * What the V2 and TF-Serving routes share: their injected dependencies, the `{"error": ...}` error
 * rendering both protocols require, a lenient JSON body parser, and the one place an inference is
 * run, timed, counted and reported.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ModelSignature } from '../../runtimes/runtime.ts';
import type { CancelSignal } from '../../inference/batcher.ts';
import type { ModelKey, ModelManager } from '../../inference/model-manager.ts';
import type { InferenceTiming, InferRequest, InferResponse, ResolvedModel } from '../../inference/types.ts';
import type { InferenceProtocol, Metrics } from '../metrics.ts';
import { installSchemaCompilers } from '../schemas/validation.ts';
import { type BinarySection, inferenceHeaderLengthHeader, splitBinaryBody } from './binary-tensors.ts';
import { parseJsonBody, serializeJson } from './tensor-json.ts';
import { AiaasError } from '../../errors.ts';
import { applyOutputPolicy } from '../../inference/output-policy.ts';
import type { Explainer } from '../../explain/explainer.ts';
import { errorCodeHeader, sendProtocolError, toPlatformError } from '../errors.ts';
import type { ShadowMonitor } from '../../quality/shadow-monitor.ts';
import { nameServedVersion, trackResponse } from '../served-version.ts';

export type { ResolvedModel } from '../../inference/types.ts';

export interface InferenceDeps {
  /** Throws AiaasError MODEL_NOT_FOUND / VERSION_NOT_FOUND; auth and tenant scoping happen inside. */
  resolveModel(request: FastifyRequest, name: string, versionOrAlias?: string): Promise<ResolvedModel>;
  /**
   * Throws unless the caller may change what is loaded (Triton's repository load and unload):
   * that evicts and reloads models, so it needs `models:write`, not just `inference`.
   */
  authorizeModelControl(request: FastifyRequest): void;
  /** Models visible to the caller, for /v2/repository/index and TF-Serving status. */
  listModels(request: FastifyRequest): Promise<{ name: string; versions: string[] }[]>;
  manager: ModelManager;
  metrics: Metrics;
  limits: { maxTensorElements: number };
  /**
   * Called once per inference that reached a resolved model, with its outcome (usage bills only
   * 'ok'), before the answer is sent: the usage ledger records it here.
   */
  onInference?(request: FastifyRequest, model: ResolvedModel, protocol: InferenceProtocol, outcome: 'ok' | 'error', measures: InferenceMeasures): void;
  /** Reported by `GET /v2`. */
  server?: { name: string; version: string };
  /** Runs explanations (`POST /v2/models/:name/explain`); without it that route answers 404. */
  explainer?: Explainer;
  /**
   * Quota admission (src/billing/quotas.ts): reserves the request's items before it runs (429
   * QUOTA_EXCEEDED when they do not fit); settled once answered, released when it fails.
   */
  admit?(request: FastifyRequest, model: ResolvedModel, items: number): Promise<ItemReservation>;
  /** Drift sampling (src/platform/drift.ts); absent when `driftSampleRate` is 0, so serving pays one branch. */
  drift?: { sample(model: ResolvedModel, request: InferRequest): ((response: InferResponse) => void) | undefined };
  /** Runs and compares the shadow copies of requests to aliases that have a shadow version. */
  shadows?: ShadowMonitor;
}

export interface ItemReservation {
  settle(actual: { predictions: number }): Promise<void>;
  release(): Promise<void>;
}


/** What one inference used: its batch elements and, once it ran, its serving times. */
export interface InferenceMeasures {
  /** Batch elements: the first input's leading dimension (1 for a scalar input); 0 when unparsed. */
  items: number;
  timing?: InferenceTiming;
}

export { errorCodeHeader };

/** `Server-Timing: queue;dur=…, compute;dur=…` (milliseconds): the times the ledger records too. */
export function serverTiming(timing: InferenceTiming): string {
  const duration = (milliseconds: number): string => String(Math.round(milliseconds * 1000) / 1000);
  return `queue;dur=${duration(timing.queueMs)}, compute;dur=${duration(timing.computeMs)}`;
}

function itemsOf(request: InferRequest): number {
  const shape = request.inputs[0]?.shape;
  if (shape === undefined) return 0;
  return shape.length === 0 ? 1 : shape[0]!;
}

export function modelKey(model: ResolvedModel): ModelKey {
  return {
    versionId: model.versionId,
    ...(model.tenantId === undefined ? {} : { tenantId: model.tenantId }),
    name: model.name,
    version: model.version,
    ...(model.batching === undefined ? {} : { batching: model.batching }),
  };
}

/** Every version of a model the caller can see; `fallback` when the listing does not name it. */
export async function versionsOf(deps: InferenceDeps, request: FastifyRequest, name: string, fallback: string): Promise<string[]> {
  const entry = (await deps.listModels(request)).find((model) => model.name === name);
  return entry?.versions ?? [fallback];
}

export async function signatureOf(deps: InferenceDeps, model: ResolvedModel): Promise<ModelSignature> {
  return model.signature ?? (await deps.manager.acquire(modelKey(model))).signature;
}

/**
 * Scopes protocol behaviour to the plugin it is called in: errors as `{"error": "..."}` with the
 * catalogue status and the code in a header, and a body parser that accepts empty bodies and any
 * content type as JSON (TF-Serving's own examples post with `curl -d`, i.e. form-encoded).
 * With `binaryTensors` (V2), a request carrying `Inference-Header-Content-Length` is split, whatever
 * its content type: the JSON header becomes the body (so route schemas check it as usual) and the
 * binary tail is kept aside, for the returned `BinarySections` to hand to the route.
 */
export function installProtocolHandling(app: FastifyInstance, options: { allowNonFiniteTokens: boolean; binaryTensors?: boolean }): BinarySections {
  installSchemaCompilers(app);
  app.addHook('onRequest', (request, reply, done) => {
    trackResponse(request, reply);
    done();
  });
  app.setErrorHandler((error, request, reply) => {
    // A runtime's full error text (host paths included) stays in the log; the client gets a cleaned message.
    if (AiaasError.isInstance(error) && error.cause !== undefined) request.log.warn({ err: error.cause, code: error.code }, `inference failed: ${error.message}`);
    void sendProtocolError(reply, toPlatformError(error, request));
  });
  const parseJson = (text: string): unknown => parseJsonBody(text, options.allowNonFiniteTokens);
  const parser = (_request: FastifyRequest, body: string, done: (error: Error | null, body?: unknown) => void): void => {
    try {
      done(null, parseJson(body));
    } catch (error) {
      done(error as Error);
    }
  };
  // Binary tails must be read as bytes; without the header the bytes decode to exactly the string
  // the plain parser would have been given, so JSON requests parse as before.
  const sections = new WeakMap<FastifyRequest, BinarySection>();
  const binaryParser = (request: FastifyRequest, body: Buffer, done: (error: Error | null, body?: unknown) => void): void => {
    try {
      const headerLength = request.headers[inferenceHeaderLengthHeader];
      if (headerLength === undefined) {
        done(null, parseJson(body.toString('utf8')));
        return;
      }
      const { json, section } = splitBinaryBody(body, Array.isArray(headerLength) ? headerLength.join(',') : headerLength, parseJson);
      sections.set(request, section);
      done(null, json);
    } catch (error) {
      done(error as Error);
    }
  };
  app.removeContentTypeParser(['application/json']);
  if (options.binaryTensors === true) {
    app.addContentTypeParser('application/json', { parseAs: 'buffer' }, binaryParser);
    app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, binaryParser);
    if (!app.hasContentTypeParser('*')) app.addContentTypeParser('*', { parseAs: 'buffer' }, binaryParser);
  } else {
    app.addContentTypeParser('application/json', { parseAs: 'string' }, parser);
    if (!app.hasContentTypeParser('*')) app.addContentTypeParser('*', { parseAs: 'string' }, parser);
  }
  return { of: (request) => sections.get(request) };
}

/** The binary sections of the requests a protocol plugin parsed (Triton's binary tensor data extension). */
export interface BinarySections {
  /** The bytes after the request's JSON header; undefined for a request without `Inference-Header-Content-Length`. */
  of(request: FastifyRequest): BinarySection | undefined;
}

export function sendJson(reply: FastifyReply, value: unknown, nonFinite: 'null' | 'tokens' = 'null'): FastifyReply {
  return reply.type('application/json; charset=utf-8').send(serializeJson(value, nonFinite));
}

/**
 * The binary tensor data extension's response: the JSON header, then the binary section, with
 * `Inference-Header-Content-Length` giving the header's byte length.
 */
export function sendJsonWithBinary(reply: FastifyReply, value: unknown, binary: readonly Buffer[]): FastifyReply {
  const header = Buffer.from(serializeJson(value), 'utf8');
  return reply
    .type('application/octet-stream')
    .header(inferenceHeaderLengthHeader, String(header.length))
    .send(Buffer.concat([header, ...binary]));
}

/**
 * The batcher's cancellation signal for one request, without an AbortController's EventTarget
 * machinery (created for every inference, so its cost showed in profiles of the main thread).
 */
class DisconnectSignal implements CancelSignal {
  aborted = false;
  #listeners: (() => void)[] = [];

  addEventListener(_type: 'abort', listener: () => void): void {
    if (this.aborted) listener();
    else this.#listeners.push(listener);
  }

  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    const listeners = this.#listeners;
    this.#listeners = [];
    for (const listener of listeners) listener();
  }
}

/**
 * Aborts when the client's connection closes before its answer: its request is dropped from the
 * queue instead of running for nobody. Watches the socket (a request's own 'close' fires once its
 * body is read); the listener is removed again, since keep-alive sockets carry many requests.
 */
function watchDisconnect(request: FastifyRequest): { signal: CancelSignal; stop(): void } | undefined {
  const socket = request.raw.socket as { once?: unknown; off?: unknown } | undefined;
  if (socket === undefined || typeof socket.once !== 'function' || typeof socket.off !== 'function') return undefined;
  const events = request.raw.socket;
  const signal = new DisconnectSignal();
  const onClose = (): void => signal.abort();
  events.once('close', onClose);
  return { signal, stop: () => events.off('close', onClose) };
}

function shadowSeries(live: ResolvedModel, shadow: ResolvedModel) {
  return { tenant: live.tenantId ?? '', model: live.name, alias: live.alias ?? '', liveVersion: live.version, shadowVersion: shadow.version };
}

/**
 * Runs one inference: resolve, parse against the signature, infer, render; timed and counted once.
 * The reply gets the serving times as `Server-Timing`.
 */
export async function runInference<Parsed extends { request: InferRequest }, Rendered>(
  deps: InferenceDeps,
  request: FastifyRequest,
  reply: FastifyReply,
  protocol: InferenceProtocol,
  target: { name: string; versionOrAlias?: string },
  parse: (signature: ModelSignature) => Parsed,
  render: (model: ResolvedModel, parsed: Parsed, response: InferResponse) => Rendered,
): Promise<Rendered> {
  const model = await deps.resolveModel(request, target.name, target.versionOrAlias);
  nameServedVersion(request, model.version);
  const started = performance.now();
  const labels = { ...(model.tenantId === undefined ? {} : { tenant: model.tenantId }), model: model.name, version: model.version };
  const measures: InferenceMeasures = { items: 0 };
  let reservation: ItemReservation | undefined;
  try {
    const parsed = parse(await signatureOf(deps, model));
    // The parsed request holds its own tensors now. The JSON body (arrays of numbers as large as the
    // tensors) would otherwise stay reachable until the answer is sent: under load long enough for
    // the young-generation GC to copy it and promote it to the old generation, which showed in
    // profiles as GC time per request.
    request.body = undefined;
    measures.items = itemsOf(parsed.request);
    reservation = await deps.admit?.(request, model, measures.items);
    // Copied before the inference: its input buffers are transferred to a worker.
    const sampled = deps.drift === undefined ? undefined : deps.drift.sample(model, parsed.request);
    const disconnect = watchDisconnect(request);
    // Copied before the live call: a runtime may take over the request's buffers.
    const shadow = model.shadow === undefined || deps.shadows === undefined ? undefined : { model: model.shadow, series: shadowSeries(model, model.shadow) };
    const admitted = shadow === undefined ? undefined : deps.shadows?.admit(shadow.series, parsed.request);
    let response: InferResponse;
    const inferStarted = performance.now();
    try {
      response = await deps.manager.infer(modelKey(model), parsed.request, {
        ...(request.principal === undefined ? {} : { fairnessKey: request.principal.keyId }),
        ...(disconnect === undefined ? {} : { signal: disconnect.signal }),
      });
    } catch (error) {
      admitted?.release();
      throw error;
    } finally {
      disconnect?.stop();
    }
    if (shadow !== undefined && admitted !== undefined) {
      // Not awaited: the live answer never waits for the shadow.
      const liveSeconds = (performance.now() - inferStarted) / 1000;
      void deps.shadows?.mirror(shadow.series, admitted, response, liveSeconds, (copy) => deps.manager.infer(modelKey(shadow.model), copy, { fairnessKey: 'shadow' }));
    }
    if (response.timing !== undefined) {
      measures.timing = response.timing;
      reply.header('server-timing', serverTiming(response.timing));
    }
    // The one place an output policy applies: every protocol renders what it leaves.
    const rendered = render(model, parsed, model.outputPolicy === undefined ? response : { ...response, outputs: applyOutputPolicy(model.outputPolicy, response.outputs) });
    if (sampled !== undefined) sampled(response);
    deps.metrics.recordRequest(labels, protocol, 'ok', (performance.now() - started) / 1000);
    deps.onInference?.(request, model, protocol, 'ok', measures);
    const settled = reservation;
    reservation = undefined;
    await settled?.settle({ predictions: measures.items }).catch((error: unknown) => request.log.error({ err: error }, 'could not settle a quota reservation'));
    return rendered;
  } catch (error) {
    deps.metrics.recordRequest(labels, protocol, 'error', (performance.now() - started) / 1000);
    deps.onInference?.(request, model, protocol, 'error', measures);
    await reservation?.release().catch((releaseError: unknown) => request.log.error({ err: releaseError }, 'could not release a quota reservation'));
    throw error;
  }
}
