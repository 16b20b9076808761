// One instance of an ONNX model in a worker thread (see onnx-worker-runtime.ts). Plain JavaScript so it
// runs under bare `node` whatever loader (tsx, vitest) the parent uses. ONNX Runtime's `run` blocks the
// thread it is called on for the whole inference, which is why it is called here and never on the
// server's main thread. Tensors arrive and leave as transferred ArrayBuffers, not copies.
import { parentPort, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import { lowerThreadPriority } from '../thread-priority.mjs';

const plain = (metadata) =>
  metadata.isTensor
    ? { name: metadata.name, isTensor: true, type: metadata.type, shape: [...metadata.shape] }
    : { name: metadata.name, isTensor: false };

const messageOf = (error) => (error instanceof Error ? error.message : String(error));

lowerThreadPriority(workerData.nice ?? 0);

let session;
try {
  session = await ort.InferenceSession.create(workerData.path, {
    intraOpNumThreads: workerData.intraOpThreads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
  });
  parentPort.postMessage({ type: 'ready', inputs: session.inputMetadata.map(plain), outputs: session.outputMetadata.map(plain) });
} catch (error) {
  parentPort.postMessage({ type: 'failed', message: messageOf(error) });
}

parentPort.on('message', async (message) => {
  if (message.type === 'dispose') {
    await session?.release();
    parentPort.close();
    return;
  }
  const { id, inputs, outputNames } = message;
  try {
    const feeds = {};
    for (const input of inputs) feeds[input.name] = new ort.Tensor(input.type, input.data, input.dims);
    // The usage ledger bills this figure and Server-Timing reports it: the run alone, no hand-over.
    const started = performance.now();
    const results = await session.run(feeds, outputNames);
    const computeMs = performance.now() - started;
    const outputs = [];
    const transfer = [];
    for (const name of outputNames) {
      const value = results[name];
      let data = value.data;
      if (ArrayBuffer.isView(data)) {
        // Only a buffer the view spans whole can be handed over; ORT's output buffers usually are.
        if (data.byteOffset !== 0 || data.byteLength !== data.buffer.byteLength) data = data.slice();
        transfer.push(data.buffer);
      }
      outputs.push({ name, type: value.type, dims: [...value.dims], data });
    }
    try {
      parentPort.postMessage({ type: 'result', id, outputs, computeMs }, transfer);
    } catch {
      // A buffer owned by native code cannot be transferred: send copies instead.
      parentPort.postMessage({ type: 'result', id, computeMs, outputs: outputs.map((output) => ({ ...output, data: ArrayBuffer.isView(output.data) ? output.data.slice() : output.data })) });
    }
  } catch (error) {
    parentPort.postMessage({ type: 'error', id, message: messageOf(error) });
  }
});
