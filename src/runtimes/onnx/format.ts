/**
 * ONNX models: validated by ONNX Runtime in a child process, served from worker threads (one
 * session per instance), opened from the file's path so external data resolves beside it.
 */
import type { TensorFormatDescriptor } from '../format.ts';
import { openOnnxInWorkers } from './onnx-worker-runtime.ts';
import { validateOnnxFileInChild, validateOnnxInChild } from './validate-in-child.ts';

export const onnxFormat: TensorFormatDescriptor = {
  specificationVersion: 'v1',
  name: 'onnx',
  fileName: 'model.onnx',
  capability: 'tensor',
  placement: 'worker',
  externalData: true,
  measuresMemory: true,
  // ONNX has no magic (a protobuf may order its fields freely): it is the fallback for files no
  // other format claims, and its validator says precisely what is wrong with one that is not ONNX.
  matches: () => false,
  async validate(source, limits) {
    const options = {
      ...(limits.timeoutMs === undefined ? {} : { timeoutMs: limits.timeoutMs }),
      ...(limits.memoryLimitBytes === undefined ? {} : { memoryLimitBytes: limits.memoryLimitBytes }),
      ...(limits.memoryPollMs === undefined ? {} : { memoryPollMs: limits.memoryPollMs }),
      ...(limits.scratchRoot === undefined ? {} : { scratchRoot: limits.scratchRoot }),
      ...(limits.childScriptPath === undefined ? {} : { scriptPath: limits.childScriptPath }),
    };
    const validation =
      source.path !== undefined
        ? await validateOnnxFileInChild(source.path, options)
        : await validateOnnxInChild({ onnx: source, ...(source.externalData === undefined ? {} : { externalData: source.externalData }) }, options);
    return { signature: validation.signature, ...(validation.measuredMemoryBytes === undefined ? {} : { measuredMemoryBytes: validation.measuredMemoryBytes }) };
  },
  createLoader(settings) {
    return {
      // Budgeted at the bytes measured for one instance at upload, times the instances; versions
      // stored before measuring fall back to openOnnxInWorkers' estimate (file size × instances).
      open: (model) =>
        openOnnxInWorkers(model, {
          instances: settings.instances,
          intraOpThreads: settings.intraOpThreads,
          ...(settings.nice === undefined ? {} : { nice: settings.nice }),
          ...(model.measuredMemoryBytes === undefined ? {} : { measuredMemoryBytes: model.measuredMemoryBytes * settings.instances }),
        }),
      close: async () => undefined,
    };
  },
};
