/**
 * FLOPs per item and parameters from a graph (src/onnx/cost.ts), counted by hand for a small CNN
 * (Reshape, Conv with bias, Relu, MaxPool, Flatten, Gemm, Softmax), and the same figures from the
 * skeleton the cost card reads (small initializers kept, weights dropped).
 */
import { describe, expect, it } from 'vitest';
import { graphCost } from '../../src/onnx/cost.ts';
import { attribute, encodeOnnxModel, floatTensor, int64Tensor, OnnxDataType } from '../../src/onnx/model.ts';
import { onnxSkeleton } from '../../src/onnx/skeleton.ts';

const cnn = encodeOnnxModel({
  graph: {
    name: 'cnn',
    nodes: [
      { opType: 'Reshape', inputs: ['input', 'image_shape'], outputs: ['image'], name: 'reshape' },
      { opType: 'Conv', inputs: ['image', 'filters', 'filter_bias'], outputs: ['conv'], name: 'conv', attributes: { pads: attribute.ints([1, 1, 1, 1]) } },
      { opType: 'Relu', inputs: ['conv'], outputs: ['relu'], name: 'relu' },
      { opType: 'MaxPool', inputs: ['relu'], outputs: ['pool'], name: 'pool', attributes: { kernel_shape: attribute.ints([2, 2]), strides: attribute.ints([2, 2]) } },
      { opType: 'Flatten', inputs: ['pool'], outputs: ['flat'], name: 'flatten' },
      { opType: 'Gemm', inputs: ['flat', 'dense', 'dense_bias'], outputs: ['logits'], name: 'gemm', attributes: { transB: attribute.int(1) } },
      { opType: 'Softmax', inputs: ['logits'], outputs: ['output'], name: 'softmax' },
    ],
    initializers: [
      int64Tensor('image_shape', [4], [-1, 1, 8, 8]),
      floatTensor('filters', [4, 1, 3, 3], new Float32Array(36)),
      floatTensor('filter_bias', [4], new Float32Array(4)),
      // 20 × 64 floats = 5,120 bytes: the skeleton drops this one's data.
      floatTensor('dense', [20, 64], new Float32Array(1280)),
      floatTensor('dense_bias', [20], new Float32Array(20)),
    ],
    inputs: [{ name: 'input', elemType: OnnxDataType.FLOAT, shape: ['batch', 64] }],
    outputs: [{ name: 'output', elemType: OnnxDataType.FLOAT, shape: ['batch', 20] }],
  },
  opsetVersion: 17,
  irVersion: 8,
  producerName: 'test',
  producerVersion: '1',
});

// Conv: 4 × 8 × 8 = 256 outputs × (1 × 3 × 3) MACs × 2, plus 256 for the bias; Relu 256; MaxPool
// 4 × 4 × 4 = 64 outputs × a 2 × 2 window; Gemm 2 × 64 × 20 plus 20 for the bias; Softmax 3 × 20.
const expectedFlops = 2 * 256 * 9 + 256 + 256 + 64 * 4 + 2 * 64 * 20 + 20 + 3 * 20;

describe('graphCost', () => {
  it('counts 2 · MACs for Conv and Gemm, 1 per element for bias and activations, the window for pooling', () => {
    const dense = encodeOnnxModel({
      graph: {
        name: 'small',
        nodes: [{ opType: 'Gemm', inputs: ['x', 'w'], outputs: ['y'], name: 'gemm', attributes: { transB: attribute.int(1) } }],
        initializers: [floatTensor('w', [10, 64], new Float32Array(640))],
        inputs: [{ name: 'x', elemType: OnnxDataType.FLOAT, shape: ['batch', 64] }],
        outputs: [{ name: 'y', elemType: OnnxDataType.FLOAT, shape: ['batch', 10] }],
      },
      opsetVersion: 17,
      irVersion: 8,
      producerName: 'test',
      producerVersion: '1',
    });
    expect(graphCost(dense, new Map([['x', [1, 64]]]))).toEqual({ parameters: 640, flopsPerItem: 2 * 64 * 10, complete: true, uncountedNodes: [] });
    // The int64 Reshape target is not a parameter.
    expect(graphCost(cnn, new Map([['input', [1, 64]]]))).toEqual({ parameters: 36 + 4 + 1280 + 20, flopsPerItem: expectedFlops, complete: true, uncountedNodes: [] });
  });

  it('reads the same figures from a skeleton that keeps small initializers, and none past an unknown shape without them', async () => {
    async function* source() {
      yield cnn;
    }
    const kept = await onnxSkeleton(source(), { keepTensorsUpToBytes: 4096 });
    expect(kept.byteLength).toBeLessThan(cnn.byteLength - 5000);
    expect(graphCost(kept, new Map([['input', [1, 64]]]))).toEqual(graphCost(cnn, new Map([['input', [1, 64]]])));
    const bare = graphCost(await onnxSkeleton(source()), new Map([['input', [1, 64]]]));
    expect(bare.complete).toBe(false);
    expect(bare.flopsPerItem).toBe(0);
    expect(bare.uncountedNodes[0]).toEqual({ node: 'reshape', opType: 'Reshape' });
  });
});
