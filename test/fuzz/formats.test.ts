import { describe, expect, it } from 'vitest';
import { corpusInputs, formatTargets, mutatedInputs, runFormatCase, type FormatFailure } from './formats.ts';
import { Random } from './random.ts';

/** Per format; the ONNX target spawns a validation child per case, so it gets a handful. */
const casesPerFormat = 150;
const onnxCases = 3;
const seed = 20261129;

describe.each(formatTargets().map((target) => [target.name, target] as const))('%s parser', (_name, target) => {
  it('replays the corpus of earlier crashes', async () => {
    const failures: FormatFailure[] = [];
    for (const { bytes } of corpusInputs(target.name)) {
      const failure = await runFormatCase(target, bytes);
      if (failure !== undefined) failures.push(failure);
    }
    expect(failures.map((failure) => failure.error)).toEqual([]);
  });

  it('succeeds or throws a catalogued AiaasError on mutated inputs', async () => {
    for (const original of target.seeds) expect(await runFormatCase(target, original)).toBeUndefined();
    const random = new Random(seed);
    const inputs = mutatedInputs(target, random);
    const count = target.slow === true ? onnxCases : casesPerFormat;
    const failures: string[] = [];
    for (let index = 0; index < count; index++) {
      const failure = await runFormatCase(target, inputs.next().value as Uint8Array);
      if (failure !== undefined) failures.push(failure.error);
    }
    expect(failures).toEqual([]);
  });
});
