/** Messages between a quantize job (platform/model-quantize.ts) and its child process (quantize-child.ts). */
import type { FloatNode, QuantizedNode } from '../onnx/quantize.ts';
import { siblingModule } from '../runtimes/isolated-process.ts';
import type { ModelSignature } from '../runtimes/runtime.ts';
import type { ComparisonFigures } from './quantize-compare.ts';
import type { DatasetSource } from './worker-protocol.ts';

export const quantizeChildModule = siblingModule(import.meta.url, 'quantize-child');

export interface QuantizeStart {
  /** The float model.onnx, plaintext, in the job's private scratch directory. */
  floatPath: string;
  /** Where the child writes the quantized model. */
  quantizedPath: string;
  signature: ModelSignature;
  evaluation?: DatasetSource;
  /** The calibration dataset: the sample for the output difference and the latency inputs. */
  sample?: DatasetSource;
  /**
   * Divide uint8 IDX pixels by 255 at load: true unless the model scales its input in its own graph
   * (a spec with input preprocessing, see engine/spec.ts `scalesIdxPixelsAtLoad`).
   */
  scaleIdxPixels: boolean;
  sampleItems: number;
  latencyBatches: number[];
  latencyRounds: number;
}

export type QuantizeReply =
  | {
      ok: true;
      floatBytes: number;
      quantizedBytes: number;
      quantizedNodes: QuantizedNode[];
      floatNodes: FloatNode[];
      weightBytesBefore: number;
      weightBytesAfter: number;
      comparison: ComparisonFigures;
    }
  | { ok: false; code: string; message: string; details?: Record<string, unknown> };
