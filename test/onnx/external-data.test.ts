import { describe, expect, it } from 'vitest';
import { findExternalData, findExternalDataInSlices, InvalidOnnxError, maxGraphDepth } from '../../src/onnx/external-data.ts';
import { attribute, encodeOnnxModel, floatTensor, OnnxDataType, type OnnxGraph } from '../../src/onnx/model.ts';
import { ProtobufWriter } from '../../src/onnx/protobuf-writer.ts';
import { ProtobufReader } from '../../src/onnx/protobuf-reader.ts';
import { externalDataFiles } from '../../src/platform/external-data.ts';
import { hostileModels, initializerModel } from './hostile-models.ts';

const vector = (name: string) => ({ name, elemType: OnnxDataType.FLOAT, shape: [2] });

function modelOf(graph: OnnxGraph): Uint8Array {
  return encodeOnnxModel({ irVersion: 8, opsetVersion: 17, producerName: 'test', producerVersion: '1', graph });
}

/** A TensorProto with the given raw fields after its name, for encodings the engine's writer never produces. */
function tensorWith(build: (tensor: ProtobufWriter) => void): (writer: ProtobufWriter) => void {
  return (tensor) => {
    tensor.packedInt64(1, [2]).int64(2, OnnxDataType.FLOAT).string(8, 'odd');
    build(tensor);
  };
}

/** A model whose main graph holds one initializer written by `tensor`. */
function modelWithRawInitializer(tensor: (writer: ProtobufWriter) => void): Uint8Array {
  return new ProtobufWriter()
    .int64(1, 8)
    .message(7, (graph) => graph.string(2, 'main').message(5, tensor))
    .message(8, (opset) => opset.string(1, '').int64(2, 17))
    .finish();
}

/** xorshift32: a fixed seed, so every run mutates the same bytes. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
}

describe('findExternalData', () => {
  it.each(hostileModels)('finds external data in %s and names the tensor', (_label, make, description) => {
    const references = findExternalData(make('package.json'));
    expect(references).toHaveLength(1);
    expect(references[0]!.tensor).toContain(description);
    expect(references[0]!.locations).toEqual(['package.json']);
    expect(references[0]!.flaggedExternal).toBe(true);
    expect(Object.fromEntries(references[0]!.entries)).toEqual({ location: 'package.json', offset: '0', length: '16' });
  });

  it('finds nothing in a model whose tensors are all inline', () => {
    const bytes = modelOf({
      name: 'main',
      nodes: [{ opType: 'Add', inputs: ['x', 'b'], outputs: ['y'], name: 'add' }],
      initializers: [floatTensor('b', [2], [1, 2])],
      inputs: [vector('x')],
      outputs: [vector('y')],
    });
    expect(findExternalData(bytes)).toEqual([]);
  });

  it('finds sparse indices, tensor lists, graph lists (Loop and Scan bodies), functions and training graphs', () => {
    const tensor = (writer: ProtobufWriter, name: string) => {
      writer.packedInt64(1, [2]).int64(2, OnnxDataType.FLOAT).string(8, name);
      writer.message(13, (entry) => entry.string(1, 'location').string(2, `${name}.bin`));
      writer.int64(14, 1);
    };
    const bytes = new ProtobufWriter()
      .int64(1, 8)
      .message(7, (graph) => {
        graph.message(1, (node) =>
          node
            .string(3, 'loop')
            .string(4, 'Loop')
            .message(5, (attr) => attr.string(1, 'body').message(6, (inner) => inner.string(2, 'body').message(5, (t) => tensor(t, 'in_loop_body'))))
            .message(5, (attr) => attr.string(1, 'many').message(10, (t) => tensor(t, 'listed_a')).message(10, (t) => tensor(t, 'listed_b')))
            .message(5, (attr) => attr.string(1, 'graphs').message(11, (inner) => inner.string(2, 'scan_body').message(5, (t) => tensor(t, 'in_scan_body')))),
        );
        graph.string(2, 'main');
        graph.message(15, (sparse) => sparse.message(1, (t) => t.string(8, 'sp').message(9, () => undefined)).message(2, (t) => tensor(t, 'sp_indices')).packedInt64(3, [4]));
      })
      .message(8, (opset) => opset.string(1, '').int64(2, 17))
      .message(20, (training) => training.message(2, (graph) => graph.string(2, 'algorithm').message(5, (t) => tensor(t, 'in_training'))))
      .message(25, (fn) =>
        fn.string(1, 'custom').message(7, (node) => node.string(3, 'inner').string(4, 'Constant').message(5, (attr) => attr.string(1, 'value').message(5, (t) => tensor(t, 'in_function')))),
      )
      .finish();
    const found = findExternalData(bytes).map((reference) => [reference.locations[0], reference.tensor]);
    expect(found).toEqual([
      ['in_loop_body.bin', "initializer 'in_loop_body' of graph 'body' (the subgraph in attribute 'body' of node 'loop' (Loop) of graph 'main')"],
      ['listed_a.bin', "tensor 'listed_a' in attribute 'many' of node 'loop' (Loop) of graph 'main'"],
      ['listed_b.bin', "tensor 'listed_b' in attribute 'many' of node 'loop' (Loop) of graph 'main'"],
      ['in_scan_body.bin', "initializer 'in_scan_body' of graph 'scan_body' (the subgraph in attribute 'graphs' of node 'loop' (Loop) of graph 'main')"],
      ['sp_indices.bin', "sparse initializer 'sp' (indices) of graph 'main'"],
      ['in_training.bin', "initializer 'in_training' of graph 'algorithm' (a training graph)"],
      ['in_function.bin', "tensor 'in_function' in attribute 'value' of node 'inner' (Constant) of function 'custom'"],
    ]);
  });

  it('reads fields as protobuf does: the last key wins, and an enum keeps only the low 32 bits of a wide varint', () => {
    // An entry whose key is first 'offset', then 'location': protobuf keeps 'location'.
    const relabelled = modelWithRawInitializer(tensorWith((tensor) => tensor.message(13, (entry) => entry.string(1, 'offset').string(1, 'location').string(2, 'secret.txt'))));
    expect(findExternalData(relabelled)[0]!.locations).toEqual(['secret.txt']);
    // data_location = 2^32 + 1 reads as EXTERNAL (1) in a protobuf int32 enum; no external_data entries at all.
    const wide = modelWithRawInitializer(tensorWith((tensor) => tensor.int64(14, 2n ** 32n + 1n)));
    expect(findExternalData(wide)).toMatchObject([{ tensor: "initializer 'odd' of graph 'main'", flaggedExternal: true, locations: [] }]);
    // Any value but DEFAULT (0) counts.
    expect(findExternalData(modelWithRawInitializer(tensorWith((tensor) => tensor.int64(14, -1))))[0]!.flaggedExternal).toBe(true);
    expect(findExternalData(modelWithRawInitializer(tensorWith((tensor) => tensor.int64(14, 0))))).toEqual([]);
  });

  it('refuses encodings protobuf would parse differently: a data_location that is not a varint, a location that is not UTF-8', () => {
    const notVarint = modelWithRawInitializer(tensorWith((tensor) => tensor.bytes(14, new Uint8Array([1]))));
    expect(() => findExternalData(notVarint)).toThrow(InvalidOnnxError);
    const badUtf8 = modelWithRawInitializer(tensorWith((tensor) => tensor.message(13, (entry) => entry.string(1, 'location').bytes(2, new Uint8Array([0x2e, 0xc0, 0xaf, 0x2e])))));
    expect(() => findExternalData(badUtf8)).toThrow(/not valid UTF-8/);
    const groupInGraph = new ProtobufWriter().int64(1, 8).finish();
    expect(() => findExternalData(Uint8Array.from([...groupInGraph, 0x3b]))).toThrow(/wire type 3/);
  });

  it(`refuses subgraphs nested more than ${maxGraphDepth} deep without exhausting the stack`, () => {
    let graph: OnnxGraph = { name: 'leaf', nodes: [], initializers: [], inputs: [], outputs: [] };
    for (let level = 0; level < maxGraphDepth + 5; level++) {
      graph = { name: `level${level}`, nodes: [{ opType: 'If', inputs: ['c'], outputs: ['y'], name: `if${level}`, attributes: { then_branch: attribute.graph(graph) } }], initializers: [], inputs: [], outputs: [] };
    }
    expect(() => findExternalData(modelOf(graph))).toThrow(/nests subgraphs more than 32 deep/);
  });

  it('refuses lengths beyond the message, truncated varints and ORT-format files with InvalidOnnxError', () => {
    expect(() => findExternalData(Uint8Array.from([0x3a, 0xff, 0xff, 0xff, 0xff, 0x07, 1, 2, 3]))).toThrow(/claims more bytes/);
    expect(() => findExternalData(Uint8Array.from([0x08, 0x80, 0x80]))).toThrow(/truncated varint/);
    expect(() => findExternalData(Uint8Array.from([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]))).toThrow(/varint longer/);
    expect(() => findExternalData(Uint8Array.from([0x10, 0, 0, 0, 0x4f, 0x52, 0x54, 0x4d, 0, 0, 0, 0]))).toThrow(/ORT-format/);
  });

  it('answers every prefix and 3,000 seeded mutations of a model with a result or InvalidOnnxError, never anything else', () => {
    const original = hostileModels.map(([, make]) => make('weights.bin'));
    const outcomes = { result: 0, refused: 0 };
    const check = (bytes: Uint8Array) => {
      try {
        findExternalData(bytes);
        outcomes.result++;
      } catch (error) {
        if (!(error instanceof InvalidOnnxError)) throw error;
        outcomes.refused++;
      }
    };
    for (const bytes of original) for (let length = 0; length <= bytes.length; length++) check(bytes.subarray(0, length));
    const next = random(0x5eed);
    for (let round = 0; round < 3000; round++) {
      const bytes = original[round % original.length]!.slice();
      const edits = 1 + Math.floor(next() * 4);
      for (let edit = 0; edit < edits; edit++) bytes[Math.floor(next() * bytes.length)] = Math.floor(next() * 256);
      check(bytes);
    }
    expect(outcomes.result).toBeGreaterThan(0);
    expect(outcomes.refused).toBeGreaterThan(0);
  });

  it('walks a large file of tiny fields without holding them (4 MiB of 2-byte unknown fields)', () => {
    const bytes = new Uint8Array(4 * 1024 * 1024);
    for (let index = 0; index < bytes.length; index += 2) {
      bytes[index] = (31 << 3) | 0; // unknown field 31, varint
      bytes[index + 1] = 1;
    }
    expect(findExternalData(bytes)).toEqual([]);
  });

  it('walks in slices that let other work run, with the same result', async () => {
    const bytes = new Uint8Array(2 * 1024 * 1024);
    for (let index = 0; index < bytes.length; index += 2) bytes[index] = (31 << 3) | 0;
    const withLeak = initializerModel('package.json');
    const file = new Uint8Array(bytes.length + withLeak.length);
    file.set(bytes);
    file.set(withLeak, bytes.length);
    let othersRan = 0;
    let walking = true;
    const other = () => {
      othersRan++;
      if (walking) setImmediate(other);
    };
    setImmediate(other);
    const sliced = await findExternalDataInSlices(file);
    walking = false;
    expect(othersRan).toBeGreaterThan(5); // the event loop turned while the walk was going on
    expect(sliced).toEqual(findExternalData(file));
    expect(sliced.map((reference) => reference.tensor)).toEqual(["initializer 'w' of graph 'leak'"]);
  });

  it('the reader keeps offsets into the whole file', () => {
    const bytes = initializerModel('x.bin');
    const reader = new ProtobufReader(bytes);
    const fields: [number, number][] = [];
    while (reader.next()) fields.push([reader.field, reader.offset]);
    expect(fields.map(([field]) => field)).toEqual([1, 2, 3, 7, 8]);
    // The graph's first field, read through a nested reader, reports its offset in the whole file.
    const graphReader = new ProtobufReader(bytes);
    while (graphReader.next() && graphReader.field !== 7);
    const graph = graphReader.message('graph');
    expect(graph.next()).toBe(true);
    expect(graph.offset).toBeGreaterThan(fields[3]![1]);
    expect(bytes[graph.offset]).toBe((1 << 3) | 2); // node = 1, length-delimited
  });
});

describe('externalDataFiles (what an upload may reference)', () => {
  const external = (name: string, location: string) => ({ name, dataType: OnnxDataType.UINT8, dims: [4], raw: new Uint8Array(), external: { location } });
  const twoTensors = (first: string, second: string) =>
    modelOf({ name: 'main', nodes: [], initializers: [external('a', first), external('b', second)], inputs: [], outputs: [] });

  it('returns each referenced archive file once, and only those', async () => {
    const archive = new Map([
      ['weights.bin', new Uint8Array(4)],
      ['data/more.bin', new Uint8Array(8)],
      ['unused.bin', new Uint8Array(1)],
    ]);
    const used = await externalDataFiles(twoTensors('weights.bin', 'data/more.bin'), archive, ['model.onnx']);
    expect([...used.keys()]).toEqual(['weights.bin', 'data/more.bin']);
    expect((await externalDataFiles(twoTensors('weights.bin', 'weights.bin'), archive, ['model.onnx'])).size).toBe(1);
  });

  it('refuses a name used both as a file and as a folder (the files could not be written out)', async () => {
    const archive = new Map([
      ['data', new Uint8Array(4)],
      ['data/more.bin', new Uint8Array(4)],
    ]);
    await expect(externalDataFiles(twoTensors('data/more.bin', 'data'), archive, [])).rejects.toMatchObject({
      code: 'INVALID_MODEL_FILE',
      message: expect.stringMatching(/'data' both as a file and as a folder/),
    });
  });

  it('refuses unknown keys, a missing location and two locations', async () => {
    const archive = new Map([['w.bin', new Uint8Array(4)]]);
    const withEntries = (entries: [string, string][]) =>
      modelWithRawInitializer(tensorWith((tensor) => {
        for (const [key, value] of entries) tensor.message(13, (entry) => entry.string(1, key).string(2, value));
        tensor.int64(14, 1);
      }));
    await expect(externalDataFiles(withEntries([['location', 'w.bin'], ['basepath', '/etc']]), archive, [])).rejects.toThrow(/external_data key 'basepath'/);
    await expect(externalDataFiles(withEntries([['offset', '0']]), archive, [])).rejects.toThrow(/no external_data location/);
    await expect(externalDataFiles(withEntries([['location', 'w.bin'], ['location', 'x.bin']]), archive, [])).rejects.toThrow(/more than one external_data location/);
    await expect(externalDataFiles(withEntries([['location', 'w.bin'], ['offset', '0x10']]), archive, [])).rejects.toThrow(/not a decimal byte count/);
  });
});
