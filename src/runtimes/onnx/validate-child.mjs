// Child side of validate-in-child.ts. Plain JavaScript so it runs under bare `node` whatever loader
// (tsx, vitest) the parent uses. Opens the model file named by its one argument (inside a private
// directory the parent created, which is also its working directory) with ONNX Runtime, runs it once
// on zero inputs built from its signature (dynamic dimensions as 1), and writes one JSON line:
// {"ok":true,"inputs":[...],"outputs":[...],"memoryBytes":N,"peakResidentBytes":N[,"warmupError":"..."]} or
// {"ok":false,"error":"..."}.
// memoryBytes is this process's RSS after the open and the run minus its RSS before the open: the
// model's weights, ONNX Runtime's arena after a first run, and the session's own structures. ORT's
// one-time costs of a process (its environment, kernel registries: about 25 MB) are paid first by
// a one-node model, since the server has paid them once for all its models.
// Never from bytes: ORT would resolve a relative external-data location against the working directory.
import { readFile } from 'node:fs/promises';
import ort from 'onnxruntime-node';

const modelPath = process.argv[2];
/** y = Relu(x), x: FP32 [1]: the smallest model that makes ORT set up everything a process needs once. */
const primerModel = Buffer.from('CAgSCmFpYWFzLXRlc3Q6PwoUCgF4EgF5GgZSZWx1X3kiBFJlbHUSBWdyYXBoWg8KAXgSCgoICAESBAoCCAFiDwoBeRIKCggIARIECgIIAUIECgAQDQ==', 'base64');
const plain = (metadata) =>
  metadata.isTensor
    ? { name: metadata.name, isTensor: true, type: metadata.type, shape: [...metadata.shape] }
    : { name: metadata.name, isTensor: false };

const zeroArrays = {
  float32: Float32Array,
  float64: Float64Array,
  float16: Uint16Array,
  int8: Int8Array,
  int16: Int16Array,
  int32: Int32Array,
  int64: BigInt64Array,
  uint8: Uint8Array,
  uint16: Uint16Array,
  uint32: Uint32Array,
  uint64: BigUint64Array,
  bool: Uint8Array,
};

/**
 * VmHWM from /proc (Linux): this process image's peak RSS. Not `resourceUsage().maxRSS`, which
 * Linux carries over from the parent across fork and exec.
 */
async function peakResident() {
  try {
    const match = /^VmHWM:\s+(\d+)\s+kB/m.exec(await readFile('/proc/self/status', 'utf8'));
    return match === null ? undefined : Number(match[1]) * 1024;
  } catch {
    return undefined;
  }
}

/** Zeros for one input: dynamic or symbolic dimensions become 1. */
function zeroTensor(metadata) {
  const dims = metadata.shape.map((dimension) => (typeof dimension === 'number' && dimension >= 0 ? dimension : 1));
  const elements = dims.reduce((product, dimension) => product * dimension, 1);
  if (metadata.type === 'string') return new ort.Tensor('string', new Array(elements).fill(''), dims);
  const Array = zeroArrays[metadata.type];
  if (Array === undefined) throw new Error(`input '${metadata.name}' has unsupported element type ${metadata.type}`);
  return new ort.Tensor(metadata.type, new Array(elements), dims);
}

// The parent closes stdin once the child is started; nothing is read from it.
process.stdin.resume();
process.stdin.on('end', async () => {
  let message;
  try {
    if (typeof modelPath !== 'string' || modelPath === '') throw new Error('no model path given');
    const primer = await ort.InferenceSession.create(primerModel, { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
    await primer.run({ x: new ort.Tensor('float32', new Float32Array(1), [1]) });
    await primer.release();
    const before = process.memoryUsage.rss();
    // As the serving workers open it (one compute thread per instance, full graph optimization).
    const session = await ort.InferenceSession.create(modelPath, { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
    const inputs = session.inputMetadata.map(plain);
    const outputs = session.outputMetadata.map(plain);
    let warmupError;
    if (inputs.every((input) => input.isTensor) && outputs.every((output) => output.isTensor)) {
      try {
        const feeds = {};
        for (const input of inputs) feeds[input.name] = zeroTensor(input);
        await session.run(feeds);
      } catch (error) {
        warmupError = error instanceof Error ? error.message : String(error);
      }
    }
    const memoryBytes = Math.max(0, process.memoryUsage.rss() - before);
    await session.release();
    // The highest RSS this process reached: the parent's polls can miss a peak between samples.
    const peakResidentBytes = await peakResident();
    message = { ok: true, inputs, outputs, memoryBytes, ...(peakResidentBytes === undefined ? {} : { peakResidentBytes }), ...(warmupError === undefined ? {} : { warmupError }) };
  } catch (error) {
    message = { ok: false, error: error instanceof Error ? error.message : String(error) };
  }
  process.stdout.write(`${JSON.stringify(message)}\n`, () => process.exit(0));
});
