import { describe, expect, it } from 'vitest';
import { alignClassNames, maxClassNames } from '../../src/data/class-names.ts';
import { describeDataset, takeRows } from '../../src/data/dataset.ts';
import { parseCsv } from '../../src/data/csv.ts';
import { parseJsonLines } from '../../src/data/jsonl.ts';
import { Model } from '../../src/engine/model.ts';
import { AiaasError } from '../../src/errors.ts';

function thrown(run: () => unknown): AiaasError {
  try {
    run();
  } catch (error) {
    if (AiaasError.isInstance(error)) return error;
    throw error;
  }
  throw new Error('nothing was thrown');
}

describe('string class labels', () => {
  it('CSV: maps string labels to indices in sorted order and keeps the names', () => {
    const dataset = parseCsv('x,species\n1,virginica\n2,setosa\n3, versicolor \n4,setosa\n', { label: 'species' });
    expect(dataset.classNames).toEqual(['setosa', 'versicolor', 'virginica']);
    expect(Array.from(dataset.labels)).toEqual([2, 0, 1, 0]);
    expect(describeDataset(dataset)).toMatchObject({ classes: 3, classNames: ['setosa', 'versicolor', 'virginica'] });
    expect(takeRows(dataset, 1, 3).classNames).toEqual(['setosa', 'versicolor', 'virginica']);
  });

  it('CSV: numeric labels stay numbers; one non-numeric label makes every label a class name', () => {
    expect(parseCsv('x,label\n1,0\n2,1\n').classNames).toBeUndefined();
    const mixed = parseCsv('x,label\n1,10\n2,9\n3,cat\n');
    expect(mixed.classNames).toEqual(['10', '9', 'cat']);
    expect(Array.from(mixed.labels)).toEqual([0, 1, 2]);
    expect(thrown(() => parseCsv('x,label\n1,a\n2,\n', { fileName: 'e.csv' })).message).toBe('e.csv: line 3: column "label" (column 2): empty value');
  });

  it('CSV: refuses a free-text label column', () => {
    const rows = Array.from({ length: maxClassNames + 1 }, (_, index) => `${index},name${index}`);
    const error = thrown(() => parseCsv(`x,label\n${rows.join('\n')}\n`, { fileName: 'free.csv' }));
    expect(error.code).toBe('INVALID_DATA');
    expect(error.message).toBe(`free.csv: the label has ${maxClassNames + 1} distinct values; at most ${maxClassNames} classes are supported`);
  });

  it('JSON lines: string labels in flat rows and in tensor records; a mix with numbers is refused', () => {
    const flat = parseJsonLines('{"a":1,"label":"no"}\n{"a":2,"label":"yes"}\n{"a":3,"label":"no"}\n');
    expect(flat.classNames).toEqual(['no', 'yes']);
    expect(Array.from(flat.labels)).toEqual([0, 1, 0]);
    const tensor = parseJsonLines('{"features":[1,2],"label":"b"}\n{"features":[3,4],"label":"a"}\n');
    expect(tensor.classNames).toEqual(['a', 'b']);
    expect(tensor.labelShape).toEqual([]);
    expect(Array.from(tensor.labels)).toEqual([1, 0]);
    expect(thrown(() => parseJsonLines('{"a":1,"label":0}\n{"a":2,"label":"yes"}\n', { fileName: 'm.jsonl' })).message).toBe(
      'm.jsonl: line 2: label "label" is the string "yes", but earlier lines have numeric labels',
    );
    expect(thrown(() => parseJsonLines('{"features":[1],"label":"a"}\n{"features":[2],"label":1}\n', { fileName: 'm.jsonl' })).message).toBe(
      'm.jsonl: line 2: label "label" is 1, but earlier lines have class-name strings',
    );
    expect(thrown(() => parseJsonLines('{"a":1,"label":" "}\n', { fileName: 'm.jsonl' })).message).toBe('m.jsonl: line 1: label "label" is an empty string');
  });

  it('renumbers a test file that lacks a class to the model\'s classes, and refuses an unknown class', async () => {
    const train = parseCsv('x,y\n0,low\n5,mid\n10,high\n0,low\n5,mid\n10,high\n', { label: 'y' });
    expect(train.classNames).toEqual(['high', 'low', 'mid']);
    const test = parseCsv('x,y\n0,low\n5,mid\n', { label: 'y' });
    expect(test.classNames).toEqual(['low', 'mid']);
    const aligned = alignClassNames(test, train.classNames!, 'test');
    expect(Array.from(aligned.labels)).toEqual([1, 2]);
    expect(thrown(() => alignClassNames(parseCsv('x,y\n1,huge\n', { label: 'y' }), train.classNames!, 'test')).message).toBe(
      'test data has the class "huge", which the model was not trained on; its classes are "high", "low", "mid"',
    );

    const model = Model.fromSpec({
      input: { shape: [1], scale: 0.1 },
      layers: [{ type: 'dense', units: 3, activation: 'softmax' }],
      compile: { optimizer: { type: 'adam', learningRate: 0.1 }, loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] },
    });
    await model.fit(train, { epochs: 1, batchSize: 6 });
    expect(model.classNames).toEqual(['high', 'low', 'mid']);
    // Evaluated with the test file's own indices (0, 1) the loss would be of the wrong classes.
    const direct = await model.evaluate(aligned);
    const viaNames = await model.evaluate(test);
    expect(viaNames.loss).toBeCloseTo(direct.loss, 6);
    await model.dispose();
  });
});
