/**
 * GGUF language models: the header is read by our bounds-checked reader in a child process, and
 * versions run in the server process on node-llama-cpp, which computes on its own native threads
 * off the event loop and batches its sequences itself. One llama.cpp instance per server, created
 * on the first GGUF load (node-llama-cpp is imported only then, so servers without language models
 * start as fast as before), from node-llama-cpp's prebuilt binaries (`build: 'never'`: nothing is
 * compiled or downloaded), with a GPU when the machine has one. The backend that loaded is logged.
 */
import type { Llama } from 'node-llama-cpp';
import { AiaasError } from '../../errors.ts';
import type { LanguageFormatDescriptor } from '../format.ts';
import { validateGgufFileInChild, validateGgufInChild } from './validate-gguf-in-child.ts';

/** GGUF files start with the ASCII magic `GGUF`. */
export function isGguf(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x47 && bytes[1] === 0x47 && bytes[2] === 0x55 && bytes[3] === 0x46;
}

export const ggufFormat: LanguageFormatDescriptor = {
  specificationVersion: 'v1',
  name: 'gguf',
  fileName: 'model.gguf',
  capability: 'language',
  placement: 'in-process',
  externalData: false,
  // The header is read, nothing is loaded: the runtime counts weights and KV cache itself (memoryBytes).
  measuresMemory: false,
  matches: isGguf,
  async validate(source, limits) {
    const description = source.path !== undefined ? await validateGgufFileInChild(source.path, limits) : await validateGgufInChild(source, limits);
    // Stored as the version's signature: the header's description plus the file's hash.
    return { signature: { ...description.signature, sha256: description.sha256 }, chatTemplate: description.chatTemplate };
  },
  createLoader(settings, log) {
    let llama: Promise<Llama> | undefined;
    const getLlamaOnce = (): Promise<Llama> =>
      (llama ??= (async () => {
        const { getLlama } = await import('node-llama-cpp');
        const instance = await getLlama({ gpu: 'auto', build: 'never' });
        log.info({ gpu: instance.gpu, buildType: instance.buildType, cpuMathCores: instance.cpuMathCores }, `llama.cpp loaded (${instance.gpu === false ? 'CPU' : instance.gpu} backend, ${instance.buildType} build)`);
        return instance;
      })().catch((error: unknown) => {
        llama = undefined;
        throw new AiaasError('MODEL_LOAD_FAILED', `llama.cpp could not be loaded: ${(error as Error).message}`, { cause: error });
      }));

    return {
      async open(model, labels) {
        try {
          const { LlamaCppRuntime } = await import('./llama-cpp-runtime.ts');
          const runtime = await LlamaCppRuntime.open(await getLlamaOnce(), model.path, settings);
          log.info({ model: labels.name, version: labels.version, memoryBytes: runtime.memoryBytes(), ...runtime.info(), chatTemplate: undefined }, 'language model loaded');
          return runtime;
        } catch (error) {
          if (AiaasError.isInstance(error)) throw error;
          throw new AiaasError('MODEL_LOAD_FAILED', `the GGUF model could not be loaded: ${(error as Error).message}`, { cause: error });
        }
      },
      async close() {
        const loaded = llama;
        llama = undefined;
        if (loaded !== undefined) await (await loaded.catch(() => undefined))?.dispose();
      },
    };
  },
};
