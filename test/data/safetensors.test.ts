import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AiaasError } from '../../src/errors.ts';
import { decodeSafetensors, encodeSafetensors } from '../../src/data/safetensors.ts';
import type { SafetensorsData, SafetensorsTensor } from '../../src/data/safetensors.ts';

function thrown(action: () => unknown): AiaasError {
  try {
    action();
  } catch (error) {
    if (AiaasError.isInstance(error)) return error;
    throw error;
  }
  throw new Error('expected an error');
}

/** A file from a header object and raw buffer, for malformed cases the encoder refuses to write. */
function handMade(header: unknown, buffer: Uint8Array = new Uint8Array(0), headerText?: string): Uint8Array {
  const json = new TextEncoder().encode(headerText ?? JSON.stringify(header));
  const output = new Uint8Array(8 + json.length + buffer.length);
  new DataView(output.buffer).setBigUint64(0, BigInt(json.length), true);
  output.set(json, 8);
  output.set(buffer, 8 + json.length);
  return output;
}

const values = (data: SafetensorsData | undefined): (number | bigint)[] => (data === undefined ? [] : Array.from(data as ArrayLike<number | bigint>));
const f32Bytes = (values: number[]): number[] => Array.from(new Uint8Array(new Float32Array(values).buffer));

describe('safetensors', () => {
  it('matches the reference serializer byte for byte (safetensors tensor.rs test_serialization)', () => {
    const out = encodeSafetensors({ 'attn.0': { dtype: 'F32', shape: [1, 2, 3], data: new Float32Array([0, 1, 2, 3, 4, 5]) } });
    const header = '{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}';
    // 64 header bytes: already a multiple of 8, so no padding.
    expect(header.length).toBe(64);
    expect(Array.from(out)).toEqual([64, 0, 0, 0, 0, 0, 0, 0, ...Buffer.from(header), ...f32Bytes([0, 1, 2, 3, 4, 5])]);
  });

  it('pads the header with spaces to a multiple of 8 (test_serialization_forced_alignement)', () => {
    const out = encodeSafetensors({ attn0: { dtype: 'F32', shape: [1, 1, 2, 3], data: new Float32Array([0, 1, 2, 3, 4, 5]) } });
    const header = '{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}';
    expect(header.length).toBe(65);
    expect(Array.from(out)).toEqual([72, 0, 0, 0, 0, 0, 0, 0, ...Buffer.from(header + ' '.repeat(7)), ...f32Bytes([0, 1, 2, 3, 4, 5])]);
  });

  it('writes empty files and __metadata__ like the reference (test_empty)', () => {
    expect(Array.from(encodeSafetensors({}))).toEqual([8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]);
    const withMetadata = encodeSafetensors({}, { framework: 'pt' });
    expect(Array.from(withMetadata)).toEqual([40, 0, 0, 0, 0, 0, 0, 0, ...Buffer.from('{"__metadata__":{"framework":"pt"}}     ')]);
    expect(decodeSafetensors(withMetadata)).toEqual({ tensors: {}, metadata: { framework: 'pt' } });
  });

  it('round-trips several dtypes in sorted-name order with aligned typed arrays', () => {
    const tensors: Record<string, SafetensorsTensor> = {
      'z.bias': { dtype: 'F64', shape: [2], data: new Float64Array([Math.PI, -0.5]) },
      'a.mask': { dtype: 'BOOL', shape: [3], data: new Uint8Array([1, 0, 1]) },
      'm.bytes': { dtype: 'U8', shape: [1, 1], data: new Uint8Array([200]) },
      'b.count': { dtype: 'I64', shape: [], data: new BigInt64Array([-(2n ** 62n)]) },
      'c.index': { dtype: 'I32', shape: [2, 1], data: new Int32Array([-7, 2147483647]) },
      'd.weight': { dtype: 'F32', shape: [2, 2], data: new Float32Array([1.5, -2, 0, 3.25]) },
      'e.empty': { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
    };
    const bytes = encodeSafetensors(tensors, { format: 'aiaas', version: '1' });
    const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(headerLength % 8).toBe(0);
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength))) as Record<string, { data_offsets: number[] }>;
    expect(Object.keys(header)).toEqual(['__metadata__', 'a.mask', 'b.count', 'c.index', 'd.weight', 'e.empty', 'm.bytes', 'z.bias']);
    expect(header['b.count']?.data_offsets).toEqual([3, 11]);

    const decoded = decodeSafetensors(bytes);
    expect(decoded.metadata).toEqual({ format: 'aiaas', version: '1' });
    for (const [name, tensor] of Object.entries(tensors)) {
      const result = decoded.tensors[name];
      expect(result?.dtype).toBe(tensor.dtype);
      expect(result?.shape).toEqual(tensor.shape);
      expect(result?.data.constructor).toBe(tensor.data.constructor);
      expect(values(result?.data)).toEqual(values(tensor.data));
      expect(((result?.data.byteOffset ?? 1) % (result?.data.BYTES_PER_ELEMENT ?? 1))).toBe(0);
    }
    // "b.count" sits at an odd offset after the 3-byte mask, so it had to be copied.
    expect(decoded.tensors['b.count']?.data.buffer).not.toBe(bytes.buffer);
    // Aligned tensors are zero-copy views.
    expect(decoded.tensors['a.mask']?.data.buffer).toBe(bytes.buffer);

    // Decoding from an unaligned slice of a larger buffer still works.
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    expect(values(decodeSafetensors(shifted.subarray(1)).tensors['d.weight']?.data)).toEqual([1.5, -2, 0, 3.25]);

    // Integer-like names keep sorted order after __metadata__.
    const numeric = encodeSafetensors({ '10': { dtype: 'U8', shape: [1], data: new Uint8Array([1]) }, '9': { dtype: 'U8', shape: [1], data: new Uint8Array([2]) } }, {});
    expect(new TextDecoder().decode(numeric.subarray(8, 8 + 80))).toMatch(/^\{"__metadata__":\{\},"10":\{.*"data_offsets":\[0,1\]\},"9":/);
  });

  it('refuses inconsistent tensors when encoding', () => {
    expect(thrown(() => encodeSafetensors({ w: { dtype: 'F32', shape: [3], data: new Float32Array(2) } })).message).toMatch(
      /shape \[3\] has 3 elements but the data has 2/,
    );
    expect(thrown(() => encodeSafetensors({ w: { dtype: 'F64', shape: [2], data: new Float32Array(2) } })).message).toMatch(/needs a Float64Array, got Float32Array/);
    expect(thrown(() => encodeSafetensors({ __metadata__: { dtype: 'U8', shape: [0], data: new Uint8Array(0) } })).code).toBe('INVALID_WEIGHTS');
  });

  it('keeps tensor and metadata names like "__proto__" as ordinary own keys', () => {
    const header = '{"__metadata__":{"__proto__":"m"},"__proto__":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}';
    const decoded = decodeSafetensors(handMade(null, new Uint8Array([7]), header));
    expect(Object.keys(decoded.tensors)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(decoded.tensors)).toBe(Object.prototype);
    expect(values(decoded.tensors['__proto__']?.data)).toEqual([7]);
    expect(Object.keys(decoded.metadata)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(decoded.metadata)).toBe(Object.prototype);
  });

  it('rejects malformed files with INVALID_WEIGHTS and a clear message', () => {
    const weight = { dtype: 'F32', shape: [2], data_offsets: [0, 8] };
    const eight = new Uint8Array(8);
    const cases: [Uint8Array, RegExp][] = [
      [new Uint8Array(5), /too small: 5 bytes/],
      [(() => { const bytes = new Uint8Array(16); new DataView(bytes.buffer).setBigUint64(0, 2n ** 40n, true); return bytes; })(), /exceeds the 100000000-byte limit/],
      [(() => { const bytes = handMade({ w: weight }, eight); new DataView(bytes.buffer).setBigUint64(0, 1000n, true); return bytes; })(), /runs past the end/],
      [handMade(null, new Uint8Array(0), '[1, 2]'), /must be a JSON object starting with "\{"/],
      [handMade(null, new Uint8Array(0), '{"w": '), /not valid JSON/],
      [handMade({ w: { ...weight, dtype: 'F16' } }, new Uint8Array(4)), /tensor "w": unsupported dtype "F16"/],
      [handMade({ w: { ...weight, dtype: 'Q4' } }, eight), /unknown dtype "Q4"/],
      [handMade({ w: { ...weight, shape: [2.5] } }, eight), /shape must be an array of non-negative integers/],
      [handMade({ w: { ...weight, data_offsets: [0] } }, eight), /data_offsets must be \[begin, end\]/],
      [handMade({ w: { ...weight, shape: [3] } }, eight), /F32 shape \[3\] needs 12 bytes but data_offsets \[0, 8\] span 8/],
      [handMade({ w: { ...weight, data_offsets: [8, 16] } }, eight), /run past the 8-byte data buffer/],
      [handMade({ w: weight }, new Uint8Array(12)), /data buffer is 12 bytes but the tensors cover 8 \(trailing bytes\)/],
      [handMade({ w: weight, v: { ...weight, data_offsets: [4, 12] } }, new Uint8Array(12)), /"v": data_offsets begin at 4, expected 8 \(overlaps/],
      [handMade({ w: { ...weight, data_offsets: [4, 12] } }, new Uint8Array(12)), /begin at 4, expected 0 \(leaves a gap\)/],
      [handMade({ __metadata__: { n: 1 } }), /"__metadata__" value for "n" must be a string/],
      [handMade({ b: { dtype: 'BOOL', shape: [1], data_offsets: [0, 1] } }, new Uint8Array([2])), /BOOL element 0 is 2/],
      [(() => { const bytes = handMade({}); bytes[8] = 0xff; return bytes; })(), /not valid UTF-8/],
    ];
    for (const [bytes, message] of cases) {
      const error = thrown(() => decodeSafetensors(bytes));
      expect(error.code).toBe('INVALID_WEIGHTS');
      expect(error.message).toMatch(message);
    }
  });

  const python = '/usr/bin/python3';
  const pythonWorks = spawnSync(python, ['-c', 'import json, struct'], { encoding: 'utf8' }).status === 0;
  it.skipIf(!pythonWorks)('agrees with an independent Python json/struct reader', () => {
    const directory = mkdtempSync(join(tmpdir(), 'aiaas-safetensors-'));
    try {
      const file = join(directory, 'model.safetensors');
      writeFileSync(
        file,
        encodeSafetensors(
          {
            'dense.kernel': { dtype: 'F32', shape: [2, 3], data: new Float32Array([0.5, -1, 2, 3, 4.25, -5]) },
            'dense.bias': { dtype: 'F64', shape: [3], data: new Float64Array([0.1, 0.2, 0.3]) },
            step: { dtype: 'I64', shape: [], data: new BigInt64Array([42n]) },
            ids: { dtype: 'I32', shape: [2], data: new Int32Array([-1, 7]) },
            mask: { dtype: 'BOOL', shape: [2], data: new Uint8Array([1, 0]) },
          },
          { framework: 'aiaas' },
        ),
      );
      const script = `
import json, struct, sys
data = open(sys.argv[1], 'rb').read()
(n,) = struct.unpack('<Q', data[:8])
assert n % 8 == 0
header = json.loads(data[8:8 + n].decode('utf-8'))
buffer = data[8 + n:]
codes = {'F32': 'f', 'F64': 'd', 'I32': 'i', 'I64': 'q', 'U8': 'B', 'BOOL': '?'}
out = {'__metadata__': header.pop('__metadata__', None)}
for name, info in header.items():
    begin, end = info['data_offsets']
    count = 1
    for size in info['shape']:
        count *= size
    values = struct.unpack('<%d%s' % (count, codes[info['dtype']]), buffer[begin:end])
    out[name] = {'dtype': info['dtype'], 'shape': info['shape'], 'values': [v if isinstance(v, bool) else float(v) if isinstance(v, float) else int(v) for v in values]}
print(json.dumps(out, sort_keys=True))
`;
      const result = spawnSync(python, ['-c', script, file], { encoding: 'utf8' });
      expect(result.stderr).toBe('');
      expect(JSON.parse(result.stdout)).toEqual({
        __metadata__: { framework: 'aiaas' },
        'dense.bias': { dtype: 'F64', shape: [3], values: [0.1, 0.2, 0.3] },
        'dense.kernel': { dtype: 'F32', shape: [2, 3], values: [0.5, -1, 2, 3, 4.25, -5] },
        ids: { dtype: 'I32', shape: [2], values: [-1, 7] },
        mask: { dtype: 'BOOL', shape: [2], values: [true, false] },
        step: { dtype: 'I64', shape: [], values: [42] },
      });
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });
});
