/** The API's answers as the console reads them (docs/api.md); only the fields it shows. */
export interface Me {
  tenant: { id: string; name: string; operator: boolean };
  key: { id: string; name: string; prefix: string; role: string; allowedModels: string[] | null; expiresAt: string | null };
  permissions: string[];
}

export interface Alias {
  name: string;
  version: number;
  updatedAt?: string;
}

export interface Model {
  name: string;
  description: string | null;
  versions: number[];
  aliases: Alias[];
  createdAt: string;
}

export interface TensorSpec {
  name: string;
  datatype: string;
  shape: number[];
}

export interface Version {
  id: string;
  model: string;
  version: number;
  source: string;
  format?: 'onnx' | 'gguf';
  signature: { inputs?: TensorSpec[]; outputs?: TensorSpec[]; [field: string]: unknown };
  metrics: Record<string, unknown> | null;
  jobId: string | null;
  files: string[];
  aliases: string[];
  createdAt: string;
}

export interface EpochRecord {
  epoch: number;
  epochs?: number;
  step: number;
  loss: number;
  metrics: Record<string, number>;
  validationLoss?: number;
  validationMetrics?: Record<string, number>;
  samplesPerSecond?: number;
  seconds?: number;
}

export interface Job {
  id: string;
  kind: string;
  model: string;
  status: 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
  epoch: number;
  totalEpochs: number;
  step: number;
  loss: number | null;
  history: EpochRecord[];
  error: { code: string; message: string } | null;
  resultVersion: { id: string; version: number; metrics: Record<string, unknown> } | null;
  settings: Record<string, unknown>;
  datasetId: string | null;
  testDatasetId: string | null;
  cancelRequested: boolean;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

export interface Dataset {
  id: string;
  name: string;
  format: string;
  rowCount: number;
  bytes: number;
  schema: { featureShape: number[]; labelShape: number[]; featureNames?: string[]; labelName?: string; /** The number of classes, or their names when the labels were strings. */
    classes?: number | string[];
    classNames?: string[];
    label?: string;
  };
  createdAt: string;
}

export interface ApiKey {
  id: string;
  name: string;
  prefix: string;
  role: string;
  allowedModels: string[] | null;
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
  lastUsedAt: string | null;
  key?: string;
}

export interface AuditEntry {
  seq: number;
  tenantId: string | null;
  keyId: string | null;
  action: string;
  resource: string | null;
  outcome: 'success' | 'denied' | 'error';
  ip: string | null;
  at: string;
  detail: unknown;
  model: string | null;
}

export interface UsageRow {
  model?: string;
  day?: string;
  requests: number;
  failedRequests: number;
  items: number;
  promptTokens: number;
  completionTokens: number;
  computeMs: number;
  trainingSampleEpochs: number;
  trainingWorkerSeconds: number;
  bytesIn: number;
  bytesOut: number;
}
