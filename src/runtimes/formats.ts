/**
 * Every model format the server knows, by the name stored in a version's `format` column. Adding a
 * format is a folder under runtimes/ with a `format.ts` descriptor, and one line here.
 */
import { AiaasError } from '../errors.ts';
import type { FormatDescriptor, FormatLoader, LanguageModelRuntime, OpenRequest, RuntimeLog, RuntimeSettings } from './format.ts';
import { ggufFormat } from './gguf/format.ts';
import { onnxFormat } from './onnx/format.ts';
import type { Runtime } from './runtime.ts';

const formats: readonly FormatDescriptor[] = [
  onnxFormat,
  ggufFormat,
];

/** What a file no format claims by its first bytes is tried as (ONNX has no magic). */
const fallbackFormat: FormatDescriptor = onnxFormat;

/** The descriptor of a stored format name; INTERNAL for a name this server does not know (a newer server's row). */
export function formatNamed(name: string): FormatDescriptor {
  const format = formats.find((candidate) => candidate.name === name);
  if (format === undefined) throw new AiaasError('INTERNAL', `this server does not know the model format '${name}'`);
  return format;
}

/** The format of an uploaded file by its first bytes (up to 512). */
export function formatOfFile(head: Uint8Array): FormatDescriptor {
  return formats.find((format) => format.matches(head)) ?? fallbackFormat;
}

/** What a loader opened: a tensor runtime or a language model, as the format's capability says. */
export type OpenedRuntime = { capability: 'tensor'; runtime: Runtime } | { capability: 'language'; runtime: LanguageModelRuntime };

/** One loader per format, created on first use with the server's settings; `close` ends their shared state. */
export interface FormatLoaders {
  open(format: string, model: OpenRequest, labels: { name?: string; version?: string }): Promise<OpenedRuntime>;
  close(): Promise<void>;
}

export function createFormatLoaders(settings: RuntimeSettings, log: RuntimeLog): FormatLoaders {
  const tensorLoaders = new Map<string, FormatLoader<Runtime>>();
  const languageLoaders = new Map<string, FormatLoader<LanguageModelRuntime>>();
  return {
    async open(name, model, labels) {
      const format = formatNamed(name);
      if (format.capability === 'tensor') {
        let loader = tensorLoaders.get(name);
        if (loader === undefined) tensorLoaders.set(name, (loader = format.createLoader(settings.tensor, log)));
        return { capability: 'tensor', runtime: await loader.open(model, labels) };
      }
      let loader = languageLoaders.get(name);
      if (loader === undefined) languageLoaders.set(name, (loader = format.createLoader(settings.language, log)));
      return { capability: 'language', runtime: await loader.open(model, labels) };
    },
    async close() {
      const loaders = [...tensorLoaders.values(), ...languageLoaders.values()];
      tensorLoaders.clear();
      languageLoaders.clear();
      await Promise.all(loaders.map((loader) => loader.close()));
    },
  };
}
