import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { AiaasApiError } from '../../sdk/errors.ts';
import { CliUsageError, stringOption, type CommandDefinition } from '../command.ts';
import { json, writeListing } from '../format.ts';

export const modelCommands: readonly CommandDefinition[] = [
  {
    path: ['models', 'ls'],
    summary: 'list models with their versions and aliases',
    usage: '',
    server: true,
    json: true,
    async run(context) {
      const models = await context.client().models.list({ signal: context.signal });
      writeListing(context, 'models', models, ['NAME', 'VERSIONS', 'ALIASES', 'DESCRIPTION'], (model) => [
        model.name,
        (model.versions ?? []).join(',') || '-',
        (model.aliases ?? []).map((alias) => `${alias.name}→${alias.version}`).join(' ') || '-',
        model.description ?? '',
      ]);
      return 0;
    },
  },
  {
    path: ['models', 'push'],
    summary: 'add a version to a model from an .onnx file or a saved-model folder (creates the model if needed)',
    usage: 'NAME FILE_OR_DIR [--description TEXT] [--alias ALIAS]',
    description:
      'A folder (spec.json, model.safetensors, model.onnx, metrics.json, as `aiaas train --out` writes it) is packed\nas a .tar; a .tar file is sent as is; any other file is sent as .onnx. Prints the new version number.',
    positionals: ['NAME', 'FILE_OR_DIR'],
    options: {
      description: { type: 'string', valueName: 'TEXT', description: 'description, used only when the model is created' },
      alias: { type: 'string', valueName: 'ALIAS', description: 'then point this alias (e.g. production) at the new version' },
    },
    server: true,
    json: true,
    examples: ['aiaas models push mnist ./mnist-model --alias production', 'aiaas models push resnet resnet50.onnx'],
    async run(context) {
      const [name, source] = context.positionals as [string, string];
      const client = context.client();
      // Checked first so a mistyped path does not leave an empty model behind.
      const path = resolve(context.io.cwd, source);
      await stat(path);
      const description = stringOption(context.values, 'description');
      try {
        await client.models.get(name, { signal: context.signal });
      } catch (error) {
        if (!(AiaasApiError.isInstance(error) && error.status === 404)) throw error;
        await client.models.create({ name, ...(description === undefined ? {} : { description }) }, { signal: context.signal });
        if (!context.json) context.io.stderr.write(`created model ${name}\n`);
      }
      const version = await client.versions.upload(name, { source: { path }, signal: context.signal });
      const alias = stringOption(context.values, 'alias');
      if (alias !== undefined) await client.aliases.set(name, alias, version.version, { signal: context.signal });
      if (context.json) context.io.stdout.write(json(version));
      else {
        context.io.stdout.write(`${version.version}\n`);
        const signature = version.signature;
        const inputs = 'inputs' in signature ? signature.inputs.map((input) => `${input.name} ${input.datatype}[${input.shape.join(',')}]`).join(', ') : '';
        const described = 'architecture' in signature ? ` (gguf: ${signature.architecture}, ${signature.parameterCount} parameters, ${signature.quantization})` : inputs === '' ? '' : ` (inputs: ${inputs})`;
        context.io.stderr.write(`pushed ${name} version ${version.version}${described}${alias === undefined ? '' : `; ${alias} → ${version.version}`}\n`);
      }
      return 0;
    },
  },
  {
    path: ['models', 'alias'],
    summary: 'point an alias (production, staging, …) at a version; moves atomically',
    usage: 'NAME ALIAS VERSION',
    positionals: ['NAME', 'ALIAS', 'VERSION'],
    server: true,
    json: true,
    examples: ['aiaas models alias mnist production 3'],
    async run(context) {
      const [name, alias, versionText] = context.positionals as [string, string, string];
      const version = Number(versionText);
      if (!Number.isSafeInteger(version) || version < 1) throw new CliUsageError(`VERSION must be a version number ≥ 1, got "${versionText}"`, 'models alias');
      const result = await context.client().aliases.set(name, alias, version, { signal: context.signal });
      if (context.json) context.io.stdout.write(json(result));
      else context.io.stderr.write(`${name}@${result.name} → version ${result.version}\n`);
      return 0;
    },
  },
  {
    path: ['models', 'rm'],
    summary: 'delete a model and its versions (refused while aliases point at it)',
    usage: 'NAME',
    positionals: ['NAME'],
    server: true,
    async run(context) {
      const name = context.positionals[0] as string;
      await context.client().models.delete(name, { signal: context.signal });
      context.io.stderr.write(`deleted model ${name}\n`);
      return 0;
    },
  },
];
