/**
 * The explain endpoint's adapter (`POST /v2/models/:name[/versions/:v]/explain`): a V2
 * $inference_request plus the explanation's options, each at the top level or inside `parameters`
 * (not both), into one ExplanationRequest; and the result back as a V2-style response whose one
 * output, `attributions`, has the explained input's shape.
 */
import { AiaasError, quoteForError } from '../../errors.ts';
import { explanationLimits, explanationMethods, type ExplanationMethod, type ExplanationRequest, type ExplanationResult } from '../../explain/explainer.ts';
import { riemannRules, type RiemannRule } from '../../explain/integrated-gradients.ts';
import type { ModelSignature, Tensor } from '../../runtimes/runtime.ts';
import type { ParameterValue } from '../../inference/types.ts';

const optionNames = ['method', 'target', 'output', 'input', 'steps', 'rule', 'baseline', 'window', 'stride', 'repeats', 'seed', 'format', 'scale'] as const;
type OptionName = (typeof optionNames)[number];

export interface ExplainOptions {
  request: Omit<ExplanationRequest, 'inputs'>;
  format: 'json' | 'png';
  scale?: number;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function invalid(option: string, message: string): AiaasError {
  return new AiaasError('INVALID_REQUEST', `${option}: ${message}`, { details: { field: option } });
}

function integer(option: string, value: unknown, minimum: number, maximum: number): number {
  const number = typeof value === 'string' && /^-?[0-9]+$/.test(value) ? Number(value) : value;
  if (typeof number !== 'number' || !Number.isInteger(number) || number < minimum || number > maximum) throw invalid(option, `must be an integer in [${minimum}, ${maximum}], got ${quoteForError(value)}`);
  return number;
}

/** One size, or one per dimension: a number, an array, or "1,4,4" (V2 parameters hold scalars only). */
function sizes(option: string, value: unknown): number | number[] {
  if (typeof value === 'string') {
    const parts = value.split(/[,x×]/).map((part) => part.trim());
    if (parts.length === 0 || parts.some((part) => !/^[0-9]+$/.test(part))) throw invalid(option, `must be a positive integer or a list like "1,4,4", got ${quoteForError(value)}`);
    const numbers = parts.map((part) => integer(option, part, 1, 1 << 20));
    return numbers.length === 1 ? numbers[0]! : numbers;
  }
  if (Array.isArray(value)) return value.map((item) => integer(option, item, 1, 1 << 20));
  return integer(option, value, 1, 1 << 20);
}

/** The body without the explanation's own fields, for the V2 tensor parser. */
export function inferencePart(body: unknown): unknown {
  if (!isObject(body)) return body;
  const rest: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(body)) if (!(optionNames as readonly string[]).includes(key)) rest[key] = value;
  if (isObject(body.parameters)) {
    rest.parameters = Object.fromEntries(Object.entries(body.parameters).filter(([key]) => !(optionNames as readonly string[]).includes(key)));
  }
  return rest;
}

/** Reads the options from the body's top level and its `parameters`. */
export function parseExplainOptions(body: unknown, signature: ModelSignature, defaults: { inputGradients: boolean }): ExplainOptions {
  if (!isObject(body)) throw new AiaasError('INVALID_REQUEST', 'the request body must be a JSON object with an "inputs" array');
  const parameters = isObject(body.parameters) ? (body.parameters as Record<string, ParameterValue>) : {};
  const option = (name: OptionName): unknown => {
    if (body[name] !== undefined && parameters[name] !== undefined) throw invalid(name, 'given both at the top level and in parameters; give it once');
    return body[name] ?? parameters[name];
  };
  const methodValue = option('method') ?? (defaults.inputGradients ? 'integrated_gradients' : 'occlusion');
  if (!(explanationMethods as readonly unknown[]).includes(methodValue)) throw invalid('method', `must be one of ${explanationMethods.join(', ')}, got ${quoteForError(methodValue)}`);
  const ruleValue = option('rule') ?? 'trapezoid';
  if (!(riemannRules as readonly unknown[]).includes(ruleValue)) throw invalid('rule', `must be one of ${riemannRules.join(', ')}, got ${quoteForError(ruleValue)}`);
  const formatValue = option('format') ?? 'json';
  if (formatValue !== 'json' && formatValue !== 'png') throw invalid('format', `must be "json" or "png", got ${quoteForError(formatValue)}`);
  const outputValue = option('output') ?? signature.outputs[0]?.name;
  if (typeof outputValue !== 'string') throw invalid('output', 'must name one of the model\'s outputs');
  const inputValue = option('input') ?? (signature.inputs.find((spec) => spec.datatype === 'FP32') ?? signature.inputs[0])?.name;
  if (typeof inputValue !== 'string') throw invalid('input', 'must name one of the model\'s inputs');
  const baselineValue = option('baseline') ?? 0;
  let baseline: number | Float32Array;
  if (typeof baselineValue === 'number' && Number.isFinite(baselineValue)) baseline = baselineValue;
  else if (Array.isArray(baselineValue) && baselineValue.every((item) => typeof item === 'number' && Number.isFinite(item))) baseline = Float32Array.from(baselineValue as number[]);
  else throw invalid('baseline', 'must be a finite number or an array of finite numbers (one sample, flat)');
  const target = option('target');
  const window = option('window');
  const stride = option('stride');
  const scale = option('scale');
  return {
    request: {
      method: methodValue as ExplanationMethod,
      input: inputValue,
      output: outputValue,
      ...(target === undefined ? {} : { target: integer('target', target, 0, Number.MAX_SAFE_INTEGER) }),
      steps: integer('steps', option('steps') ?? 128, 1, explanationLimits.maxSteps),
      rule: ruleValue as RiemannRule,
      baseline,
      ...(window === undefined ? {} : { window: sizes('window', window) }),
      ...(stride === undefined ? {} : { stride: sizes('stride', stride) }),
      repeats: integer('repeats', option('repeats') ?? 5, 1, explanationLimits.maxRepeats),
      seed: integer('seed', option('seed') ?? 0, -(2 ** 31), 2 ** 32 - 1),
    },
    format: formatValue,
    ...(scale === undefined ? {} : { scale: integer('scale', scale, 1, 16) }),
  };
}

function finiteOrNull(value: number): number | null {
  return Number.isFinite(value) ? value : null;
}

export function renderExplanation(model: { name: string; version: string }, id: string | undefined, result: ExplanationResult): Record<string, unknown> {
  const attributions: Tensor = { name: 'attributions', datatype: 'FP32', shape: result.shape, data: result.attributions };
  return {
    model_name: model.name,
    model_version: model.version,
    ...(id === undefined ? {} : { id }),
    outputs: [{ name: attributions.name, datatype: attributions.datatype, shape: attributions.shape, data: Array.from(result.attributions, finiteOrNull) }],
    explanation: {
      method: result.method,
      input: result.input,
      output: result.output,
      targets: result.targets,
      scores: result.scores.map(finiteOrNull),
      ...(result.baselineScores === undefined ? {} : { baseline_scores: result.baselineScores.map(finiteOrNull) }),
      ...(result.deltas === undefined ? {} : { deltas: result.deltas.map(finiteOrNull) }),
      ...(result.steps === undefined ? {} : { steps: result.steps }),
      ...(result.rule === undefined ? {} : { rule: result.rule }),
      ...(result.window === undefined ? {} : { window: result.window }),
    },
  };
}
