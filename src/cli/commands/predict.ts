import type { TfServingPredictRequest, V2InferRequest } from '../../sdk/types.ts';
import { CliUsageError, choiceOption, requiredOption, type CommandDefinition } from '../command.ts';
import { json } from '../format.ts';
import { readJsonFile } from './jobs.ts';

export type Protocol = 'v2' | 'tfserving';

export interface ModelReference {
  name: string;
  version: number | undefined;
  alias: string | undefined;
}

/** `mnist`, `mnist@3`, `mnist@production`: digits name a version, anything else an alias. */
export function parseModelReference(text: string): ModelReference {
  const at = text.lastIndexOf('@');
  const name = at === -1 ? text : text.slice(0, at);
  const target = at === -1 ? undefined : text.slice(at + 1);
  if (name === '' || target === '') throw new CliUsageError(`expected MODEL, MODEL@VERSION or MODEL@ALIAS, got "${text}"`, 'predict');
  if (target === undefined) return { name, version: undefined, alias: undefined };
  if (/^\d+$/.test(target)) return { name, version: Number(target), alias: undefined };
  return { name, version: undefined, alias: target };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A V2 request has `inputs` as a list of named, typed tensors; anything else with instances/inputs is TF-Serving. */
export function detectProtocol(body: unknown): Protocol {
  if (isRecord(body) && body.instances !== undefined) return 'tfserving';
  if (isRecord(body) && Array.isArray(body.inputs) && body.inputs.length > 0 && body.inputs.every((input) => isRecord(input) && typeof input.datatype === 'string')) return 'v2';
  return 'tfserving';
}

export const predictCommand: CommandDefinition = {
  path: ['predict'],
  summary: 'send an inference request (KServe V2 or TF-Serving) and print the response JSON',
  usage: 'MODEL[@VERSION|@ALIAS] --input FILE.json [--protocol v2|tfserving]',
  description:
    'FILE.json holds a V2 request ({"inputs": [{"name", "datatype", "shape", "data"}]}) or a TF-Serving one\n' +
    '({"instances": [...]} or {"inputs": ...}). Without --protocol it is detected from the file.',
  positionals: ['MODEL'],
  options: {
    input: { type: 'string', valueName: 'FILE', description: 'request body (JSON)' },
    protocol: { type: 'string', valueName: 'PROTOCOL', description: 'v2 or tfserving (default: detected from the file)' },
  },
  server: true,
  examples: ['aiaas predict mnist@production --input digit.json', 'aiaas predict mnist@3 --input instances.json --protocol tfserving'],
  async run(context) {
    const reference = parseModelReference(context.positionals[0] as string);
    const chosen = choiceOption(context.values, 'protocol', ['v2', 'tfserving'] as const, 'predict');
    const body = await readJsonFile(context.io, requiredOption(context.values, 'input', 'predict'), 'input file');
    if (!isRecord(body)) throw new CliUsageError('the input file must hold a JSON object', 'predict');
    const protocol = chosen ?? detectProtocol(body);
    const client = context.client();
    const response =
      protocol === 'v2'
        ? await client.inferV2(reference.name, body as unknown as V2InferRequest, {
            signal: context.signal,
            ...(reference.version !== undefined ? { version: reference.version } : reference.alias !== undefined ? { version: reference.alias } : {}),
          })
        : await client.predictTfServing(reference.name, body as unknown as TfServingPredictRequest, {
            signal: context.signal,
            ...(reference.version !== undefined ? { version: reference.version } : {}),
            ...(reference.alias !== undefined ? { label: reference.alias } : {}),
          });
    context.io.stdout.write(json(response));
    return 0;
  },
};
