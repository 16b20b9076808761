/** The seam between the job queue and the kinds of job it runs (train, pull, quantize; later evaluate, sweep). */
import type { JobRecord } from '../storage/repositories/jobs.ts';

/** Event types on a job's stream, named noun-verb as DESIGN.md asks. */
export type JobEventType =
  | 'job-queued'
  | 'job-started'
  | 'job-resumed'
  | 'job-progress'
  | 'epoch-end'
  | 'checkpoint-saved'
  | 'download-resumed'
  | 'job-finished';

/** What a job kind's handler gets from the runner: the cancel signal and the job's event log. */
export interface JobKindContext {
  /** Aborted when the job is cancelled, its lease is lost, or the server stops. */
  readonly signal: AbortSignal;
  appendEvent(type: JobEventType, payload: unknown): Promise<void>;
}

/**
 * One kind of job besides training. `run` does the work and returns what the job produced; it
 * throws (an AiaasError for a failure the user should see) to fail the job, and stops promptly when
 * the signal aborts. The runner owns the lease, cancellation and the final status.
 */
export interface JobKindHandler {
  run(job: JobRecord, context: JobKindContext): Promise<JobKindResult>;
}

export interface JobKindResult {
  /** The model version the job registered, if any. */
  readonly versionId?: string;
  /** Extra fields for the `job-finished` event. */
  readonly summary?: Record<string, unknown>;
}

/**
 * Validates a submission of one job kind completely before it is queued (a bad request is a 400
 * now, not a failed job later). `settings` is stored sealed with the job and handed to the handler.
 */
export interface JobKindParser {
  parse(body: Record<string, unknown>): { model: string; settings: Record<string, unknown> };
}

