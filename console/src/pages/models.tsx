/** Models: the list, and a model's versions, aliases, signatures and metrics. */
import { useState } from 'preact/hooks';
import { api, ApiError, describeError } from '../api.ts';
import { formatBytes, formatNumber, formatTime } from '../format.ts';
import { href } from '../router.ts';
import type { Alias, Dataset, Me, Model, TensorSpec, Version } from '../types.ts';
import { Evaluations } from './evaluations.tsx';
import { CostCard } from './cost-card.tsx';
import { EmptyState, ErrorNotice, Loading, PageHeader, useApi } from '../ui.tsx';

export function ModelsPage() {
  const models = useApi<{ models: Model[] }>('/api/v1/models');
  return (
    <section>
      <PageHeader title="Models">
        <a class="button" href={href('/jobs/new')}>
          Train a model
        </a>
      </PageHeader>
      <ErrorNotice>{models.error}</ErrorNotice>
      {models.loading && models.data === undefined && <Loading what="models" />}
      {models.data !== undefined && models.data.models.length === 0 && (
        <EmptyState>
          No models yet. <a href={href('/jobs/new')}>Train one</a> from a dataset, or push an ONNX file with <code>aiaas models push</code>.
        </EmptyState>
      )}
      {models.data !== undefined && models.data.models.length > 0 && (
        <div class="table-wrap">
          <table id="models-table">
            <caption class="visually-hidden">Models of this tenant</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Versions</th>
                <th scope="col">Aliases</th>
                <th scope="col">Description</th>
                <th scope="col">Created</th>
              </tr>
            </thead>
            <tbody>
              {models.data.models.map((model) => (
                <tr key={model.name}>
                  <th scope="row">
                    <a href={href(`/models/${encodeURIComponent(model.name)}`)}>{model.name}</a>
                  </th>
                  <td>{model.versions.length === 0 ? '—' : model.versions.join(', ')}</td>
                  <td>
                    {model.aliases.length === 0
                      ? '—'
                      : model.aliases.map((alias) => (
                          <span class="chip" key={alias.name}>
                            {alias.name} → {alias.version}
                          </span>
                        ))}
                  </td>
                  <td>{model.description ?? ''}</td>
                  <td>{formatTime(model.createdAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function SignatureTable({ tensors, caption }: { tensors: TensorSpec[]; caption: string }) {
  return (
    <table class="compact">
      <caption>{caption}</caption>
      <thead>
        <tr>
          <th scope="col">Name</th>
          <th scope="col">Type</th>
          <th scope="col">Shape</th>
        </tr>
      </thead>
      <tbody>
        {tensors.map((tensor) => (
          <tr key={tensor.name}>
            <td>
              <code>{tensor.name}</code>
            </td>
            <td>{tensor.datatype}</td>
            <td>
              <code>[{tensor.shape.join(', ')}]</code>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** Flattens {test: {accuracy: 0.97}} into rows "test.accuracy 0.97" (numbers and short strings only). */
function metricRows(metrics: Record<string, unknown>, prefix = ''): [string, string][] {
  return Object.entries(metrics).flatMap(([key, value]): [string, string][] => {
    const name = prefix === '' ? key : `${prefix}.${key}`;
    if (typeof value === 'number') return [[name, formatNumber(value)]];
    if (typeof value === 'string' || typeof value === 'boolean') return [[name, String(value)]];
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return metricRows(value as Record<string, unknown>, name);
    return [];
  });
}

function VersionCard({ version, modelName, canEvaluate, canCalibrate }: { version: Version; modelName: string; canEvaluate: boolean; canCalibrate: boolean }) {
  const metrics = version.metrics === null ? [] : metricRows(version.metrics).slice(0, 24);
  const isLanguageModel = version.format === 'gguf';
  const signature = version.signature;
  return (
    <article class="card version" id={`version-${version.version}`} aria-labelledby={`version-${version.version}-title`}>
      <header class="card-header">
        <h3 id={`version-${version.version}-title`}>
          Version {version.version}
          {version.aliases.map((alias) => (
            <span class="chip" key={alias}>
              {alias}
            </span>
          ))}
        </h3>
        <a class="button secondary" href={href(`/try/${encodeURIComponent(modelName)}/${version.version}`)}>
          Try it
        </a>
      </header>
      <dl class="facts">
        <div>
          <dt>Format</dt>
          <dd>{version.format ?? 'onnx'}</dd>
        </div>
        <div>
          <dt>Source</dt>
          <dd>{version.jobId !== null ? <a href={href(`/jobs/${version.jobId}`)}>training job</a> : version.source}</dd>
        </div>
        <div>
          <dt>Files</dt>
          <dd>{version.files.join(', ')}</dd>
        </div>
        <div>
          <dt>Created</dt>
          <dd>{formatTime(version.createdAt)}</dd>
        </div>
      </dl>
      {isLanguageModel ? (
        <dl class="facts">
          {['architecture', 'parameterCount', 'quantization', 'contextLength'].map((field) =>
            signature[field] === undefined ? null : (
              <div key={field}>
                <dt>{field}</dt>
                <dd>{typeof signature[field] === 'number' ? formatNumber(signature[field] as number) : String(signature[field])}</dd>
              </div>
            ),
          )}
          {typeof signature.fileBytes === 'number' && (
            <div>
              <dt>size</dt>
              <dd>{formatBytes(signature.fileBytes)}</dd>
            </div>
          )}
        </dl>
      ) : (
        <div class="signature">
          {signature.inputs !== undefined && <SignatureTable tensors={signature.inputs} caption="Inputs" />}
          {signature.outputs !== undefined && <SignatureTable tensors={signature.outputs} caption="Outputs" />}
        </div>
      )}
      <CostCard model={modelName} version={version.version} canCalibrate={canCalibrate} />
      {!isLanguageModel && <Evaluations model={modelName} version={version.version} canEvaluate={canEvaluate} />}
      {metrics.length > 0 && (
        <details>
          <summary>Metrics ({metrics.length})</summary>
          <dl class="metrics">
            {metrics.map(([name, value]) => (
              <div key={name}>
                <dt>{name}</dt>
                <dd>{value}</dd>
              </div>
            ))}
          </dl>
        </details>
      )}
    </article>
  );
}

interface Gate {
  metric: string;
  datasetId: string;
  minimum?: number;
  maximum?: number;
  maxDropFromCurrent?: number;
}

interface GateDecision {
  passed: boolean;
  metric: string;
  datasetId: string;
  candidate: { version: number; value: number };
  current: { version: number; value: number } | null;
  required: { atLeast?: number; atMost?: number };
}

const gateMetrics = ['accuracy', 'macroF1', 'weightedF1', 'topKAccuracy', 'rocAuc', 'r2', 'logLoss', 'expectedCalibrationError', 'meanAbsoluteError', 'rootMeanSquaredError'];

function describeGate(gate: Gate): string {
  const bounds = [
    gate.minimum === undefined ? undefined : `≥ ${gate.minimum}`,
    gate.maximum === undefined ? undefined : `≤ ${gate.maximum}`,
    gate.maxDropFromCurrent === undefined ? undefined : `at most ${gate.maxDropFromCurrent} worse than the current version`,
  ].filter((bound) => bound !== undefined);
  return `${gate.metric} ${bounds.join(', ')}`;
}

function GateFailure({ decision, message, canForce, onForce }: { decision: GateDecision | undefined; message: string; canForce: boolean; onForce: () => void }) {
  return (
    <div class="notice error gate-failure" role="alert" id="gate-failure">
      <p>
        <strong>The promotion gate refused the move.</strong> {message}
      </p>
      {decision !== undefined && (
        <dl class="facts">
          <div>
            <dt>Version {decision.candidate.version} (candidate)</dt>
            <dd id="gate-candidate">
              {decision.metric} {formatNumber(decision.candidate.value)}
            </dd>
          </div>
          {decision.current !== null && (
            <div>
              <dt>Version {decision.current.version} (current)</dt>
              <dd id="gate-current">
                {decision.metric} {formatNumber(decision.current.value)}
              </dd>
            </div>
          )}
          <div>
            <dt>Required</dt>
            <dd>
              {[decision.required.atLeast === undefined ? undefined : `≥ ${formatNumber(decision.required.atLeast)}`, decision.required.atMost === undefined ? undefined : `≤ ${formatNumber(decision.required.atMost)}`]
                .filter((part) => part !== undefined)
                .join(', ')}
            </dd>
          </div>
        </dl>
      )}
      {canForce && (
        <button type="button" class="danger" onClick={onForce} id="gate-force">
          Force the move (admin, audited)
        </button>
      )}
    </div>
  );
}

function AliasEditor({ model, versions, aliases, onChange, canWrite, isAdmin }: { model: string; versions: number[]; aliases: (Alias & { gate?: Gate | null })[]; onChange: () => void; canWrite: boolean; isAdmin: boolean }) {
  const [name, setName] = useState('production');
  const [version, setVersion] = useState(String(versions[versions.length - 1] ?? ''));
  const [error, setError] = useState<string | undefined>(undefined);
  const [message, setMessage] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const [gateFailure, setGateFailure] = useState<{ message: string; decision: GateDecision | undefined } | undefined>(undefined);
  const [gateOn, setGateOn] = useState(false);
  const [gate, setGate] = useState({ metric: 'accuracy', datasetId: '', bound: 'minimum', value: '' });
  const datasets = useApi<{ datasets: Dataset[] }>(gateOn ? '/api/v1/datasets?limit=1000' : undefined);
  const base = `/api/v1/models/${encodeURIComponent(model)}/aliases/`;
  const put = async (force: boolean) => {
    setBusy(true);
    setError(undefined);
    setMessage(undefined);
    setGateFailure(undefined);
    try {
      const body: Record<string, unknown> = { version: Number(version) };
      if (force) body.force = true;
      if (gateOn && gate.datasetId !== '' && gate.value !== '') body.gate = { metric: gate.metric, datasetId: gate.datasetId, [gate.bound]: Number(gate.value) };
      const answer = await api<{ status?: string; message?: string; gate?: { forced: boolean; decisions: GateDecision[] } | null }>(base + encodeURIComponent(name.trim()), { method: 'PUT', body });
      if (answer.status === 'evaluating') {
        setMessage(`${answer.message ?? 'The gate is evaluating the version.'} Nothing changed yet: press Set alias again when the evaluation is done.`);
      } else {
        const decisions = answer.gate?.decisions ?? [];
        const checked = decisions.map((decision) => ` Gate passed: ${decision.metric} ${formatNumber(decision.candidate.value)}.`).join('');
        setMessage(`${name.trim()} now points at version ${version}.${answer.gate?.forced === true ? ' The gate was forced.' : checked}`);
      }
      onChange();
    } catch (failure) {
      if (failure instanceof ApiError && failure.code === 'GATE_FAILED') {
        const details = failure.details as Partial<GateDecision>;
        setGateFailure({ message: failure.message, decision: details.candidate === undefined ? undefined : (details as GateDecision) });
      } else setError(describeError(failure));
    } finally {
      setBusy(false);
    }
  };
  const move = (event: Event) => {
    event.preventDefault();
    void put(false);
  };
  const remove = async (alias: string) => {
    if (!confirm(`Remove the alias ${alias}? Clients calling ${model}@${alias} will get 404.`)) return;
    setError(undefined);
    try {
      await api(base + encodeURIComponent(alias), { method: 'DELETE' });
      setMessage(`Removed ${alias}.`);
      onChange();
    } catch (failure) {
      setError(describeError(failure));
    }
  };
  return (
    <section class="card" aria-labelledby="aliases-title">
      <h2 id="aliases-title">Aliases</h2>
      {aliases.length === 0 ? (
        <p class="muted">No aliases. Clients can call a version number, or an alias you set here, e.g. {model}@production.</p>
      ) : (
        <ul class="alias-list" id="alias-list">
          {aliases.map((alias) => (
            <li key={alias.name} data-alias={alias.name} data-version={alias.version}>
              <span>
                <strong>{alias.name}</strong> → version {alias.version}
                {alias.gate !== undefined && alias.gate !== null && <span class="chip">gate: {describeGate(alias.gate)}</span>}
                {alias.updatedAt !== undefined && <span class="muted small"> · moved {formatTime(alias.updatedAt)}</span>}
              </span>
              {canWrite && (
                <button type="button" class="secondary danger" onClick={() => remove(alias.name)} aria-label={`Remove alias ${alias.name}`}>
                  Remove
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
      {canWrite && versions.length > 0 && (
        <form onSubmit={move} aria-label="Point an alias at a version">
          <div class="inline-form">
            <div class="field">
              <label for="alias-name">Alias</label>
              <input id="alias-name" required pattern="[A-Za-z0-9][A-Za-z0-9._\-]{0,63}" value={name} onInput={(event) => setName(event.currentTarget.value)} />
            </div>
            <div class="field">
              <label for="alias-version">Version</label>
              <select id="alias-version" value={version} onChange={(event) => setVersion(event.currentTarget.value)}>
                {versions.map((number) => (
                  <option key={number} value={number}>
                    {number}
                  </option>
                ))}
              </select>
            </div>
            <button type="submit" disabled={busy || name.trim() === ''}>
              {busy ? 'Checking…' : 'Set alias'}
            </button>
          </div>
          <details class="gate-editor" onToggle={(event) => setGateOn((event.currentTarget as HTMLDetailsElement).open)}>
            <summary>Promotion gate (optional)</summary>
            <p class="muted small">The alias will only move to a version whose evaluation on this dataset meets the bound (docs/quality.md).</p>
            <div class="inline-form">
              <div class="field">
                <label for="gate-metric">Metric</label>
                <select id="gate-metric" value={gate.metric} onChange={(event) => setGate({ ...gate, metric: event.currentTarget.value })}>
                  {gateMetrics.map((metric) => (
                    <option key={metric} value={metric}>
                      {metric}
                    </option>
                  ))}
                </select>
              </div>
              <div class="field">
                <label for="gate-dataset">Holdout dataset</label>
                <select id="gate-dataset" value={gate.datasetId} onChange={(event) => setGate({ ...gate, datasetId: event.currentTarget.value })}>
                  <option value="">choose</option>
                  {(datasets.data?.datasets ?? []).map((dataset) => (
                    <option key={dataset.id} value={dataset.id}>
                      {dataset.name}
                    </option>
                  ))}
                </select>
              </div>
              <div class="field">
                <label for="gate-bound">Bound</label>
                <select id="gate-bound" value={gate.bound} onChange={(event) => setGate({ ...gate, bound: event.currentTarget.value })}>
                  <option value="minimum">at least</option>
                  <option value="maximum">at most</option>
                  <option value="maxDropFromCurrent">at most this much worse than now</option>
                </select>
              </div>
              <div class="field">
                <label for="gate-value">Value</label>
                <input id="gate-value" type="number" step="any" value={gate.value} onInput={(event) => setGate({ ...gate, value: event.currentTarget.value })} />
              </div>
            </div>
          </details>
        </form>
      )}
      {gateFailure !== undefined && <GateFailure decision={gateFailure.decision} message={gateFailure.message} canForce={isAdmin} onForce={() => void put(true)} />}
      {message !== undefined && (
        <p class="notice success" role="status" id="alias-message">
          {message}
        </p>
      )}
      <ErrorNotice>{error}</ErrorNotice>
    </section>
  );
}

export function ModelPage({ name, me }: { name: string; me: Me }) {
  const path = `/api/v1/models/${encodeURIComponent(name)}`;
  const model = useApi<Model>(path);
  const versions = useApi<{ versions: Version[] }>(`${path}/versions`);
  const aliases = useApi<{ aliases: (Alias & { gate?: Gate | null })[] }>(`${path}/aliases`);
  const refresh = () => {
    model.reload();
    versions.reload();
    aliases.reload();
  };
  const sorted = [...(versions.data?.versions ?? [])].sort((left, right) => right.version - left.version);
  return (
    <section>
      <nav class="breadcrumbs" aria-label="Breadcrumb">
        <a href={href('/models')}>Models</a> / <span aria-current="page">{name}</span>
      </nav>
      <PageHeader title={name} />
      <ErrorNotice>{model.error ?? versions.error}</ErrorNotice>
      {model.data?.description && <p>{model.data.description}</p>}
      {model.data !== undefined && (
        <AliasEditor
          key={model.data.versions.join(',')}
          model={name}
          versions={model.data.versions}
          aliases={aliases.data?.aliases ?? model.data.aliases}
          onChange={refresh}
          canWrite={me.permissions.includes('aliases:write')}
          isAdmin={me.key.role === 'admin'}
        />
      )}
      <h2>Versions</h2>
      {versions.loading && versions.data === undefined && <Loading what="versions" />}
      {versions.data !== undefined && sorted.length === 0 && <EmptyState>This model has no versions yet.</EmptyState>}
      <div class="versions">
        {sorted.map((version) => (
          <VersionCard key={version.id} version={version} modelName={name} canEvaluate={me.permissions.includes('jobs:write')} canCalibrate={me.permissions.includes('models:write')} />
        ))}
      </div>
    </section>
  );
}
