/**
 * Child-process entry of a quantize job (forked through forkIsolated by platform/model-quantize.ts):
 * quantizes the float model, then runs both on ONNX Runtime to measure them. Like the training child
 * it touches no database and no key material: the server hands it plaintext bytes and stores what it
 * sends back. Quantizing and measuring a large model costs seconds of CPU and native memory that
 * must not land on the server's main thread, and a memory limit bounds it here.
 */
import { readFile, writeFile } from 'node:fs/promises';
import type { Dataset } from '../data/dataset.ts';
import { loadDatasetBytes } from '../data/load.ts';
import { AiaasError } from '../errors.ts';
import { quantizeDynamicInt8 } from '../onnx/quantize.ts';
import { connectToParent } from '../runtimes/isolated-process.ts';
import { compareModels } from './quantize-compare.ts';
import type { QuantizeReply, QuantizeStart } from './quantize-protocol.ts';
import type { DatasetSource } from './worker-protocol.ts';

function parse(source: DatasetSource, scaleIdxPixels: boolean): Dataset {
  return loadDatasetBytes(source.format, source.bytes, {
    fileName: source.name,
    scale: scaleIdxPixels,
    ...(source.labelsBytes ? { labelsBytes: source.labelsBytes } : {}),
    ...(source.label === undefined ? {} : { label: source.label }),
  });
}

async function quantize(start: QuantizeStart): Promise<QuantizeReply> {
  try {
    const model = await readFile(start.floatPath);
    const quantized = quantizeDynamicInt8(model);
    await writeFile(start.quantizedPath, quantized.bytes, { mode: 0o600 });
    const evaluation = start.evaluation === undefined ? undefined : parse(start.evaluation, start.scaleIdxPixels);
    const sample = start.sample === undefined ? undefined : parse(start.sample, start.scaleIdxPixels);
    const comparison = await compareModels(model, quantized.bytes, {
      signature: start.signature,
      ...(evaluation === undefined ? {} : { evaluation }),
      ...(sample === undefined ? {} : { sample }),
      sampleItems: start.sampleItems,
      latencyBatches: start.latencyBatches,
      latencyRounds: start.latencyRounds,
    });
    return {
      ok: true,
      floatBytes: model.byteLength,
      quantizedBytes: quantized.bytes.byteLength,
      quantizedNodes: quantized.quantizedNodes,
      floatNodes: quantized.floatNodes,
      weightBytesBefore: quantized.weightBytesBefore,
      weightBytesAfter: quantized.weightBytesAfter,
      comparison,
    };
  } catch (error) {
    if (AiaasError.isInstance(error)) return { ok: false, code: error.code, message: error.message, ...(error.details ? { details: { ...error.details } } : {}) };
    console.error(error);
    return { ok: false, code: 'QUANTIZATION_UNSUPPORTED', message: `the model could not be quantized or run: ${error instanceof Error ? error.message : String(error)}` };
  }
}

let started = false;
const parent = connectToParent<QuantizeReply, QuantizeStart>((start) => {
  if (started) return;
  started = true;
  void quantize(start).then(async (reply) => {
    await parent.send(reply);
    process.exit(0);
  });
});
