import type { BatchEvent, EpochEvent, TrainingSummary } from '../engine/model.ts';

export type { TrainingSummary };
import type { JobSettings } from './job-request.ts';
import type { DriftBaseline } from '../quality/drift-baseline.ts';

/** Dataset bytes as stored; the worker parses them so the server thread stays responsive. */
export interface DatasetSource {
  format: 'csv' | 'jsonl' | 'idx';
  bytes: Uint8Array;
  labelsBytes?: Uint8Array;
  label?: string;
  name: string;
}

export interface WorkerStart {
  type: 'start';
  spec: unknown;
  settings: JobSettings;
  train: DatasetSource;
  test?: DatasetSource;
  validation?: DatasetSource;
  checkpoint?: Uint8Array;
}

export type ToWorker = WorkerStart | { type: 'cancel' };

export interface SavedModelPayload {
  spec: Uint8Array;
  weights: Uint8Array;
  onnx: Uint8Array;
  metrics: Uint8Array;
}


export type FromWorker =
  | { type: 'resumed'; epoch: number; step: number }
  | { type: 'progress'; event: BatchEvent }
  /** `samples`: what the epoch trained on, billed as sample-epochs. */
  | { type: 'epoch'; event: EpochEvent; samples: number }
  | { type: 'checkpoint'; epoch: number; step: number; bytes: Uint8Array }
  | { type: 'done'; files: SavedModelPayload; summary: TrainingSummary; baseline: DriftBaseline }
  | { type: 'cancelled'; epoch: number; step: number }
  | { type: 'failed'; error: { code: string; message: string; details?: Record<string, unknown> } };
