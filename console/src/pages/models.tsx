/** Models: the list, and a model's versions, aliases, signatures and metrics. */
import { useState } from 'preact/hooks';
import { api, describeError } from '../api.ts';
import { formatBytes, formatNumber, formatTime } from '../format.ts';
import { href } from '../router.ts';
import type { Alias, Me, Model, TensorSpec, Version } from '../types.ts';
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

function VersionCard({ version, modelName }: { version: Version; modelName: string }) {
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

function AliasEditor({ model, versions, aliases, onChange, canWrite }: { model: string; versions: number[]; aliases: Alias[]; onChange: () => void; canWrite: boolean }) {
  const [name, setName] = useState('production');
  const [version, setVersion] = useState(String(versions[versions.length - 1] ?? ''));
  const [error, setError] = useState<string | undefined>(undefined);
  const [message, setMessage] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const base = `/api/v1/models/${encodeURIComponent(model)}/aliases/`;
  const move = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    setMessage(undefined);
    try {
      await api(base + encodeURIComponent(name.trim()), { method: 'PUT', body: { version: Number(version) } });
      setMessage(`${name.trim()} now points at version ${version}.`);
      onChange();
    } catch (failure) {
      setError(describeError(failure));
    } finally {
      setBusy(false);
    }
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
        <form class="inline-form" onSubmit={move} aria-label="Point an alias at a version">
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
            Set alias
          </button>
        </form>
      )}
      {message !== undefined && (
        <p class="notice success" role="status">
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
  const aliases = useApi<{ aliases: Alias[] }>(`${path}/aliases`);
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
        />
      )}
      <h2>Versions</h2>
      {versions.loading && versions.data === undefined && <Loading what="versions" />}
      {versions.data !== undefined && sorted.length === 0 && <EmptyState>This model has no versions yet.</EmptyState>}
      <div class="versions">
        {sorted.map((version) => (
          <VersionCard key={version.id} version={version} modelName={name} />
        ))}
      </div>
    </section>
  );
}
