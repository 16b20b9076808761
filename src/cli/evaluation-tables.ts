/** The text an evaluation report prints as: headline, per-class table, confusion matrix (or the regression figures). */
import type { EvaluationReport } from '../quality/metrics.ts';
import { table } from './format.ts';

/** A table as a block of lines (the sections are joined with blank lines). */
const block = (headers: readonly string[], rows: readonly (readonly string[])[]): string => table(headers, rows).trimEnd();

const figure = (value: number | null | undefined, digits = 4): string => (value === null || value === undefined ? '-' : value.toFixed(digits));

/** Class names cut to a column's width; the full names are in the JSON. */
function shortName(name: string): string {
  return name.length > 14 ? `${name.slice(0, 13)}…` : name;
}

export function renderEvaluationReport(report: EvaluationReport): string {
  if (report.task === 'regression') {
    const lines = [
      `regression on ${report.count} samples (${report.outputs} value${report.outputs === 1 ? '' : 's'} each)`,
      block(['MAE', 'MSE', 'RMSE', 'R²'], [[figure(report.meanAbsoluteError), figure(report.meanSquaredError), figure(report.rootMeanSquaredError), figure(report.r2)]]),
      '',
      'residuals (prediction − target)',
      block(['FROM', 'TO', 'COUNT'], report.residualHistogram.map((bin) => [figure(bin.lower), figure(bin.upper), String(bin.count)])),
    ];
    return `${lines.join('\n')}\n`;
  }
  const headline = [
    `accuracy ${figure(report.accuracy)}  top-${report.topK} ${figure(report.topKAccuracy)}  log loss ${figure(report.logLoss)}  ECE ${figure(report.calibration.expectedCalibrationError)}  (${report.count} samples, ${report.classes.length} classes)`,
  ];
  if (report.binary !== undefined) headline.push(`positive class ${report.binary.positiveClass}: ROC-AUC ${figure(report.binary.rocAuc)}  PR-AUC ${figure(report.binary.prAuc)}`);
  const perClass = report.perClass.map((entry) => [shortName(entry.name), figure(entry.precision), figure(entry.recall), figure(entry.f1), String(entry.support)]);
  perClass.push(['macro avg', figure(report.macroAverage.precision), figure(report.macroAverage.recall), figure(report.macroAverage.f1), String(report.macroAverage.support)]);
  perClass.push(['weighted avg', figure(report.weightedAverage.precision), figure(report.weightedAverage.recall), figure(report.weightedAverage.f1), String(report.weightedAverage.support)]);
  const names = report.classes.map(shortName);
  const matrix = report.confusionMatrix.map((row, index) => [names[index]!, ...row.map(String)]);
  const lines = [
    ...headline,
    '',
    block(['CLASS', 'PRECISION', 'RECALL', 'F1', 'SUPPORT'], perClass),
    '',
    'confusion matrix (rows: true class, columns: predicted)',
    block(['TRUE \\ PRED', ...names], matrix),
    '',
    'reliability (top-class confidence)',
    block(['BIN', 'COUNT', 'CONFIDENCE', 'ACCURACY'], report.calibration.bins.filter((bin) => bin.count > 0).map((bin) => [`${bin.lower.toFixed(1)}–${bin.upper.toFixed(1)}`, String(bin.count), figure(bin.confidence), figure(bin.accuracy)])),
  ];
  return `${lines.join('\n')}\n`;
}
