/**
 * Small SVG charts drawn here (no chart library): line charts for training curves, horizontal bars
 * for class probabilities, stacked columns for usage per day. Colours come from SVG attributes and
 * CSS classes (the CSP allows no inline style attributes).
 */
import { formatNumber } from './format.ts';

export interface Series {
  name: string;
  /** A CSS class giving the stroke colour (series-1 … series-4). */
  className: string;
  points: { x: number; y: number }[];
  dashed?: boolean;
}

function niceTicks(min: number, max: number, count: number): number[] {
  if (!(max > min)) return [min];
  const raw = (max - min) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((factor) => factor * magnitude).find((candidate) => candidate >= raw) ?? raw;
  const ticks: number[] = [];
  for (let tick = Math.ceil(min / step) * step; tick <= max + step * 1e-9; tick += step) ticks.push(Number(tick.toPrecision(12)));
  return ticks;
}

export function LineChart({ title, series, xLabel, yLabel, yMin, yMax, id }: { title: string; series: Series[]; xLabel: string; yLabel: string; yMin?: number; yMax?: number; id: string }) {
  const width = 480;
  const height = 240;
  const margin = { left: 52, right: 16, top: 16, bottom: 40 };
  const all = series.flatMap((entry) => entry.points);
  const xs = all.map((point) => point.x);
  const ys = all.map((point) => point.y).filter(Number.isFinite);
  const xMin = Math.min(0, ...xs);
  const xMax = Math.max(1, ...xs);
  let low = yMin ?? (ys.length === 0 ? 0 : Math.min(...ys));
  let high = yMax ?? (ys.length === 0 ? 1 : Math.max(...ys));
  if (high - low < 1e-9) {
    low -= 0.5;
    high += 0.5;
  }
  if (yMin === undefined) low = Math.max(0, low - (high - low) * 0.08);
  if (yMax === undefined) high += (high - low) * 0.08;
  const x = (value: number) => margin.left + ((value - xMin) / (xMax - xMin)) * (width - margin.left - margin.right);
  const y = (value: number) => margin.top + (1 - (value - low) / (high - low)) * (height - margin.top - margin.bottom);
  const xTicks = niceTicks(xMin, xMax, Math.min(8, Math.max(1, xMax - xMin))).filter((tick) => Number.isInteger(tick));
  const yTicks = niceTicks(low, high, 4);
  const pointCount = series.reduce((sum, entry) => sum + entry.points.length, 0);
  return (
    <figure class="chart" id={id} data-points={pointCount}>
      <figcaption>{title}</figcaption>
      <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-label={`${title}: ${series.map((entry) => `${entry.name} ${entry.points.map((point) => formatNumber(point.y)).join(', ') || 'no points yet'}`).join('; ')}`}>
        {yTicks.map((tick) => (
          <g key={`y${tick}`}>
            <line class="grid" x1={margin.left} x2={width - margin.right} y1={y(tick)} y2={y(tick)} />
            <text class="tick" x={margin.left - 6} y={y(tick) + 4} text-anchor="end">
              {formatNumber(tick, 3)}
            </text>
          </g>
        ))}
        {xTicks.map((tick) => (
          <text key={`x${tick}`} class="tick" x={x(tick)} y={height - margin.bottom + 16} text-anchor="middle">
            {tick}
          </text>
        ))}
        <line class="axis" x1={margin.left} x2={width - margin.right} y1={height - margin.bottom} y2={height - margin.bottom} />
        <line class="axis" x1={margin.left} x2={margin.left} y1={margin.top} y2={height - margin.bottom} />
        <text class="axis-label" x={(margin.left + width - margin.right) / 2} y={height - 6} text-anchor="middle">
          {xLabel}
        </text>
        <text class="axis-label" transform={`rotate(-90) translate(${-(margin.top + height - margin.bottom) / 2}, 14)`} text-anchor="middle">
          {yLabel}
        </text>
        {series.map((entry) => (
          <g key={entry.name} class={entry.className}>
            {entry.points.length > 1 && (
              <polyline class={entry.dashed ? 'line dashed' : 'line'} points={entry.points.map((point) => `${x(point.x)},${y(point.y)}`).join(' ')} />
            )}
            {entry.points.map((point) => (
              <circle key={point.x} class="dot" cx={x(point.x)} cy={y(point.y)} r={3.5}>
                <title>{`${entry.name} at ${xLabel.toLowerCase()} ${point.x}: ${formatNumber(point.y)}`}</title>
              </circle>
            ))}
          </g>
        ))}
      </svg>
      <ul class="legend">
        {series.map((entry) => (
          <li key={entry.name} class={entry.className}>
            <span class={entry.dashed ? 'swatch dashed' : 'swatch'} aria-hidden="true" />
            {entry.name}
          </li>
        ))}
      </ul>
    </figure>
  );
}

/** Class probabilities as horizontal bars, the most likely highlighted. */
export function ProbabilityBars({ labels, values }: { labels: string[]; values: number[] }) {
  const best = values.indexOf(Math.max(...values));
  const rowHeight = 24;
  const width = 360;
  const labelWidth = 90;
  const barWidth = width - labelWidth - 60;
  return (
    <svg class="probabilities" viewBox={`0 0 ${width} ${values.length * rowHeight + 4}`} role="img" aria-label={`Class probabilities: ${labels.map((label, index) => `${label} ${(values[index]! * 100).toFixed(1)}%`).join(', ')}`}>
      {values.map((value, index) => (
        <g key={index} class={index === best ? 'bar best' : 'bar'} data-class={labels[index]} data-probability={value.toFixed(6)}>
          <text class="bar-label" x={labelWidth - 8} y={index * rowHeight + 17} text-anchor="end">
            {labels[index]}
          </text>
          <rect class="bar-track" x={labelWidth} y={index * rowHeight + 4} width={barWidth} height={rowHeight - 8} rx={3} />
          <rect class="bar-fill" x={labelWidth} y={index * rowHeight + 4} width={Math.max(0, Math.min(1, value)) * barWidth} height={rowHeight - 8} rx={3} />
          <text class="bar-value" x={labelWidth + barWidth + 6} y={index * rowHeight + 17}>
            {(value * 100).toFixed(1)}%
          </text>
        </g>
      ))}
    </svg>
  );
}

/** Columns per day, stacked per model; `values[day][model]`. */
export function StackedColumns({ title, days, models, values, unit, xLabel = 'day (UTC)' }: { title: string; days: string[]; models: string[]; values: number[][]; unit: string; xLabel?: string }) {
  const width = 1000;
  const height = 300;
  const margin = { left: 56, right: 12, top: 12, bottom: 44 };
  const totals = values.map((row) => row.reduce((sum, value) => sum + value, 0));
  const max = Math.max(1, ...totals);
  const ticks = niceTicks(0, max, 4);
  const top = Math.max(max, ticks[ticks.length - 1] ?? max);
  const slot = (width - margin.left - margin.right) / Math.max(1, days.length);
  const columnWidth = Math.min(48, slot * 0.7);
  const y = (value: number) => margin.top + (1 - value / top) * (height - margin.top - margin.bottom);
  const labelEvery = Math.ceil(days.length / 10);
  return (
    <figure class="chart wide">
      <figcaption>{title}</figcaption>
      <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-label={`${title}: ${days.map((day, index) => `${day} ${formatNumber(totals[index]!)} ${unit}`).join(', ') || 'no data'}`}>
        {ticks.map((tick) => (
          <g key={tick}>
            <line class="grid" x1={margin.left} x2={width - margin.right} y1={y(tick)} y2={y(tick)} />
            <text class="tick" x={margin.left - 6} y={y(tick) + 4} text-anchor="end">
              {formatNumber(tick, 3)}
            </text>
          </g>
        ))}
        {days.map((day, dayIndex) => {
          let base = 0;
          const left = margin.left + dayIndex * slot + (slot - columnWidth) / 2;
          return (
            <g key={day}>
              {models.map((model, modelIndex) => {
                const value = values[dayIndex]![modelIndex]!;
                if (value <= 0) return null;
                const rect = (
                  <rect key={model} class={`column series-${(modelIndex % 6) + 1}`} x={left} y={y(base + value)} width={columnWidth} height={y(base) - y(base + value)}>
                    <title>{`${day} · ${model}: ${formatNumber(value)} ${unit}`}</title>
                  </rect>
                );
                base += value;
                return rect;
              })}
              {dayIndex % labelEvery === 0 && (
                <text class="tick" x={left + columnWidth / 2} y={height - margin.bottom + 16} text-anchor="middle">
                  {/^\d{4}-\d{2}-\d{2}$/.test(day) ? day.slice(5) : day}
                </text>
              )}
            </g>
          );
        })}
        <line class="axis" x1={margin.left} x2={width - margin.right} y1={height - margin.bottom} y2={height - margin.bottom} />
        <text class="axis-label" x={(margin.left + width - margin.right) / 2} y={height - 6} text-anchor="middle">
          {xLabel}
        </text>
      </svg>
      <ul class="legend">
        {models.map((model, index) => (
          <li key={model} class={`series-${(index % 6) + 1}`}>
            <span class="swatch block" aria-hidden="true" />
            {model}
          </li>
        ))}
      </ul>
    </figure>
  );
}
