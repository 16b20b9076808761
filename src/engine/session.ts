import ort from 'onnxruntime-node';
import { encodeOnnxModel, type OnnxModel } from '../onnx/model.ts';

export type OrtSession = ort.InferenceSession;
export const OrtTensor = ort.Tensor;
export type OrtTensor = ort.Tensor;

export interface SessionOptions {
  /** Threads inside one op; defaults to ORT's choice (all cores). */
  intraOpThreads?: number;
}

/** One ORT session per compiled graph, created once and reused for every step. */
export async function createSession(model: OnnxModel, options: SessionOptions = {}): Promise<OrtSession> {
  return ort.InferenceSession.create(encodeOnnxModel(model), {
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    ...(options.intraOpThreads === undefined ? {} : { intraOpNumThreads: options.intraOpThreads }),
  });
}

export function floatTensor(data: Float32Array, dims: readonly number[]): OrtTensor {
  return new ort.Tensor('float32', data, dims);
}
