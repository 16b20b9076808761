/**
 * Promotion gates: what an alias requires of a version before it may receive the alias's traffic.
 * Parsing and the pass/fail decision are pure; running or reusing the evaluations is
 * alias-changes.ts's job.
 */
import { AiaasError, quoteForError } from '../errors.ts';
import { gateMetrics } from './metrics.ts';

export interface PromotionGate {
  /** A report figure (see `gateMetrics`): accuracy, macroF1, rocAuc, rootMeanSquaredError, … */
  metric: string;
  datasetId: string;
  /** The figure must be at least this (higher-is-better metrics) … */
  minimum?: number;
  /** … or at most this (lower-is-better metrics, or a cap on any). */
  maximum?: number;
  /** At most this much worse than the version the alias points at now, in the metric's direction. */
  maxDropFromCurrent?: number;
  /** Evaluation options for the gate's reports. */
  outputs?: string;
  label?: string;
}

const gateFields = ['metric', 'datasetId', 'minimum', 'maximum', 'maxDropFromCurrent', 'outputs', 'label'];

function invalid(field: string, expected: string, actual: unknown): AiaasError {
  return new AiaasError('INVALID_REQUEST', `gate.${field}: expected ${expected}, got ${actual === undefined ? 'nothing' : quoteForError(actual)}`, { details: { field: `gate.${field}` } });
}

/** Validates a gate; null clears it. At least one of minimum, maximum, maxDropFromCurrent is required. */
export function parseGate(value: unknown): PromotionGate | null {
  if (value === null) return null;
  if (typeof value !== 'object' || Array.isArray(value)) throw invalid('', 'an object {metric, datasetId, minimum | maximum | maxDropFromCurrent}', value);
  const body = value as Record<string, unknown>;
  for (const key of Object.keys(body)) if (!gateFields.includes(key)) throw invalid(key.slice(0, 120), `only the fields ${gateFields.join(', ')}`, key);
  if (typeof body.metric !== 'string' || gateMetrics[body.metric] === undefined) throw invalid('metric', `one of ${Object.keys(gateMetrics).join(', ')}`, body.metric);
  if (typeof body.datasetId !== 'string' || body.datasetId.length === 0 || body.datasetId.length > 200) throw invalid('datasetId', 'a dataset id', body.datasetId);
  const gate: PromotionGate = { metric: body.metric, datasetId: body.datasetId };
  for (const field of ['minimum', 'maximum', 'maxDropFromCurrent'] as const) {
    const figure = body[field];
    if (figure === undefined) continue;
    if (typeof figure !== 'number' || !Number.isFinite(figure) || (field === 'maxDropFromCurrent' && figure < 0)) {
      throw invalid(field, field === 'maxDropFromCurrent' ? 'a number ≥ 0' : 'a finite number', figure);
    }
    gate[field] = figure;
  }
  if (gate.minimum === undefined && gate.maximum === undefined && gate.maxDropFromCurrent === undefined) {
    throw invalid('minimum', 'at least one of minimum, maximum or maxDropFromCurrent', undefined);
  }
  for (const field of ['outputs', 'label'] as const) {
    const text = body[field];
    if (text === undefined) continue;
    if (typeof text !== 'string' || text.length === 0 || text.length > 256) throw invalid(field, 'a name', text);
    gate[field] = text;
  }
  return gate;
}

export interface GateFigure {
  version: number;
  value: number;
  evaluationId: string;
}

export interface GateDecision {
  passed: boolean;
  metric: string;
  datasetId: string;
  candidate: GateFigure;
  /** The version the alias pointed at, when the gate compares with it. */
  current: GateFigure | null;
  /** The bound the candidate had to meet, and in which direction. */
  required: { atLeast?: number; atMost?: number };
}

/**
 * Decides a gate for one candidate. `current` is needed only for `maxDropFromCurrent`; without
 * it (a new alias) that bound does not apply.
 */
export function decideGate(gate: PromotionGate, candidate: GateFigure, current: GateFigure | null): GateDecision {
  const higherIsBetter = gateMetrics[gate.metric] === 'higher';
  const lowerBounds: number[] = [];
  const upperBounds: number[] = [];
  if (gate.minimum !== undefined) lowerBounds.push(gate.minimum);
  if (gate.maximum !== undefined) upperBounds.push(gate.maximum);
  if (gate.maxDropFromCurrent !== undefined && current !== null) {
    if (higherIsBetter) lowerBounds.push(current.value - gate.maxDropFromCurrent);
    else upperBounds.push(current.value + gate.maxDropFromCurrent);
  }
  const atLeast = lowerBounds.length === 0 ? undefined : Math.max(...lowerBounds);
  const atMost = upperBounds.length === 0 ? undefined : Math.min(...upperBounds);
  // A small tolerance, so a version evaluated equal to the current one (float noise) never fails a zero-drop gate.
  const slack = 1e-12;
  const passed = (atLeast === undefined || candidate.value >= atLeast - slack) && (atMost === undefined || candidate.value <= atMost + slack);
  return {
    passed,
    metric: gate.metric,
    datasetId: gate.datasetId,
    candidate,
    current: gate.maxDropFromCurrent === undefined ? null : current,
    required: { ...(atLeast === undefined ? {} : { atLeast }), ...(atMost === undefined ? {} : { atMost }) },
  };
}
