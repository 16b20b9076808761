/** Messages between the server and an evaluation child process (evaluation-child.ts). */
import type { DatasetSource } from '../jobs/worker-protocol.ts';
import type { DriftBaseline } from './drift-baseline.ts';
import type { EvaluationResult, EvaluationTask } from './evaluation-report.ts';

export interface EvaluationStart {
  type: 'start';
  /** The version's model.onnx, decrypted into a private directory for this job. */
  modelPath: string;
  dataset: DatasetSource;
  /** The output holding the scores; the model's first when absent. */
  output?: string;
  task?: EvaluationTask;
  classNames?: string[];
  topK?: number;
  /** Rows per inference run. */
  batchSize: number;
  /** Divide uint8 IDX pixels by 255 at load, as training did for this version (see scalesIdxPixelsAtLoad). */
  scalePixels: boolean;
}

export type ToEvaluationChild = EvaluationStart;

export type FromEvaluationChild =
  | { type: 'progress'; rowsDone: number; rowsTotal: number }
  | { type: 'done'; report: EvaluationResult; output: string; seconds: number; /** The evaluated inputs' drift profile. */ baseline: DriftBaseline }
  | { type: 'failed'; error: { code: string; message: string; details?: Record<string, unknown> } };
