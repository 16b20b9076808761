// Child side of validate-in-child.ts. Plain JavaScript so it runs under bare `node` whatever loader
// (tsx, vitest) the parent uses. Reads the model bytes from stdin, opens them with ONNX Runtime and
// writes one JSON line: {"ok":true,"inputs":[...],"outputs":[...]} or {"ok":false,"error":"..."}.
import ort from 'onnxruntime-node';

const chunks = [];
process.stdin.on('data', (chunk) => chunks.push(chunk));
process.stdin.on('end', async () => {
  const bytes = new Uint8Array(Buffer.concat(chunks));
  const plain = (metadata) =>
    metadata.isTensor
      ? { name: metadata.name, isTensor: true, type: metadata.type, shape: [...metadata.shape] }
      : { name: metadata.name, isTensor: false };
  let message;
  try {
    const session = await ort.InferenceSession.create(bytes);
    message = { ok: true, inputs: session.inputMetadata.map(plain), outputs: session.outputMetadata.map(plain) };
    await session.release();
  } catch (error) {
    message = { ok: false, error: error instanceof Error ? error.message : String(error) };
  }
  process.stdout.write(`${JSON.stringify(message)}\n`, () => process.exit(0));
});
