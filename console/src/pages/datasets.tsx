/** Datasets: upload with a progress bar, and each dataset's schema and row count. */
import { useRef, useState } from 'preact/hooks';
import { api, describeError, uploadWithProgress } from '../api.ts';
import { formatBytes, formatTime, shortId } from '../format.ts';
import type { Dataset } from '../types.ts';
import { EmptyState, ErrorNotice, Loading, PageHeader, useApi } from '../ui.tsx';

function UploadForm({ onUploaded }: { onUploaded: (dataset: Dataset) => void }) {
  const [file, setFile] = useState<File | undefined>(undefined);
  const [labels, setLabels] = useState<File | undefined>(undefined);
  const [name, setName] = useState('');
  const [format, setFormat] = useState('');
  const [label, setLabel] = useState('');
  const [progress, setProgress] = useState<{ loaded: number; total: number } | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [done, setDone] = useState<string | undefined>(undefined);
  const controller = useRef<AbortController | undefined>(undefined);

  const submit = async (event: Event) => {
    event.preventDefault();
    if (file === undefined) return;
    setError(undefined);
    setDone(undefined);
    const form = new FormData();
    if (name.trim() !== '') form.append('name', name.trim());
    if (format !== '') form.append('format', format);
    if (label.trim() !== '') form.append('label', label.trim());
    form.append('file', file, file.name);
    if (labels !== undefined) form.append('labels', labels, labels.name);
    controller.current = new AbortController();
    setProgress({ loaded: 0, total: file.size + (labels?.size ?? 0) });
    try {
      const created = await uploadWithProgress<{ dataset: Dataset }>('/api/v1/datasets', form, (loaded, total) => setProgress({ loaded, total }), controller.current.signal);
      setDone(`Uploaded ${created.dataset.name}: ${created.dataset.rowCount.toLocaleString('en')} rows.`);
      onUploaded(created.dataset);
    } catch (failure) {
      setError(describeError(failure));
    } finally {
      setProgress(undefined);
      controller.current = undefined;
    }
  };
  const isIdx = format === 'idx' || /\.idx|ubyte/.test(file?.name ?? '');
  return (
    <form class="card" onSubmit={submit} id="upload-form" aria-labelledby="upload-title">
      <h2 id="upload-title">Upload a dataset</h2>
      <p class="muted small">CSV (a header row; the label column is the last one unless you name it), JSON lines, or IDX images with their labels file. Gzipped files are fine.</p>
      <div class="form-grid">
        <div class="field">
          <label for="dataset-file">File</label>
          <input id="dataset-file" type="file" required onChange={(event) => setFile(event.currentTarget.files?.[0])} />
        </div>
        <div class="field">
          <label for="dataset-labels">Labels file (IDX only)</label>
          <input id="dataset-labels" type="file" onChange={(event) => setLabels(event.currentTarget.files?.[0])} aria-describedby="labels-hint" />
          <span class="hint" id="labels-hint">
            {isIdx ? 'Required for IDX images, e.g. train-labels.idx1-ubyte.' : 'Only for IDX images.'}
          </span>
        </div>
        <div class="field">
          <label for="dataset-name">Name (optional)</label>
          <input id="dataset-name" placeholder={file?.name ?? 'the file name'} value={name} onInput={(event) => setName(event.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="dataset-format">Format</label>
          <select id="dataset-format" value={format} onChange={(event) => setFormat(event.currentTarget.value)}>
            <option value="">detect from the file</option>
            <option value="csv">CSV</option>
            <option value="jsonl">JSON lines</option>
            <option value="idx">IDX</option>
          </select>
        </div>
        <div class="field">
          <label for="dataset-label">Label column (CSV, JSON lines)</label>
          <input id="dataset-label" placeholder="last column" value={label} onInput={(event) => setLabel(event.currentTarget.value)} />
        </div>
      </div>
      {progress !== undefined && (
        <div class="field upload-progress">
          <label for="upload-progress">
            Uploading… {formatBytes(progress.loaded)}
            {progress.total > 0 ? ` of ${formatBytes(progress.total)}` : ''}
          </label>
          <progress id="upload-progress" max={progress.total || 1} value={progress.loaded} />
          <button type="button" class="secondary" onClick={() => controller.current?.abort()}>
            Cancel upload
          </button>
        </div>
      )}
      {done !== undefined && (
        <p class="notice success" role="status" id="upload-result">
          {done}
        </p>
      )}
      <ErrorNotice>{error}</ErrorNotice>
      <button type="submit" disabled={file === undefined || progress !== undefined}>
        Upload
      </button>
    </form>
  );
}

function ClassSummary({ classes }: { classes: number | string[] | undefined }) {
  if (classes === undefined) return null;
  if (typeof classes === 'number') return <div class="muted small">{classes} classes</div>;
  return <div class="muted small">classes: {classes.slice(0, 20).join(', ')}{classes.length > 20 ? ', …' : ''}</div>;
}

function shape(values: number[]): string {
  return values.length === 0 ? 'scalar' : `[${values.join(' × ')}]`;
}

export function DatasetsPage() {
  const datasets = useApi<{ datasets: Dataset[] }>('/api/v1/datasets?limit=1000');
  const [error, setError] = useState<string | undefined>(undefined);
  const remove = async (dataset: Dataset) => {
    if (!confirm(`Delete the dataset ${dataset.name}? Jobs that already trained on it keep their versions.`)) return;
    try {
      await api(`/api/v1/datasets/${dataset.id}`, { method: 'DELETE' });
      datasets.reload();
    } catch (failure) {
      setError(describeError(failure));
    }
  };
  return (
    <section>
      <PageHeader title="Datasets" />
      <UploadForm onUploaded={() => datasets.reload()} />
      <ErrorNotice>{datasets.error ?? error}</ErrorNotice>
      {datasets.loading && datasets.data === undefined && <Loading what="datasets" />}
      {datasets.data !== undefined && datasets.data.datasets.length === 0 && <EmptyState>No datasets yet.</EmptyState>}
      {datasets.data !== undefined && datasets.data.datasets.length > 0 && (
        <div class="table-wrap">
          <table id="datasets-table">
            <caption class="visually-hidden">Datasets</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Format</th>
                <th scope="col">Rows</th>
                <th scope="col">Size</th>
                <th scope="col">Features</th>
                <th scope="col">Label</th>
                <th scope="col">Created</th>
                <th scope="col">
                  <span class="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {datasets.data.datasets.map((dataset) => (
                <tr key={dataset.id} data-dataset={dataset.name}>
                  <th scope="row">
                    {dataset.name}
                    <div class="muted small">
                      <code>{shortId(dataset.id)}</code>
                    </div>
                  </th>
                  <td>{dataset.format}</td>
                  <td class="number" data-rows={dataset.rowCount}>
                    {dataset.rowCount.toLocaleString('en')}
                  </td>
                  <td class="number">{formatBytes(dataset.bytes)}</td>
                  <td>
                    {shape(dataset.schema.featureShape)}
                    {dataset.schema.featureNames !== undefined && (
                      <details>
                        <summary>{dataset.schema.featureNames.length} columns</summary>
                        <p class="small">{dataset.schema.featureNames.join(', ')}</p>
                      </details>
                    )}
                  </td>
                  <td>
                    {dataset.schema.labelName ?? dataset.schema.label ?? shape(dataset.schema.labelShape)}
                    <ClassSummary classes={dataset.schema.classNames ?? dataset.schema.classes} />
                  </td>
                  <td>{formatTime(dataset.createdAt)}</td>
                  <td>
                    <button type="button" class="secondary danger" onClick={() => remove(dataset)} aria-label={`Delete dataset ${dataset.name}`}>
                      Delete
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
