/**
 * A version's evaluation reports (docs/quality.md): headline figures, per-class table, and the
 * confusion matrix as a heat map; and a form that evaluates the version on a labelled dataset.
 */
import { useEffect, useState } from 'preact/hooks';
import { api, describeError } from '../api.ts';
import { formatNumber, formatTime } from '../format.ts';
import type { Dataset } from '../types.ts';
import { ErrorNotice, StatusBadge, useApi } from '../ui.tsx';

interface PerClass {
  index: number;
  name: string;
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

export interface Report {
  task?: 'classification' | 'regression';
  count: number;
  classes?: string[];
  accuracy?: number;
  perClass?: PerClass[];
  macroAverage?: { precision: number; recall: number; f1: number };
  confusionMatrix?: number[][];
  logLoss?: number;
  topK?: number;
  topKAccuracy?: number;
  calibration?: { expectedCalibrationError: number };
  binary?: { rocAuc: number | null; prAuc: number | null };
  meanAbsoluteError?: number;
  rootMeanSquaredError?: number;
  r2?: number;
}

export interface Evaluation {
  id: string;
  version: number;
  datasetId: string;
  status: 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
  report: Report | null;
  error: { code: string; message: string } | null;
  createdAt: string;
}

/** Row-normalised counts as colour: white (0) to the accent blue (all of the row); text flips to white on dark cells. */
export function ConfusionMatrix({ matrix, classes }: { matrix: number[][]; classes: string[] }) {
  const size = matrix.length;
  const cell = size > 12 ? 26 : 38;
  const labelWidth = Math.min(110, 12 + Math.max(...classes.map((name) => name.length)) * 7);
  const top = 28;
  const width = labelWidth + size * cell + 4;
  const height = top + size * cell + 22;
  const shade = (fraction: number) => {
    // Interpolates #ffffff → #1d4ed8.
    const channel = (from: number, to: number) => Math.round(from + (to - from) * fraction);
    return `rgb(${channel(255, 29)}, ${channel(255, 78)}, ${channel(255, 216)})`;
  };
  return (
    <figure class="confusion">
      <figcaption>Confusion matrix (rows: true class, columns: predicted; shade: share of the row)</figcaption>
      <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-label={`Confusion matrix of ${size} classes; diagonal: ${matrix.map((row, index) => `${classes[index]} ${row[index]}`).join(', ')}`}>
        <text class="tick" x={labelWidth + (size * cell) / 2} y={12} text-anchor="middle">
          predicted
        </text>
        {classes.map((name, index) => (
          <text key={`c${index}`} class="tick" x={labelWidth + index * cell + cell / 2} y={top - 4} text-anchor="middle">
            {size > 12 ? index : name.length > 6 ? name.slice(0, 5) + '…' : name}
          </text>
        ))}
        {matrix.map((row, rowIndex) => {
          const total = row.reduce((sum, value) => sum + value, 0) || 1;
          return (
            <g key={rowIndex}>
              <text class="tick" x={labelWidth - 6} y={top + rowIndex * cell + cell / 2 + 4} text-anchor="end">
                {classes[rowIndex]}
              </text>
              {row.map((value, columnIndex) => {
                const fraction = value / total;
                return (
                  <g key={columnIndex} class={rowIndex === columnIndex ? 'cell diagonal' : 'cell'}>
                    <rect x={labelWidth + columnIndex * cell} y={top + rowIndex * cell} width={cell - 2} height={cell - 2} rx={3} fill={shade(fraction)}>
                      <title>{`true ${classes[rowIndex]}, predicted ${classes[columnIndex]}: ${value} (${(fraction * 100).toFixed(1)}% of the row)`}</title>
                    </rect>
                    {value > 0 && (
                      <text class={fraction > 0.5 ? 'cell-value on-dark' : 'cell-value'} x={labelWidth + columnIndex * cell + (cell - 2) / 2} y={top + rowIndex * cell + (cell - 2) / 2 + 4} text-anchor="middle">
                        {value}
                      </text>
                    )}
                  </g>
                );
              })}
            </g>
          );
        })}
      </svg>
    </figure>
  );
}

function ReportView({ report }: { report: Report }) {
  const figures: [string, number | null | undefined][] =
    report.task === 'regression' || report.accuracy === undefined
      ? [
          ['MAE', report.meanAbsoluteError],
          ['RMSE', report.rootMeanSquaredError],
          ['R²', report.r2],
        ]
      : [
          ['accuracy', report.accuracy],
          [`top-${report.topK ?? 'k'} accuracy`, report.topKAccuracy],
          ['macro F1', report.macroAverage?.f1],
          ['log loss', report.logLoss],
          ['ECE', report.calibration?.expectedCalibrationError],
          ['ROC AUC', report.binary?.rocAuc],
        ];
  const classes = report.classes ?? report.perClass?.map((entry) => entry.name) ?? [];
  return (
    <div class="report">
      <dl class="facts">
        {figures
          .filter((entry): entry is [string, number] => typeof entry[1] === 'number')
          .map(([name, value]) => (
            <div key={name}>
              <dt>{name}</dt>
              <dd>{formatNumber(value)}</dd>
            </div>
          ))}
        <div>
          <dt>samples</dt>
          <dd>{report.count.toLocaleString('en')}</dd>
        </div>
      </dl>
      <div class="report-grid">
        {report.confusionMatrix !== undefined && <ConfusionMatrix matrix={report.confusionMatrix} classes={classes} />}
        {report.perClass !== undefined && (
          <table class="compact">
            <caption>Per class</caption>
            <thead>
              <tr>
                <th scope="col">Class</th>
                <th scope="col">Precision</th>
                <th scope="col">Recall</th>
                <th scope="col">F1</th>
                <th scope="col">Support</th>
              </tr>
            </thead>
            <tbody>
              {report.perClass.map((entry) => (
                <tr key={entry.index}>
                  <th scope="row">{entry.name}</th>
                  <td class="number">{entry.precision.toFixed(3)}</td>
                  <td class="number">{entry.recall.toFixed(3)}</td>
                  <td class="number">{entry.f1.toFixed(3)}</td>
                  <td class="number">{entry.support}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
    </div>
  );
}

export function Evaluations({ model, version, canEvaluate }: { model: string; version: number; canEvaluate: boolean }) {
  const path = `/api/v1/models/${encodeURIComponent(model)}/versions/${version}/evaluations`;
  const evaluations = useApi<{ evaluations: Evaluation[] }>(path);
  const datasets = useApi<{ datasets: Dataset[] }>(canEvaluate ? '/api/v1/datasets?limit=1000' : undefined);
  const [datasetId, setDatasetId] = useState('');
  const [error, setError] = useState<string | undefined>(undefined);
  const list = evaluations.data?.evaluations ?? [];
  const pending = list.some((entry) => entry.status === 'queued' || entry.status === 'running');
  useEffect(() => {
    if (!pending) return;
    const timer = setInterval(evaluations.reload, 2000);
    return () => clearInterval(timer);
  }, [pending, evaluations.reload]);
  const names = new Map((datasets.data?.datasets ?? []).map((dataset) => [dataset.id, dataset.name]));
  const evaluate = async (event: Event) => {
    event.preventDefault();
    setError(undefined);
    try {
      await api(path, { method: 'POST', body: { datasetId } });
      evaluations.reload();
    } catch (failure) {
      setError(describeError(failure));
    }
  };
  const latest = list.find((entry) => entry.report !== null);
  return (
    <details class="evaluations" open={latest !== undefined}>
      <summary>Evaluations ({list.length})</summary>
      <ErrorNotice>{evaluations.error ?? error}</ErrorNotice>
      {canEvaluate && (
        <form class="inline-form" onSubmit={evaluate} aria-label={`Evaluate version ${version}`}>
          <div class="field">
            <label for={`evaluate-dataset-${version}`}>Labelled dataset</label>
            <select id={`evaluate-dataset-${version}`} required value={datasetId} onChange={(event) => setDatasetId(event.currentTarget.value)}>
              <option value="" disabled>
                choose
              </option>
              {(datasets.data?.datasets ?? []).map((dataset) => (
                <option key={dataset.id} value={dataset.id}>
                  {dataset.name}
                </option>
              ))}
            </select>
          </div>
          <button type="submit" class="secondary" disabled={datasetId === ''}>
            Evaluate
          </button>
        </form>
      )}
      {list.map((entry) => (
        <section key={entry.id} class="evaluation" data-evaluation={entry.id} data-status={entry.status}>
          <h4>
            On {names.get(entry.datasetId) ?? entry.datasetId} · {formatTime(entry.createdAt)} <StatusBadge status={entry.status} />
          </h4>
          {entry.error !== null && (
            <p class="notice error">
              {entry.error.message} ({entry.error.code})
            </p>
          )}
          {entry.report !== null && entry === latest && <ReportView report={entry.report} />}
        </section>
      ))}
    </details>
  );
}
