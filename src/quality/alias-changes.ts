/**
 * Changing an alias: one version or a weighted split (canary), a shadow version, a promotion gate.
 * A move that gives traffic to a version the alias does not serve yet must pass the gate: the
 * gate's evaluations are reused when stored, else run as jobs and waited for (bounded). Still
 * running at the deadline: the change is not made and the caller gets the jobs (HTTP 202), and the
 * same request repeated later reuses their reports. An admin may force a move past a gate.
 */
import { AiaasError, quoteForError } from '../errors.ts';
import type { AllowedModels, JobView } from '../jobs/job-service.ts';
import type { ModelRegistry } from '../platform/model-registry.ts';
import type { AliasRecord } from '../storage/repositories/models.ts';
import type { EvaluationService } from './evaluations.ts';
import { reportMetric, type EvaluationReport } from './metrics.ts';
import { decideGate, parseGate, type GateDecision, type GateFigure, type PromotionGate } from './promotion-gates.ts';

export interface AliasView {
  name: string;
  /** The version a plain reader sees: the only one, or the split's heaviest. */
  version: number;
  updatedAt: string;
  split: { version: number; weight: number }[] | null;
  shadow: number | null;
  gate: PromotionGate | null;
}

export type AliasChangeResult =
  | { status: 'applied'; alias: AliasView; gate: { forced: boolean; decisions: GateDecision[] } | null }
  | { status: 'evaluating'; jobs: JobView[] };

export interface AliasChangeCaller {
  tenantId: string;
  allowedModels: AllowedModels;
  /** Only an admin may force. */
  isAdmin: boolean;
}

const fields = ['version', 'split', 'shadow', 'gate', 'force', 'waitSeconds'];
const maxSplitEntries = 16;

function invalid(field: string, expected: string, actual: unknown): AiaasError {
  return new AiaasError('INVALID_REQUEST', `${field}: expected ${expected}, got ${actual === undefined ? 'nothing' : quoteForError(actual)}`, { details: { field } });
}

function versionNumber(field: string, value: unknown): number {
  const number = typeof value === 'string' && /^[0-9]{1,15}$/.test(value) ? Number(value) : value;
  if (typeof number !== 'number' || !Number.isSafeInteger(number) || number < 1) throw invalid(field, 'a version number', value);
  return number;
}

/** `{"3": 90, "4": 10}` → entries; weights are relative (they need not sum to 100). */
export function parseSplit(value: unknown): { version: number; weight: number }[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid('split', 'an object of version → weight, e.g. {"3": 90, "4": 10}', value);
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length < 1 || entries.length > maxSplitEntries) throw invalid('split', `1 to ${maxSplitEntries} versions`, value);
  return entries.map(([key, weight]) => {
    const version = versionNumber(`split.${key.slice(0, 20)}`, key);
    if (typeof weight !== 'number' || !Number.isFinite(weight) || weight <= 0) throw invalid(`split.${key.slice(0, 20)}`, 'a positive weight', weight);
    return { version, weight };
  });
}

export async function aliasView(registry: ModelRegistry, tenantId: string, alias: AliasRecord): Promise<AliasView> {
  return {
    name: alias.name,
    version: alias.version,
    updatedAt: alias.updatedAt,
    split: alias.split === null ? null : alias.split.map((entry) => ({ version: entry.version, weight: entry.weight })),
    shadow: alias.shadowVersionId === null ? null : ((await registry.versionNumberOf(tenantId, alias.shadowVersionId)) ?? null),
    gate: (alias.gate as PromotionGate | null) ?? null,
  };
}

export class AliasChanges {
  constructor(private readonly deps: { registry: ModelRegistry; evaluations: EvaluationService; defaultWaitSeconds: number }) {}

  async change(caller: AliasChangeCaller, modelName: string, aliasName: string, body: Record<string, unknown>): Promise<AliasChangeResult> {
    for (const key of Object.keys(body)) if (!fields.includes(key)) throw invalid(key.slice(0, 120), `only the fields ${fields.join(', ')}`, key);
    const { registry } = this.deps;
    const { tenantId } = caller;
    const existing = await registry.getAlias(tenantId, modelName, aliasName);
    if (body.version !== undefined && body.split !== undefined) throw invalid('split', 'either version or split, not both', body.split);
    let targets: { version: number; weight: number }[];
    if (body.version !== undefined) targets = [{ version: versionNumber('version', body.version), weight: 1 }];
    else if (body.split !== undefined) targets = parseSplit(body.split);
    else if (existing !== undefined) targets = existing.split?.map(({ version, weight }) => ({ version, weight })) ?? [{ version: existing.version, weight: 1 }];
    else throw invalid('version', 'a version number or a split for a new alias', undefined);
    let shadowVersion: number | null;
    if (body.shadow === undefined) shadowVersion = existing?.shadowVersionId ? ((await registry.versionNumberOf(tenantId, existing.shadowVersionId)) ?? null) : null;
    else shadowVersion = body.shadow === null ? null : versionNumber('shadow', body.shadow);
    const gate = body.gate === undefined ? ((existing?.gate as PromotionGate | null | undefined) ?? null) : parseGate(body.gate);
    if (body.force !== undefined && typeof body.force !== 'boolean') throw invalid('force', 'true or false', body.force);
    const force = body.force === true;
    if (force && !caller.isAdmin) throw new AiaasError('FORBIDDEN', 'only an admin key may force an alias past its promotion gate', { details: { field: 'force' } });
    let waitSeconds = this.deps.defaultWaitSeconds;
    if (body.waitSeconds !== undefined) {
      if (typeof body.waitSeconds !== 'number' || !Number.isFinite(body.waitSeconds) || body.waitSeconds < 0 || body.waitSeconds > 600) throw invalid('waitSeconds', 'a number of seconds from 0 to 600', body.waitSeconds);
      waitSeconds = body.waitSeconds;
    }
    if (shadowVersion !== null && targets.some((target) => target.version === shadowVersion)) {
      throw invalid('shadow', 'a version that does not already serve the alias', shadowVersion);
    }

    let gateResult: { forced: boolean; decisions: GateDecision[] } | null = null;
    const served = new Set(existing === undefined ? [] : (existing.split?.map((entry) => entry.version) ?? [existing.version]));
    const candidates = [...new Set(targets.map((target) => target.version))].filter((version) => !served.has(version));
    if (gate !== null && candidates.length > 0) {
      if (force) gateResult = { forced: true, decisions: [] };
      else {
        const checked = await this.#check(caller, modelName, gate, candidates, existing?.version ?? null, waitSeconds * 1000);
        if (checked.status === 'evaluating') return checked;
        const failed = checked.decisions.find((decision) => !decision.passed);
        if (failed !== undefined) {
          const bound = failed.required.atLeast !== undefined && failed.candidate.value < failed.required.atLeast ? `at least ${failed.required.atLeast}` : `at most ${failed.required.atMost}`;
          throw new AiaasError(
            'GATE_FAILED',
            `version ${failed.candidate.version} has ${gate.metric} ${failed.candidate.value} on dataset ${gate.datasetId}; alias '${aliasName}' requires ${bound}${failed.current === null ? '' : ` (version ${failed.current.version} has ${failed.current.value})`}`,
            { details: { ...failed } },
          );
        }
        gateResult = { forced: false, decisions: checked.decisions };
      }
    }
    const record = await registry.setAliasRouting(tenantId, modelName, aliasName, { split: targets, shadowVersion, gate });
    return { status: 'applied', alias: await aliasView(registry, tenantId, record), gate: gateResult };
  }

  /** Every candidate's figure (and the current version's, for maxDropFromCurrent), reusing stored reports. */
  async #check(
    caller: AliasChangeCaller,
    modelName: string,
    gate: PromotionGate,
    candidates: number[],
    currentVersion: number | null,
    waitMs: number,
  ): Promise<{ status: 'decided'; decisions: GateDecision[] } | { status: 'evaluating'; jobs: JobView[] }> {
    const versions = [...candidates, ...(gate.maxDropFromCurrent !== undefined && currentVersion !== null ? [currentVersion] : [])];
    const deadline = Date.now() + waitMs;
    const figures = new Map<number, GateFigure>();
    const pending: JobView[] = [];
    const request = { datasetId: gate.datasetId, ...(gate.outputs === undefined ? {} : { outputs: gate.outputs }), ...(gate.label === undefined ? {} : { label: gate.label }) };
    const figureOf = async (number: number): Promise<void> => {
      const { version } = await this.deps.registry.getVersion(caller.tenantId, modelName, String(number));
      let found = await this.deps.evaluations.reportOrJob(caller.tenantId, modelName, version, request, caller.allowedModels);
      if ('job' in found) {
        const job = await this.deps.evaluations.waitForJob(caller.tenantId, found.job.id, Math.max(0, deadline - Date.now()));
        if (job.status === 'failed' || job.status === 'cancelled') {
          throw new AiaasError('GATE_FAILED', `the gate's evaluation of version ${number} on dataset ${gate.datasetId} ${job.status === 'failed' ? 'failed' : 'was cancelled'}, so the gate cannot pass`, {
            details: { version: number, datasetId: gate.datasetId, jobId: job.id, error: job.error },
          });
        }
        if (job.status !== 'succeeded') {
          pending.push(job);
          return;
        }
        found = await this.deps.evaluations.reportOrJob(caller.tenantId, modelName, version, request, caller.allowedModels);
        if ('job' in found) throw new AiaasError('INTERNAL', 'the evaluation finished without storing its report');
      }
      const value = reportMetric(found.report.report as EvaluationReport, gate.metric);
      if (value === undefined) {
        throw new AiaasError('INVALID_REQUEST', `the ${found.report.report?.task ?? ''} report of version ${number} on dataset ${gate.datasetId} has no ${gate.metric}`, {
          details: { field: 'gate.metric', evaluationId: found.report.id },
        });
      }
      figures.set(number, { version: number, value, evaluationId: found.report.id });
    };
    await Promise.all(versions.map(figureOf));
    if (pending.length > 0) return { status: 'evaluating', jobs: pending };
    const current = currentVersion === null ? null : (figures.get(currentVersion) ?? null);
    return { status: 'decided', decisions: candidates.map((number) => decideGate(gate, figures.get(number)!, current)) };
  }
}
