import type { CommandDefinition } from '../command.ts';
import { trainingFlags } from '../training-flags.ts';

/**
 * `aiaas train`: the run lives in src/cli/train-command.ts, which loads the training engine, so it
 * is imported only when used and the other commands start without it.
 */
export const trainCommand: CommandDefinition = {
  path: ['train'],
  summary: 'train a model spec on this machine, without a server',
  usage: '--spec SPEC.json --data FILE [--labels FILE | --label COLUMN] --out DIR [options]',
  description:
    'Trains a model spec (docs/model-spec.md) and writes a saved-model folder to DIR (spec.json, model.safetensors,\n' +
    'model.onnx, metrics.json) that `aiaas models push NAME DIR` uploads. Data: CSV, JSON lines or IDX (images and\n' +
    'labels as two files, optionally .gz). The fit flags are the same as `aiaas jobs submit`\'s. With --json, prints one\n' +
    'JSON object at the end: {"epochs","steps","samplesPerSecond","loss","metrics","testMetrics","stopReason",…}.',
  options: {
    spec: { type: 'string', valueName: 'FILE', description: 'model spec JSON (docs/model-spec.md)' },
    data: { type: 'string', valueName: 'FILE', description: 'training data: .csv, .jsonl, or IDX images (.idx, .idx.gz)' },
    labels: { type: 'string', valueName: 'FILE', description: 'IDX labels file that goes with IDX --data' },
    label: { type: 'string', valueName: 'COLUMN', description: 'label column of CSV / JSON-lines data (default: the last)' },
    'test-data': { type: 'string', valueName: 'FILE', description: 'data evaluated after training (test metrics)' },
    'test-labels': { type: 'string', valueName: 'FILE', description: 'IDX labels for --test-data' },
    test: { type: 'string', valueName: 'FILE', description: 'shorthand for --test-data with a CSV / JSON-lines file' },
    'validation-data': { type: 'string', valueName: 'FILE', description: 'data evaluated after every epoch (val_loss, val_ metrics)' },
    'validation-labels': { type: 'string', valueName: 'FILE', description: 'IDX labels for --validation-data' },
    init: { type: 'string', valueName: 'FILE', description: 'start from these weights (model.safetensors)' },
    out: { type: 'string', valueName: 'DIR', description: 'folder the saved model is written to' },
    ...trainingFlags,
  },
  json: true,
  examples: [
    'aiaas train --spec examples/mnist-mlp/spec.json --data train-images.idx.gz --labels train-labels.idx.gz --epochs 3 --batch-size 128 --out mnist-model',
    'aiaas train --spec spec.json --data iris.csv --label species --epochs 200 --validation-split 0.2 --early-stopping-patience 10 --restore-best-weights --out iris-model',
    'aiaas train --spec spec.json --data train.csv --validation-data val.csv --test test.csv --max-steps 1000 --out model --json',
  ],
  async run(context) {
    const { runTrainCommand } = await import('../train-command.ts');
    return await runTrainCommand(context);
  },
};
