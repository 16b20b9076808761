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
  /** Opens a GGUF version from its private plaintext file (the model manager removes the file after unloading). */
  open(key: ModelKey, path: string): Promise<LanguageModelRuntime>;
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
    async open(key, path) {
      try {
        const { LlamaCppRuntime } = await import('../runtimes/gguf/llama-cpp-runtime.ts');
        const runtime = await LlamaCppRuntime.open(await getLlamaOnce(), path, {
          parallel: config.llmParallel,
          maxWaiting: config.llmMaxWaiting,
          threads: config.llmThreads,
          contextLength: config.llmContextLength,
          maxContextLength: config.llmMaxContextLength,
        });
        logger.info({ model: key.name, version: key.version, memoryBytes: runtime.memoryBytes(), ...runtime.info(), chatTemplate: undefined }, 'language model loaded');
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
}
