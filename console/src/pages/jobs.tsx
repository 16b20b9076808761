/** Training jobs: the list, a job with live curves over SSE, and the form that submits one. */
import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, describeError, readEventStream, request } from '../api.ts';
import { LineChart, type Series } from '../charts.tsx';
import { formatDuration, formatNumber, formatTime, shortId } from '../format.ts';
import { href, navigate } from '../router.ts';
import { checkSpecText, type SpecProblem } from '../spec-check.ts';
import type { Dataset, EpochRecord, Job } from '../types.ts';
import { EmptyState, ErrorNotice, Loading, PageHeader, StatusBadge, useApi } from '../ui.tsx';

const finished = new Set(['succeeded', 'failed', 'cancelled']);

export function JobsPage() {
  const [status, setStatus] = useState('');
  const jobs = useApi<{ jobs: Job[] }>(`/api/v1/jobs?limit=100${status === '' ? '' : `&status=${status}`}`);
  // Refreshes while something runs, so statuses move without a reload.
  const active = jobs.data?.jobs.some((job) => !finished.has(job.status)) ?? false;
  useEffect(() => {
    if (!active) return;
    const timer = setInterval(jobs.reload, 3000);
    return () => clearInterval(timer);
  }, [active, jobs.reload]);
  return (
    <section>
      <PageHeader title="Training jobs">
        <a class="button" href={href('/jobs/new')}>
          New training job
        </a>
      </PageHeader>
      <div class="filters">
        <label for="job-status">Status</label>
        <select id="job-status" value={status} onChange={(event) => setStatus(event.currentTarget.value)}>
          <option value="">all</option>
          {['queued', 'running', 'succeeded', 'failed', 'cancelled'].map((value) => (
            <option key={value} value={value}>
              {value}
            </option>
          ))}
        </select>
      </div>
      <ErrorNotice>{jobs.error}</ErrorNotice>
      {jobs.loading && jobs.data === undefined && <Loading what="jobs" />}
      {jobs.data !== undefined && jobs.data.jobs.length === 0 && (
        <EmptyState>
          No jobs{status === '' ? '' : ` with status ${status}`}. <a href={href('/jobs/new')}>Start a training job</a>.
        </EmptyState>
      )}
      {jobs.data !== undefined && jobs.data.jobs.length > 0 && (
        <div class="table-wrap">
          <table id="jobs-table">
            <caption class="visually-hidden">Jobs, newest first</caption>
            <thead>
              <tr>
                <th scope="col">Job</th>
                <th scope="col">Kind</th>
                <th scope="col">Model</th>
                <th scope="col">Status</th>
                <th scope="col">Progress</th>
                <th scope="col">Loss</th>
                <th scope="col">Created</th>
              </tr>
            </thead>
            <tbody>
              {jobs.data.jobs.map((job) => (
                <tr key={job.id}>
                  <th scope="row">
                    <a href={href(`/jobs/${job.id}`)}>
                      <code>{shortId(job.id)}</code>
                    </a>
                  </th>
                  <td>{job.kind}</td>
                  <td>{job.model}</td>
                  <td>
                    <StatusBadge status={job.status} />
                  </td>
                  <td>{job.kind === 'train' ? `epoch ${job.epoch} / ${job.totalEpochs}` : ''}</td>
                  <td>{job.loss === null || job.kind !== 'train' ? '—' : formatNumber(job.loss)}</td>
                  <td>{formatTime(job.createdAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function metricSeries(history: EpochRecord[], name: string, className: string, pick: (record: EpochRecord) => number | undefined, dashed = false): Series | undefined {
  const points = history.flatMap((record) => {
    const value = pick(record);
    return value === undefined || !Number.isFinite(value) ? [] : [{ x: record.epoch, y: value }];
  });
  return points.length === 0 && dashed ? undefined : { name, className, points, dashed };
}

export function JobPage({ id }: { id: string }) {
  const job = useApi<{ job: Job }>(`/api/v1/jobs/${encodeURIComponent(id)}`);
  const [streamed, setStreamed] = useState<EpochRecord[]>([]);
  const [progress, setProgress] = useState<{ epoch: number; batch?: number; batchesPerEpoch?: number; loss?: number } | undefined>(undefined);
  const [live, setLive] = useState(false);
  const [error, setError] = useState<string | undefined>(undefined);
  const status = job.data?.job.status;
  const streaming = status !== undefined && !finished.has(status);

  useEffect(() => {
    if (!streaming) return;
    const controller = new AbortController();
    setLive(true);
    (async () => {
      try {
        const response = await request(`/api/v1/jobs/${encodeURIComponent(id)}/events`, { signal: controller.signal, accept: 'text/event-stream' });
        await readEventStream(response, (event) => {
          const payload = JSON.parse(event.data) as Record<string, unknown>;
          if (event.event === 'epoch-end') {
            const record = payload as unknown as EpochRecord;
            setStreamed((previous) => [...previous.filter((entry) => entry.epoch !== record.epoch), record]);
          } else if (event.event === 'job-progress') {
            setProgress(payload as { epoch: number; batch?: number; batchesPerEpoch?: number; loss?: number });
          } else if (event.event === 'job-started' || event.event === 'job-finished') {
            job.reload();
          }
        });
      } catch (failure) {
        if (!controller.signal.aborted) setError(`The live stream stopped: ${describeError(failure)}`);
      } finally {
        if (!controller.signal.aborted) {
          setLive(false);
          job.reload();
        }
      }
    })();
    return () => controller.abort();
  }, [id, streaming]);

  const history = useMemo(() => {
    const byEpoch = new Map<number, EpochRecord>();
    for (const record of job.data?.job.history ?? []) byEpoch.set(record.epoch, record);
    for (const record of streamed) byEpoch.set(record.epoch, record);
    return [...byEpoch.values()].sort((left, right) => left.epoch - right.epoch);
  }, [job.data, streamed]);

  if (job.error !== undefined) return <ErrorNotice>{job.error}</ErrorNotice>;
  if (job.data === undefined) return <Loading what="the job" />;
  const current = job.data.job;
  const cancel = async () => {
    if (!confirm('Cancel this job? Training stops at the next step; no version is registered.')) return;
    try {
      await api(`/api/v1/jobs/${encodeURIComponent(id)}/cancel`, { method: 'POST' });
      job.reload();
    } catch (failure) {
      setError(describeError(failure));
    }
  };
  const lossSeries = [metricSeries(history, 'training loss', 'series-1', (record) => record.loss), metricSeries(history, 'validation loss', 'series-2', (record) => record.validationLoss, true)].filter(
    (series): series is Series => series !== undefined,
  );
  const hasAccuracy = history.some((record) => record.metrics?.accuracy !== undefined);
  const accuracySeries = [
    metricSeries(history, 'training accuracy', 'series-3', (record) => record.metrics?.accuracy),
    metricSeries(history, 'validation accuracy', 'series-4', (record) => record.validationMetrics?.accuracy, true),
  ].filter((series): series is Series => series !== undefined);
  const last = history[history.length - 1];
  const settings = current.settings;
  return (
    <section>
      <nav class="breadcrumbs" aria-label="Breadcrumb">
        <a href={href('/jobs')}>Training jobs</a> / <span aria-current="page">{shortId(id)}</span>
      </nav>
      <PageHeader title={`Job ${shortId(id)} · ${current.model}`}>
        {!finished.has(current.status) && (
          <button type="button" class="danger" onClick={cancel} disabled={current.cancelRequested}>
            {current.cancelRequested ? 'Cancelling…' : 'Cancel job'}
          </button>
        )}
      </PageHeader>
      <ErrorNotice>{error}</ErrorNotice>
      <dl class="facts" id="job-facts">
        <div>
          <dt>Status</dt>
          <dd id="job-status">
            <StatusBadge status={current.status} />
            {live && (
              <span class="live" title="Receiving events as epochs finish">
                live
              </span>
            )}
          </dd>
        </div>
        <div>
          <dt>Epoch</dt>
          <dd>
            {Math.max(current.epoch, last?.epoch ?? 0)} / {current.totalEpochs}
          </dd>
        </div>
        <div>
          <dt>Loss</dt>
          <dd>{last === undefined ? (current.loss === null ? '—' : formatNumber(current.loss)) : formatNumber(last.loss)}</dd>
        </div>
        {last?.metrics?.accuracy !== undefined && (
          <div>
            <dt>Accuracy</dt>
            <dd>{formatNumber(last.metrics.accuracy)}</dd>
          </div>
        )}
        <div>
          <dt>Started</dt>
          <dd>{formatTime(current.startedAt)}</dd>
        </div>
        {current.resultVersion !== null && (
          <div>
            <dt>Result</dt>
            <dd>
              <a href={href(`/models/${encodeURIComponent(current.model)}`)} id="job-result">
                {current.model} version {current.resultVersion.version}
              </a>
            </dd>
          </div>
        )}
      </dl>
      {!finished.has(current.status) && progress !== undefined && progress.batchesPerEpoch !== undefined && progress.batch !== undefined && (
        <div class="field">
          <label for="epoch-progress">
            Epoch {progress.epoch} progress{progress.loss === undefined ? '' : ` · loss ${formatNumber(progress.loss)}`}
          </label>
          <progress id="epoch-progress" max={progress.batchesPerEpoch} value={progress.batch} />
        </div>
      )}
      {current.error !== null && (
        <p class="notice error" role="alert">
          {current.error.message} ({current.error.code})
        </p>
      )}
      <div class="charts">
        <LineChart id="loss-chart" title="Loss per epoch" series={lossSeries} xLabel="Epoch" yLabel="loss" />
        {hasAccuracy && <LineChart id="accuracy-chart" title="Accuracy per epoch" series={accuracySeries} xLabel="Epoch" yLabel="accuracy" yMax={1} />}
      </div>
      {history.length > 0 && (
        <details open={history.length <= 10}>
          <summary>History ({history.length} epochs)</summary>
          <div class="table-wrap">
            <table class="compact" id="history-table">
              <thead>
                <tr>
                  <th scope="col">Epoch</th>
                  <th scope="col">Loss</th>
                  <th scope="col">Accuracy</th>
                  <th scope="col">Val. loss</th>
                  <th scope="col">Val. accuracy</th>
                  <th scope="col">Samples/s</th>
                  <th scope="col">Time</th>
                </tr>
              </thead>
              <tbody>
                {history.map((record) => (
                  <tr key={record.epoch}>
                    <td>{record.epoch}</td>
                    <td>{formatNumber(record.loss)}</td>
                    <td>{record.metrics?.accuracy === undefined ? '—' : formatNumber(record.metrics.accuracy)}</td>
                    <td>{record.validationLoss === undefined ? '—' : formatNumber(record.validationLoss)}</td>
                    <td>{record.validationMetrics?.accuracy === undefined ? '—' : formatNumber(record.validationMetrics.accuracy)}</td>
                    <td>{record.samplesPerSecond === undefined ? '—' : formatNumber(Math.round(record.samplesPerSecond))}</td>
                    <td>{record.seconds === undefined ? '—' : formatDuration(record.seconds)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </details>
      )}
      <details>
        <summary>Settings</summary>
        <pre class="code">{JSON.stringify({ datasetId: current.datasetId, testDatasetId: current.testDatasetId, ...settings }, null, 2)}</pre>
      </details>
    </section>
  );
}

const exampleSpec = `{
  "name": "mnist-mlp",
  "input": { "shape": [28, 28], "scale": 0.00392156862745098 },
  "layers": [
    { "type": "flatten" },
    { "type": "dense", "units": 128, "activation": "relu" },
    { "type": "dropout", "rate": 0.2 },
    { "type": "dense", "units": 10, "activation": "softmax" }
  ],
  "compile": {
    "optimizer": { "type": "adam", "learningRate": 0.001 },
    "loss": "sparseCategoricalCrossentropy",
    "metrics": ["accuracy"]
  }
}
`;

function ProblemList({ problems }: { problems: SpecProblem[] }) {
  if (problems.length === 0)
    return (
      <p class="notice success" id="spec-status" role="status">
        The spec looks valid.
      </p>
    );
  return (
    <ul class="notice error problems" id="spec-status" role="status">
      {problems.map((problem, index) => (
        <li key={index}>
          {problem.line !== undefined && (
            <strong>
              Line {problem.line}, column {problem.column}:{' '}
            </strong>
          )}
          {problem.message}
        </li>
      ))}
    </ul>
  );
}

export function NewJobPage() {
  const datasets = useApi<{ datasets: Dataset[] }>('/api/v1/datasets?limit=1000');
  const [model, setModel] = useState('mnist');
  const [datasetId, setDatasetId] = useState('');
  const [testDatasetId, setTestDatasetId] = useState('');
  const [epochs, setEpochs] = useState('3');
  const [batchSize, setBatchSize] = useState('32');
  const [validationSplit, setValidationSplit] = useState('');
  const [spec, setSpec] = useState(exampleSpec);
  const [error, setError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const problems = useMemo(() => checkSpecText(spec), [spec]);
  const firstDataset = datasets.data?.datasets[0]?.id;
  useEffect(() => {
    if (datasetId === '' && firstDataset !== undefined) setDatasetId(firstDataset);
  }, [firstDataset]);

  const submit = async (event: Event) => {
    event.preventDefault();
    setError(undefined);
    setBusy(true);
    try {
      const body: Record<string, unknown> = { model: model.trim(), spec: JSON.parse(spec), datasetId, epochs: Number(epochs), batchSize: Number(batchSize) };
      if (testDatasetId !== '') body.testDatasetId = testDatasetId;
      if (validationSplit !== '') body.validationSplit = Number(validationSplit);
      const created = await api<{ job: Job }>('/api/v1/jobs', { method: 'POST', body });
      navigate(`/jobs/${created.job.id}`);
    } catch (failure) {
      setError(describeError(failure));
    } finally {
      setBusy(false);
    }
  };
  const list = datasets.data?.datasets ?? [];
  return (
    <section>
      <nav class="breadcrumbs" aria-label="Breadcrumb">
        <a href={href('/jobs')}>Training jobs</a> / <span aria-current="page">New</span>
      </nav>
      <PageHeader title="New training job" />
      <ErrorNotice>{datasets.error}</ErrorNotice>
      {datasets.data !== undefined && list.length === 0 && (
        <p class="notice">
          Upload a dataset first on the <a href={href('/datasets')}>Datasets</a> page.
        </p>
      )}
      <form class="job-form" onSubmit={submit} id="job-form">
        <div class="form-grid">
          <div class="field">
            <label for="job-model">Model name</label>
            <input id="job-model" required pattern="[A-Za-z0-9][A-Za-z0-9._\-]*" value={model} onInput={(event) => setModel(event.currentTarget.value)} />
            <span class="hint">The trained network becomes the next version of this model.</span>
          </div>
          <div class="field">
            <label for="job-dataset">Training data</label>
            <select id="job-dataset" required value={datasetId} onChange={(event) => setDatasetId(event.currentTarget.value)}>
              {list.map((dataset) => (
                <option key={dataset.id} value={dataset.id}>
                  {dataset.name} ({dataset.rowCount.toLocaleString('en')} rows)
                </option>
              ))}
            </select>
          </div>
          <div class="field">
            <label for="job-test-dataset">Test data (optional)</label>
            <select id="job-test-dataset" value={testDatasetId} onChange={(event) => setTestDatasetId(event.currentTarget.value)}>
              <option value="">none</option>
              {list.map((dataset) => (
                <option key={dataset.id} value={dataset.id}>
                  {dataset.name}
                </option>
              ))}
            </select>
          </div>
          <div class="field">
            <label for="job-epochs">Epochs</label>
            <input id="job-epochs" type="number" min={1} max={10000} required value={epochs} onInput={(event) => setEpochs(event.currentTarget.value)} />
          </div>
          <div class="field">
            <label for="job-batch">Batch size</label>
            <input id="job-batch" type="number" min={1} required value={batchSize} onInput={(event) => setBatchSize(event.currentTarget.value)} />
          </div>
          <div class="field">
            <label for="job-validation">Validation split (optional)</label>
            <input id="job-validation" type="number" min={0} max={0.9} step={0.05} placeholder="e.g. 0.1" value={validationSplit} onInput={(event) => setValidationSplit(event.currentTarget.value)} />
          </div>
        </div>
        <div class="field">
          <label for="job-spec">Model spec (JSON, see docs/model-spec.md)</label>
          <textarea
            id="job-spec"
            rows={18}
            spellcheck={false}
            aria-describedby="spec-status"
            aria-invalid={problems.length > 0}
            value={spec}
            onInput={(event) => setSpec(event.currentTarget.value)}
          />
          <ProblemList problems={problems} />
        </div>
        <ErrorNotice>{error}</ErrorNotice>
        <button type="submit" id="job-submit" disabled={busy || problems.length > 0 || datasetId === ''}>
          {busy ? 'Submitting…' : 'Start training'}
        </button>
      </form>
    </section>
  );
}
