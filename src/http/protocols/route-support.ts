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
import type { JsonParsePool } from './json-offload.ts';
import { scanV2Body, unscanned } from './v2-json-scanner.ts';
import { AiaasError } from '../../errors.ts';
import { applyOutputPolicy } from '../../inference/output-policy.ts';
import type { Explainer } from '../../explain/explainer.ts';
import { errorCodeHeader, sendProtocolError, toPlatformError } from '../errors.ts';
import type { ShadowMonitor } from '../../quality/shadow-monitor.ts';
import { nameServedVersionOn } from '../served-version.ts';

export type { ResolvedModel } from '../../inference/types.ts';

/**
 * Bodies this large or larger are parsed in a worker when the server has parse threads (V2 bodies
 * only above scanInlineMaxBytes, or when the scanner leaves them). Below it the trip is taken to cost
 * the main thread more than JSON.parse would: an estimate, not a measurement.
 */
export const offloadMinBytes = 1024;
/**
 * A body up to this size is parsed on the main thread when no other request that could go to a
 * parse thread is in flight (a lone client): the trip would only add latency, and such a parse blocks
 * the loop for well under a millisecond. With others in flight every body from offloadMinBytes up
 * goes to a thread.
 */
export const inlineWhenIdleMaxBytes = 64 * 1024;

/**
 * V2 bodies up to this size are read on the main thread by the V2 scanner (v2-json-scanner.ts): ~9 µs
 * for bench:serve's 3.3 KB image, where JSON.parse took ~14 µs and the trip to a parse thread and
 * back cost the server more CPU in all than either (bench:serve, 64 connections: all threads
 * together 120–140 µs per request before, 92–109 after). At 64 KiB it holds the event loop for well
 * under a millisecond; larger bodies still go to a parse thread.
 */
export const scanInlineMaxBytes = 64 * 1024;

/**
 * Inference requests of this process between their body's arrival and their answer, among those
 * whose bodies the parse threads may take (V2 bodies the scanner read are not counted: counting them
 * would cost a WeakSet entry per request, which V8 revisits at every scavenge).
 */
let inferencesInFlight = 0;
const countedInFlight = new WeakSet<FastifyRequest>();

export interface InferenceDeps {
  /** Throws AiaasError MODEL_NOT_FOUND / VERSION_NOT_FOUND; auth and tenant scoping happen inside. */
  resolveModel(request: FastifyRequest, name: string, versionOrAlias?: string): Promise<ResolvedModel>;
  /** `resolveModel` without a promise when the answer is at hand (cached); undefined otherwise. Throws as resolveModel does. */
  resolveModelNow?(request: FastifyRequest, name: string, versionOrAlias?: string): ResolvedModel | undefined;
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
   * QUOTA_EXCEEDED when they do not fit); settled once answered, released when it fails. Undefined
   * when nothing is metered (a tenant without a plan): the request then pays no promise for it.
   */
  admit?(request: FastifyRequest, model: ResolvedModel, items: number): Promise<ItemReservation> | undefined;
  /** Drift sampling (src/platform/drift.ts); absent when `driftSampleRate` is 0, so serving pays one branch. */
  drift?: { sample(model: ResolvedModel, request: InferRequest): ((response: InferResponse) => void) | undefined };
  /** Runs and compares the shadow copies of requests to aliases that have a shadow version. */
  shadows?: ShadowMonitor;
  /** Parses large JSON bodies off the main thread; without it they are parsed on it. */
  jsonParsing?: JsonParsePool;
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

/**
 * A resolved model's manager key and metric labels, made once per resolution: the registry hands
 * out the same ResolvedModel object while its routing is cached, so most requests find them here.
 */
const servingKeys = new WeakMap<ResolvedModel, { key: ModelKey; labels: { tenant?: string; model: string; version: string } }>();

function servingKeysOf(model: ResolvedModel): { key: ModelKey; labels: { tenant?: string; model: string; version: string } } {
  let keys = servingKeys.get(model);
  if (keys === undefined) {
    keys = { key: modelKey(model), labels: { ...(model.tenantId === undefined ? {} : { tenant: model.tenantId }), model: model.name, version: model.version } };
    servingKeys.set(model, keys);
  }
  return keys;
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
export function installProtocolHandling(app: FastifyInstance, options: { allowNonFiniteTokens: boolean; binaryTensors?: boolean; jsonParsing?: JsonParsePool }): BinarySections {
  installSchemaCompilers(app);
  app.setErrorHandler((error, request, reply) => {
    // A runtime's full error text (host paths included) stays in the log; the client gets a cleaned message.
    if (AiaasError.isInstance(error) && error.cause !== undefined) request.log.warn({ err: error.cause, code: error.code }, `inference failed: ${error.message}`);
    void sendProtocolError(reply, toPlatformError(error, request));
  });
  const parseJson = (text: string): unknown => parseJsonBody(text, options.allowNonFiniteTokens);
  const pool = options.jsonParsing;
  // V2 bodies name their tensors' data under inputs[].data; TF-Serving's rows and columns nest.
  const packTensors = options.binaryTensors === true;
  if (pool !== undefined) {
    // Every answer passes onSend, errors and answers to clients that left included. Not the
    // response's 'close': a keep-alive client's next request can arrive before it.
    app.addHook('onSend', (request, _reply, payload, done) => {
      if (countedInFlight.delete(request)) inferencesInFlight--;
      done(null, payload);
    });
  }
  /** Parses in a worker when the body is large enough to be worth the trip (see json-offload.ts). */
  const parseHere = (body: Buffer): unknown => parseJson(body.toString('utf8'));
  const parseBody = (request: FastifyRequest, body: Buffer, done: (error: Error | null, body?: unknown) => void): void => {
    if (packTensors && body.length <= scanInlineMaxBytes) {
      const scanned = scanV2Body(body);
      if (scanned !== unscanned) {
        done(null, scanned);
        return;
      }
    }
    if (pool === undefined || body.length < offloadMinBytes) {
      done(null, parseHere(body));
      return;
    }
    const alone = inferencesInFlight === 0;
    inferencesInFlight++;
    countedInFlight.add(request);
    if (alone && body.length <= inlineWhenIdleMaxBytes) {
      done(null, parseHere(body));
      return;
    }
    void pool
      .parse(body, { packTensors })
      .then((result) => {
        if ('value' in result) return done(null, result.value);
        if ('empty' in result) return done(null, undefined);
        // Not JSON (or no worker): parsed here, which says exactly where it breaks.
        let parsed: unknown;
        try {
          parsed = parseHere(body);
        } catch (error) {
          return done(error as Error);
        }
        return done(null, parsed);
      })
      // The request goes on inside `done`; Fastify answers its errors, so anything here is a bug to log.
      .catch((error: unknown) => request.log.error({ err: error }, 'inference body parser failed after parsing'));
  };
  const parser = (request: FastifyRequest, body: Buffer, done: (error: Error | null, body?: unknown) => void): void => {
    try {
      parseBody(request, body, done);
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
        parseBody(request, body, done);
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
    app.addContentTypeParser('application/json', { parseAs: 'buffer' }, parser);
    if (!app.hasContentTypeParser('*')) app.addContentTypeParser('*', { parseAs: 'buffer' }, parser);
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

/** The in-flight inferences of each client connection, aborted together when it closes. */
const inFlightBySocket = new WeakMap<object, Set<DisconnectSignal>>();

/**
 * Aborts when the client's connection closes before its answer: its request is dropped from the
 * queue instead of running for nobody. Watches the socket (a request's own 'close' fires once its
 * body is read) with one listener per connection, added at its first inference: keep-alive sockets
 * carry many requests, and adding and removing a listener on every one showed in profiles.
 */
function watchDisconnect(request: FastifyRequest): { signal: DisconnectSignal; watching: Set<DisconnectSignal> } | undefined {
  const socket = request.raw.socket as { once?: unknown } | undefined;
  if (socket === undefined || typeof socket.once !== 'function') return undefined;
  let watching = inFlightBySocket.get(socket);
  if (watching === undefined) {
    const signals = new Set<DisconnectSignal>();
    watching = signals;
    inFlightBySocket.set(socket, signals);
    request.raw.socket.once('close', () => {
      for (const signal of signals) signal.abort();
      signals.clear();
    });
  }
  const signal = new DisconnectSignal();
  watching.add(signal);
  return { signal, watching };
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
  const model = deps.resolveModelNow?.(request, target.name, target.versionOrAlias) ?? (await deps.resolveModel(request, target.name, target.versionOrAlias));
  nameServedVersionOn(reply.raw, model.version);
  const started = performance.now();
  const { key, labels } = servingKeysOf(model);
  const measures: InferenceMeasures = { items: 0 };
  let reservation: ItemReservation | undefined;
  try {
    const parsed = parse(model.signature ?? (await signatureOf(deps, model)));
    // The parsed request holds its own tensors now. The JSON body (arrays of numbers as large as the
    // tensors) would otherwise stay reachable until the answer is sent: under load long enough for
    // the young-generation GC to copy it and promote it to the old generation, which showed in
    // profiles as GC time per request.
    request.body = undefined;
    measures.items = itemsOf(parsed.request);
    const admission = deps.admit?.(request, model, measures.items);
    if (admission !== undefined) reservation = await admission;
    // Copied before the inference: its input buffers are transferred to a worker.
    const sampled = deps.drift === undefined ? undefined : deps.drift.sample(model, parsed.request);
    const disconnect = watchDisconnect(request);
    // Copied before the live call: a runtime may take over the request's buffers.
    const shadow = model.shadow === undefined || deps.shadows === undefined ? undefined : { model: model.shadow, series: shadowSeries(model, model.shadow) };
    const admitted = shadow === undefined ? undefined : deps.shadows?.admit(shadow.series, parsed.request);
    let response: InferResponse;
    const inferStarted = performance.now();
    try {
      response = await deps.manager.infer(key, parsed.request, {
        fairnessKey: request.principal?.keyId ?? '',
        ...(disconnect === undefined ? {} : { signal: disconnect.signal }),
      });
    } catch (error) {
      admitted?.release();
      throw error;
    } finally {
      disconnect?.watching.delete(disconnect.signal);
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
    if (settled !== undefined) await settled.settle({ predictions: measures.items }).catch((error: unknown) => request.log.error({ err: error }, 'could not settle a quota reservation'));
    return rendered;
  } catch (error) {
    deps.metrics.recordRequest(labels, protocol, 'error', (performance.now() - started) / 1000);
    deps.onInference?.(request, model, protocol, 'error', measures);
    await reservation?.release().catch((releaseError: unknown) => request.log.error({ err: releaseError }, 'could not release a quota reservation'));
    throw error;
  }
}
