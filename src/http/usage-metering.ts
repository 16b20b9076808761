/**
 * Feeds the usage ledger from HTTP: inferences (V2, TF-Serving) and generations (OpenAI, Ollama)
 * with their key, model, version and protocol, request bytes on the way in, and response bytes
 * as each answer is sent. Everything is recorded before the answer leaves, so whatever a client
 * was answered for is in the ledger's buffer when a graceful shutdown flushes it.
 */
import { Transform, type TransformCallback } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { UsageDimensions, UsageEvent, UsageProtocol } from '../billing/ledger.ts';
import type { GenerationUsage } from '../runtimes/generative.ts';
import type { InferenceMeasures } from './protocols/route-support.ts';

export interface UsageRecorder {
  record(event: UsageEvent): void;
}

export interface UsageMeter {
  /** One inference that reached a model: billed when 'ok', recorded as a failure otherwise. */
  inference(request: FastifyRequest, model: { name: string; version: string }, protocol: UsageProtocol, outcome: 'ok' | 'error', measures: InferenceMeasures): void;
  /** One generation or embedding call: its tokens, and the generation time as compute. */
  generation(request: FastifyRequest, model: { name: string; version: string }, protocol: UsageProtocol, usage: GenerationUsage & { computeMs?: number }, outcome: 'ok' | 'error'): void;
  /** A streamed answer's body bytes (past Fastify's onSend), for a request already recorded as answered. */
  streamed(request: FastifyRequest, bytes: number): void;
  /** Counts request bodies sent without Content-Length, and response bytes of metered requests. */
  install(app: FastifyInstance, isMeteredUrl: (url: string) => boolean): void;
}

/** Counts the bytes that pass through. */
class ByteCounter extends Transform {
  bytes = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    done(null, chunk);
  }
}

function payloadBytes(payload: unknown): number | undefined {
  if (typeof payload === 'string') return Buffer.byteLength(payload, 'utf8');
  if (payload instanceof Uint8Array) return payload.byteLength;
  return undefined;
}

function timingUnits(measures: InferenceMeasures): { computeMs?: number; queueMs?: number } {
  return measures.timing === undefined ? {} : { computeMs: measures.timing.billedComputeMs, queueMs: measures.timing.queueMs };
}

export function createUsageMeter(ledger: UsageRecorder): UsageMeter {
  /** Requests recorded so far, for their response bytes; weak, so a finished request leaves nothing. */
  const dimensionsOf = new WeakMap<FastifyRequest, UsageDimensions>();
  const countedBodies = new WeakMap<FastifyRequest, ByteCounter>();
  /**
   * Answered inferences waiting for their response bytes: recorded once, at onSend (still before the
   * answer leaves), as one ledger event rather than one for the units and another for the bytes.
   */
  const answeredInferences = new WeakMap<FastifyRequest, UsageEvent>();

  const bytesIn = (request: FastifyRequest): number => {
    const counted = countedBodies.get(request);
    if (counted !== undefined) return counted.bytes;
    const length = Number(request.headers['content-length']);
    return Number.isSafeInteger(length) && length > 0 ? length : 0;
  };

  const dimensions = (request: FastifyRequest, model: { name: string; version: string }, protocol: UsageProtocol): UsageDimensions | undefined => {
    const principal = request.principal;
    if (principal === undefined) return undefined;
    const version = Number(model.version);
    return { tenantId: principal.tenantId, keyId: principal.keyId, modelName: model.name, version: Number.isSafeInteger(version) ? version : 0, protocol };
  };

  /** An answered request: its units, its body once, and (at onSend) its response bytes. */
  const recordAnswered = (request: FastifyRequest, where: UsageDimensions, units: Omit<UsageEvent, keyof UsageDimensions>): void => {
    const first = !dimensionsOf.has(request);
    dimensionsOf.set(request, where);
    ledger.record({ ...where, ...units, ...(first ? { bytesIn: bytesIn(request) } : {}) });
  };
  /** A metered request; a failed one is recorded as a failure and nothing else: none of its units are billable. */
  const recordOutcome = (
    request: FastifyRequest,
    model: { name: string; version: string },
    protocol: UsageProtocol,
    outcome: 'ok' | 'error',
    units: Omit<UsageEvent, keyof UsageDimensions>,
  ): void => {
    const where = dimensions(request, model, protocol);
    if (where === undefined) return;
    if (outcome !== 'ok') ledger.record({ ...where, failedRequests: 1 });
    else recordAnswered(request, where, units);
  };

  return {
    inference(request, model, protocol, outcome, measures) {
      const where = dimensions(request, model, protocol);
      if (where === undefined) return;
      if (outcome !== 'ok' || dimensionsOf.has(request) || answeredInferences.has(request)) {
        recordOutcome(request, model, protocol, outcome, { requests: 1, items: measures.items, ...timingUnits(measures) });
        return;
      }
      const timing = measures.timing;
      answeredInferences.set(request, {
        tenantId: where.tenantId,
        keyId: where.keyId,
        modelName: where.modelName,
        version: where.version,
        protocol: where.protocol,
        requests: 1,
        items: measures.items,
        computeMs: timing === undefined ? 0 : timing.billedComputeMs,
        queueMs: timing === undefined ? 0 : timing.queueMs,
        bytesIn: bytesIn(request),
        bytesOut: 0,
      });
    },

    generation(request, model, protocol, usage, outcome) {
      recordOutcome(request, model, protocol, outcome, {
        requests: 1,
        items: 1,
        promptTokens: usage.promptTokens,
        completionTokens: usage.completionTokens,
        ...(usage.computeMs === undefined ? {} : { computeMs: usage.computeMs }),
      });
    },

    streamed(request, bytes) {
      const where = dimensionsOf.get(request);
      if (where !== undefined && bytes > 0) ledger.record({ ...where, bytesOut: bytes });
    },

    install(app, isMeteredUrl) {
      // Callback hooks: they run on every request, and an async hook costs a promise and a microtask.
      app.addHook('preParsing', (request, _reply, payload, done) => {
        if (request.headers['content-length'] !== undefined || !isMeteredUrl(request.url)) {
          done(null, payload);
          return;
        }
        const counter = new ByteCounter();
        countedBodies.set(request, counter);
        payload.on('error', (error) => counter.destroy(error));
        done(null, payload.pipe(counter));
      });
      app.addHook('onSend', (request, _reply, payload, done) => {
        const answered = answeredInferences.get(request);
        if (answered !== undefined) {
          answeredInferences.delete(request);
          answered.bytesOut = payloadBytes(payload) ?? 0;
          ledger.record(answered);
          done(null, payload);
          return;
        }
        const where = dimensionsOf.get(request);
        if (where !== undefined) {
          const bytes = payloadBytes(payload);
          if (bytes !== undefined && bytes > 0) ledger.record({ ...where, bytesOut: bytes });
        }
        done(null, payload);
      });
    },
  };
}
