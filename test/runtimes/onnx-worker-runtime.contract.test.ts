/** The ONNX worker-thread runtime against the tensor runtime contract, with one instance and with two. */
import { openOnnxInWorkers } from '../../src/runtimes/onnx/onnx-worker-runtime.ts';
import { runTensorRuntimeContract } from './tensor-runtime.contract.ts';

for (const instances of [1, 2]) {
  runTensorRuntimeContract({
    name: `openOnnxInWorkers, ${instances} instance${instances === 1 ? '' : 's'}`,
    open: (model) => openOnnxInWorkers(model, { instances, intraOpThreads: 1 }),
  });
}
