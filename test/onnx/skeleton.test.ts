import { describe, expect, it } from 'vitest';
import { Model } from '../../src/engine/index.ts';
import { findExternalData } from '../../src/onnx/external-data.ts';
import { readOnnxMetadata } from '../../src/onnx/metadata.ts';
import { onnxSkeleton } from '../../src/onnx/skeleton.ts';
import { refuseExternalData } from '../../src/platform/external-data.ts';
import { hostileModels } from './hostile-models.ts';

async function* chunks(bytes: Uint8Array, size: number): AsyncIterable<Uint8Array> {
  for (let offset = 0; offset < bytes.byteLength; offset += size) yield bytes.subarray(offset, offset + size);
}

const wideSpec = {
  name: 'wide',
  input: { shape: [256] },
  layers: [{ type: 'dense', units: 512, activation: 'relu' }, { type: 'dense', units: 3, activation: 'softmax' }],
  compile: { optimizer: { type: 'sgd', learningRate: 0.1 }, loss: 'sparseCategoricalCrossentropy' },
};

describe('onnxSkeleton (the streamed external-data check)', () => {
  it('keeps every external-data reference a full read finds, in every place a tensor can sit', async () => {
    for (const [name, make] of hostileModels) {
      const model = make('package.json');
      const full = findExternalData(model);
      expect(full.length, name).toBeGreaterThan(0);
      for (const size of [1, 7, 4096]) {
        const skeleton = await onnxSkeleton(chunks(model, size));
        expect(findExternalData(skeleton), `${name}, chunks of ${size}`).toEqual(full);
      }
      await expect(refuseExternalData(chunks(model, 100)), name).rejects.toMatchObject({ code: 'INVALID_MODEL_FILE' });
    }
  });

  it('drops initializer data, so what it keeps of a large model is small', async () => {
    const onnx = Model.fromSpec(wideSpec, { seed: 1 }).exportOnnx({ 'aiaas.class_names': '["a","b"]' });
    expect(onnx.byteLength).toBeGreaterThan(500_000);
    const skeleton = await onnxSkeleton(chunks(onnx, 65_536));
    expect(skeleton.byteLength).toBeLessThan(5_000);
    expect(findExternalData(skeleton)).toEqual([]);
    // What refuseExternalData walked is handed back, with the model's metadata_props intact.
    const walked = await refuseExternalData(chunks(onnx, 65_536));
    expect(Buffer.from(walked).equals(Buffer.from(skeleton))).toBe(true);
    expect(readOnnxMetadata(walked)).toEqual(readOnnxMetadata(onnx));
    expect(readOnnxMetadata(walked).get('aiaas.class_names')).toBe('["a","b"]');
  });

  it('refuses what is not a protobuf, a truncated file, and a structure over its cap', async () => {
    await expect(refuseExternalData(chunks(Buffer.alloc(1000, 0xff), 100))).rejects.toMatchObject({ code: 'INVALID_MODEL_FILE' });
    const onnx = Model.fromSpec(wideSpec, { seed: 1 }).exportOnnx();
    await expect(refuseExternalData(chunks(onnx.subarray(0, onnx.byteLength - 10), 4096))).rejects.toMatchObject({ code: 'INVALID_MODEL_FILE' });
    await expect(onnxSkeleton(chunks(hostileModels[0]![1]('x'), 10), { maxBytes: 16 })).rejects.toThrow(/outside the data of its graph initializers/);
  });
});
