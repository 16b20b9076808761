/**
 * Language models in the composition root: one llama.cpp instance per server, created on the first
 * GGUF load (node-llama-cpp is imported only then, so servers without LLMs start as fast as before),
 * from node-llama-cpp's prebuilt binaries (`build: 'never'`: nothing is compiled or downloaded), with
 * a GPU when the machine has one. The backend that loaded is logged.
 */
import type { Logger } from 'pino';
import type { AiaasConfig } from '../config.ts';
import { AiaasError } from '../errors.ts';
import type { LanguageModelRuntime, ModelKey } from '../inference/model-manager.ts';
import type { Llama } from 'node-llama-cpp';

export interface LanguageModelLoader {
  /** Opens a GGUF version from its private plaintext file; the file is removed when the runtime is disposed. */
  open(key: ModelKey, file: { path: string; remove: () => Promise<void> }): Promise<LanguageModelRuntime>;
  close(): Promise<void>;
}

export function createLanguageModelLoader(
  config: Pick<AiaasConfig, 'llmParallel' | 'llmMaxWaiting' | 'llmThreads' | 'llmContextLength' | 'llmMaxContextLength'>,
  logger: Logger,
): LanguageModelLoader {
  let llama: Promise<Llama> | undefined;
  const getLlamaOnce = (): Promise<Llama> =>
    (llama ??= (async () => {
      const { getLlama } = await import('node-llama-cpp');
      const instance = await getLlama({ gpu: 'auto', build: 'never' });
      logger.info({ gpu: instance.gpu, buildType: instance.buildType, cpuMathCores: instance.cpuMathCores }, `llama.cpp loaded (${instance.gpu === false ? 'CPU' : instance.gpu} backend, ${instance.buildType} build)`);
      return instance;
    })().catch((error: unknown) => {
      llama = undefined;
      throw new AiaasError('MODEL_LOAD_FAILED', `llama.cpp could not be loaded: ${(error as Error).message}`, { cause: error });
    }));

  return {
    async open(key, file) {
      try {
        const { LlamaCppRuntime } = await import('../runtimes/gguf/llama-cpp-runtime.ts');
        const runtime = await LlamaCppRuntime.open(await getLlamaOnce(), file.path, {
          parallel: config.llmParallel,
          maxWaiting: config.llmMaxWaiting,
          threads: config.llmThreads,
          contextLength: config.llmContextLength,
          maxContextLength: config.llmMaxContextLength,
        });
        logger.info({ model: key.name, version: key.version, memoryBytes: runtime.memoryBytes(), ...runtime.info(), chatTemplate: undefined }, 'language model loaded');
        return withCleanup(runtime, file.remove);
      } catch (error) {
        await file.remove();
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
}

/** The runtime, with its plaintext file removed after it is disposed. */
function withCleanup(runtime: LanguageModelRuntime, cleanup: () => Promise<void>): LanguageModelRuntime {
  return {
    specificationVersion: 'v1',
    info: () => runtime.info(),
    countTokens: (text) => runtime.countTokens(text),
    stream: (request, signal) => runtime.stream(request, signal),
    generate: (request, signal) => runtime.generate(request, signal),
    load: () => runtime.load(),
    memoryBytes: () => runtime.memoryBytes(),
    embed: (inputs, signal) => runtime.embed(inputs, signal),
    async dispose() {
      try {
        await runtime.dispose();
      } finally {
        await cleanup();
      }
    },
  };
}
