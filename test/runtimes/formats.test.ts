import { describe, expect, it } from 'vitest';
import { formatNamed, formatOfFile } from '../../src/runtimes/formats.ts';
import { ggufFormat } from '../../src/runtimes/gguf/format.ts';
import { onnxFormat } from '../../src/runtimes/onnx/format.ts';

describe('model formats', () => {
  it('finds a stored format by name, and refuses a name it does not know', () => {
    expect(formatNamed('onnx')).toBe(onnxFormat);
    expect(formatNamed('gguf')).toBe(ggufFormat);
    expect(() => formatNamed('safetensors')).toThrow(expect.objectContaining({ code: 'INTERNAL', message: expect.stringContaining("'safetensors'") }));
  });

  it('tells a file by its first bytes: GGUF by its magic, anything else is tried as ONNX', () => {
    expect(formatOfFile(new TextEncoder().encode('GGUF\u0003\u0000\u0000\u0000')).name).toBe('gguf');
    expect(formatOfFile(new Uint8Array([0x08, 0x08, 0x12, 0x04])).name).toBe('onnx');
    expect(formatOfFile(new TextEncoder().encode('GGU')).name).toBe('onnx');
    expect(formatOfFile(new Uint8Array(0)).name).toBe('onnx');
  });

  it('declares where each runtime computes and what it serves', () => {
    expect([onnxFormat.placement, onnxFormat.capability, onnxFormat.fileName, onnxFormat.externalData]).toEqual(['worker', 'tensor', 'model.onnx', true]);
    expect([ggufFormat.placement, ggufFormat.capability, ggufFormat.fileName, ggufFormat.externalData]).toEqual(['in-process', 'language', 'model.gguf', false]);
  });
});
