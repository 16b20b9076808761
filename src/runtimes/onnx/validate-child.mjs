// Child side of validate-in-child.ts. Plain JavaScript so it runs under bare `node` whatever loader
// (tsx, vitest) the parent uses. Opens the model file named by its one argument (inside a private
// directory the parent created, which is also its working directory) with ONNX Runtime, and writes
// one JSON line: {"ok":true,"inputs":[...],"outputs":[...]} or {"ok":false,"error":"..."}.
// Never from bytes: ORT would resolve a relative external-data location against the working directory.
import ort from 'onnxruntime-node';

const modelPath = process.argv[2];
const plain = (metadata) =>
  metadata.isTensor
    ? { name: metadata.name, isTensor: true, type: metadata.type, shape: [...metadata.shape] }
    : { name: metadata.name, isTensor: false };

// The parent closes stdin once the child is started; nothing is read from it.
process.stdin.resume();
process.stdin.on('end', async () => {
  let message;
  try {
    if (typeof modelPath !== 'string' || modelPath === '') throw new Error('no model path given');
    const session = await ort.InferenceSession.create(modelPath);
    message = { ok: true, inputs: session.inputMetadata.map(plain), outputs: session.outputMetadata.map(plain) };
    await session.release();
  } catch (error) {
    message = { ok: false, error: error instanceof Error ? error.message : String(error) };
  }
  process.stdout.write(`${JSON.stringify(message)}\n`, () => process.exit(0));
});
