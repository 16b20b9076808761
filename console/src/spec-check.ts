/**
 * Checks a model spec as it is typed: JSON syntax with line and column, then the structure
 * docs/model-spec.md describes (input shape, layer types and their required fields, compile). The
 * server validates again on submit; this is for fast feedback, so it checks only what it is sure of.
 */
export interface SpecProblem {
  message: string;
  line?: number;
  column?: number;
}

export const layerTypes: Readonly<Record<string, { required: string[]; allowed: string[] }>> = {
  dense: { required: ['units'], allowed: ['units', 'activation', 'useBias', 'kernelInitializer', 'biasInitializer'] },
  dropout: { required: ['rate'], allowed: ['rate'] },
  flatten: { required: [], allowed: [] },
  conv2d: { required: ['filters', 'kernelSize'], allowed: ['filters', 'kernelSize', 'strides', 'padding', 'activation', 'useBias', 'kernelInitializer', 'biasInitializer'] },
  maxPooling2d: { required: [], allowed: ['poolSize', 'strides', 'padding'] },
  activation: { required: ['activation'], allowed: ['activation'] },
  normalization: { required: [], allowed: ['epsilon'] },
};

const activations = ['linear', 'sigmoid', 'tanh', 'relu', 'softmax'];
const losses = ['meanSquaredError', 'binaryCrossentropy', 'categoricalCrossentropy', 'sparseCategoricalCrossentropy'];
const optimizers = ['gd', 'sgd', 'adagrad', 'rmsprop', 'adam'];
const metricNames = ['accuracy', 'meanAbsoluteError'];

/** Line and column (1-based) of a character offset. */
export function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, Math.max(0, Math.min(offset, text.length)));
  const lines = before.split('\n');
  return { line: lines.length, column: lines[lines.length - 1]!.length + 1 };
}

/** Where JSON.parse failed: engines say "at position N" or "(line L column C)". */
export function jsonSyntaxProblem(text: string): SpecProblem | undefined {
  try {
    JSON.parse(text);
    return undefined;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const lineColumn = /line (\d+) column (\d+)/.exec(message);
    if (lineColumn !== null) return { message: cleanMessage(message), line: Number(lineColumn[1]), column: Number(lineColumn[2]) };
    const position = /position (\d+)/.exec(message);
    if (position !== null) return { message: cleanMessage(message), ...lineAndColumn(text, Number(position[1])) };
    if (/end of (JSON )?input/i.test(message)) return { message: 'Unexpected end of JSON input', ...lineAndColumn(text, text.length) };
    return { message: cleanMessage(message) };
  }
}

function cleanMessage(message: string): string {
  return message.replace(/\s*(in JSON )?at position \d+.*$/s, '').replace(/\s*\(line \d+ column \d+\)/, '');
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isPositiveInteger(value: unknown): boolean {
  return typeof value === 'number' && Number.isInteger(value) && value > 0;
}

/** Structural problems of a parsed spec (empty when it looks right). */
export function specProblems(spec: unknown): SpecProblem[] {
  const problems: SpecProblem[] = [];
  const problem = (message: string) => problems.push({ message });
  if (!isObject(spec)) return [{ message: 'The spec must be a JSON object with input, layers and compile.' }];
  for (const field of Object.keys(spec)) if (!['name', 'input', 'layers', 'compile'].includes(field)) problem(`Unknown top-level field "${field}" (expected name, input, layers, compile).`);
  if (spec.name !== undefined && (typeof spec.name !== 'string' || !/^[A-Za-z0-9._-]{1,128}$/.test(spec.name))) problem('name: letters, digits, ".", "_", "-"; at most 128.');
  if (!isObject(spec.input)) problem('input: required, an object like {"shape": [28, 28]}.');
  else {
    const shape = spec.input.shape;
    if (!Array.isArray(shape) || shape.length < 1 || shape.length > 3 || !shape.every(isPositiveInteger)) problem('input.shape: 1 to 3 positive integers, e.g. [28, 28] or [4].');
    for (const field of ['scale', 'offset']) if (spec.input[field] !== undefined && typeof spec.input[field] !== 'number') problem(`input.${field}: a number.`);
  }
  if (!Array.isArray(spec.layers) || spec.layers.length === 0) problem('layers: required, a list of 1 to 256 layers.');
  else {
    if (spec.layers.length > 256) problem('layers: at most 256.');
    spec.layers.forEach((layer: unknown, index: number) => {
      const where = `layers[${index}]`;
      if (!isObject(layer)) return problem(`${where}: an object like {"type": "dense", "units": 10}.`);
      const type = layer.type;
      const known = typeof type === 'string' ? layerTypes[type] : undefined;
      if (known === undefined) return problem(`${where}.type: ${JSON.stringify(type ?? null)} is not a layer type (${Object.keys(layerTypes).join(', ')}).`);
      for (const field of known.required) if (layer[field] === undefined) problem(`${where} (${type}): "${field}" is required.`);
      for (const field of Object.keys(layer)) if (field !== 'type' && field !== 'name' && !known.allowed.includes(field)) problem(`${where} (${type}): unknown field "${field}".`);
      if (layer.units !== undefined && !isPositiveInteger(layer.units)) problem(`${where}.units: a positive integer.`);
      if (layer.filters !== undefined && !isPositiveInteger(layer.filters)) problem(`${where}.filters: a positive integer.`);
      if (layer.rate !== undefined && !(typeof layer.rate === 'number' && layer.rate >= 0 && layer.rate < 1)) problem(`${where}.rate: a number in [0, 1).`);
      if (layer.activation !== undefined && !activations.includes(String(layer.activation))) problem(`${where}.activation: one of ${activations.join(', ')}.`);
      if (layer.padding !== undefined && !['valid', 'same'].includes(String(layer.padding))) problem(`${where}.padding: "valid" or "same".`);
    });
  }
  if (!isObject(spec.compile)) problem('compile: required, {"optimizer": "adam", "loss": "sparseCategoricalCrossentropy"}.');
  else {
    const optimizer = spec.compile.optimizer;
    const optimizerType = typeof optimizer === 'string' ? optimizer : isObject(optimizer) ? optimizer.type : undefined;
    if (optimizer === undefined) problem('compile.optimizer: required.');
    else if (!optimizers.includes(String(optimizerType))) problem(`compile.optimizer: one of ${optimizers.join(', ')}.`);
    if (spec.compile.loss === undefined) problem('compile.loss: required.');
    else if (!losses.includes(String(spec.compile.loss))) problem(`compile.loss: one of ${losses.join(', ')}.`);
    const metrics = spec.compile.metrics;
    if (metrics !== undefined && !(Array.isArray(metrics) && metrics.every((metric) => metricNames.includes(String(metric))))) problem(`compile.metrics: a list of ${metricNames.join(', ')}.`);
  }
  return problems;
}

export function checkSpecText(text: string): SpecProblem[] {
  const syntax = jsonSyntaxProblem(text);
  if (syntax !== undefined) return [syntax];
  return specProblems(JSON.parse(text));
}
