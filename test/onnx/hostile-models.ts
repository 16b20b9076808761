/**
 * ONNX models whose tensors read external data from a location of the test's choosing, placed
 * everywhere onnx.proto can hold a tensor. On the server before the fix, ONNX Runtime resolved such a
 * relative location against the working directory and served those bytes back.
 */
import { attribute, encodeOnnxModel, int64Tensor, OnnxDataType, type OnnxGraph, type OnnxTensor } from '../../src/onnx/model.ts';

/** Bytes read from the external file: 16 of them, served back as a UINT8 output. */
export const leakedBytes = 16;

function externalTensor(name: string, location: string): OnnxTensor {
  return { name, dataType: OnnxDataType.UINT8, dims: [leakedBytes], raw: new Uint8Array(), external: { location, offset: 0, length: leakedBytes } };
}

function inlineTensor(name: string): OnnxTensor {
  return { name, dataType: OnnxDataType.UINT8, dims: [leakedBytes], raw: new Uint8Array(leakedBytes) };
}

const vector = (name: string) => ({ name, elemType: OnnxDataType.UINT8, shape: [leakedBytes] });

function model(graph: OnnxGraph): Uint8Array {
  return encodeOnnxModel({ irVersion: 8, opsetVersion: 17, producerName: 'test', producerVersion: '1', graph });
}

/** `y = w`, with the initializer `w` read from `location`; the input `x` is only there to be fed. */
export function initializerModel(location: string): Uint8Array {
  return model({
    name: 'leak',
    nodes: [{ opType: 'Identity', inputs: ['w'], outputs: ['y'], name: 'copy' }],
    initializers: [externalTensor('w', location)],
    inputs: [vector('x')],
    outputs: [vector('y')],
  });
}

/** `y = Constant(value)`, the attribute tensor read from `location`. */
export function constantModel(location: string): Uint8Array {
  return model({
    name: 'leak',
    nodes: [
      { opType: 'Constant', inputs: [], outputs: ['c'], name: 'const', attributes: { value: attribute.tensor(externalTensor('secret', location)) } },
      { opType: 'Identity', inputs: ['c'], outputs: ['y'], name: 'copy' },
    ],
    initializers: [],
    inputs: [vector('x')],
    outputs: [vector('y')],
  });
}

/** `y = dense(sparse)`, the sparse initializer's values read from `location`. */
export function sparseInitializerModel(location: string): Uint8Array {
  const indices = Array.from({ length: leakedBytes }, (_, index) => index);
  return model({
    name: 'leak',
    nodes: [{ opType: 'Identity', inputs: ['sparse'], outputs: ['y'], name: 'copy' }],
    initializers: [],
    sparseInitializers: [{ values: externalTensor('sparse', location), indices: int64Tensor('sparse_indices', [leakedBytes], indices), dims: [leakedBytes] }],
    inputs: [vector('x')],
    outputs: [vector('y')],
  });
}

/** `y = If(cond, then: w_then, else: zeros)`, the then-branch's initializer read from `location`. */
export function ifSubgraphModel(location: string): Uint8Array {
  const branch = (name: string, tensor: OnnxTensor): OnnxGraph => ({
    name,
    nodes: [{ opType: 'Identity', inputs: [tensor.name], outputs: [`${name}_out`], name: `${name}_copy` }],
    initializers: [tensor],
    inputs: [],
    outputs: [vector(`${name}_out`)],
  });
  return model({
    name: 'leak',
    nodes: [
      {
        opType: 'If',
        inputs: ['cond'],
        outputs: ['y'],
        name: 'choose',
        attributes: { then_branch: attribute.graph(branch('then', externalTensor('w_then', location))), else_branch: attribute.graph(branch('else', inlineTensor('w_else'))) },
      },
    ],
    initializers: [],
    inputs: [{ name: 'cond', elemType: OnnxDataType.BOOL, shape: [] }],
    outputs: [vector('y')],
  });
}

export const hostileModels: [string, (location: string) => Uint8Array, string][] = [
  ['an initializer', initializerModel, "initializer 'w'"],
  ['a Constant attribute', constantModel, "tensor 'secret' in attribute 'value' of node 'const' (Constant)"],
  ['a sparse initializer', sparseInitializerModel, "sparse initializer 'sparse' (values)"],
  ['an initializer inside an If subgraph', ifSubgraphModel, "initializer 'w_then' of graph 'then' (the subgraph in attribute 'then_branch' of node 'choose' (If)"],
];
