import type { CostCard } from '../sdk/types.ts';
import { bytes } from './format.ts';

/** Integer micro-units as a decimal amount (250000 → "0.25"), without going through a float. */
export function microsAsDecimal(micros: number): string {
  const whole = Math.floor(micros / 1_000_000);
  const fraction = String(micros % 1_000_000).padStart(6, '0').replace(/0+$/, '');
  return fraction === '' ? String(whole) : `${whole}.${fraction}`;
}

/** A version's cost card as aligned lines (`models cost`, and the latest version in `models show`). */
export function costCardLines(card: CostCard): string[] {
  const calibration = card.calibration;
  return [
    `model          ${card.model}@${card.version} (${card.format})`,
    `parameters     ${card.parameters}`,
    `file           ${bytes(card.fileBytes)}`,
    `FLOPs/item     ${card.flopsPerItem === null ? '-' : `${card.flopsPerItem}${card.flopsComplete ? '' : ` (partial: ${card.uncountedNodes.length} nodes not counted)`}`}`,
    `latency p50    ${calibration === null ? 'not calibrated (--calibrate)' : `${calibration.p50Milliseconds} ms (batch 1)`}`,
    `items/s        ${calibration === null ? '-' : `${calibration.itemsPerSecond} (batch ${calibration.throughputBatch})`}`,
    ...(card.format === 'gguf'
      ? [
          `tokens/s       ${card.tokensPerSecond === null ? 'not calibrated (--calibrate)' : String(card.tokensPerSecond)}`,
          `KV cache/token ${card.kvCacheBytesPerToken === null ? '-' : bytes(card.kvCacheBytesPerToken)}`,
        ]
      : []),
    `memory         ${card.memoryBytes === null ? 'not loaded' : bytes(card.memoryBytes)}`,
    `price/1000     ${card.pricePer1000Predictions === null ? `- (${card.priceNote})` : `${microsAsDecimal(card.pricePer1000Predictions.micros)} ${card.pricePer1000Predictions.currency} (plan ${card.pricePer1000Predictions.plan}, beyond ${card.pricePer1000Predictions.includedPredictions} included a month)`}`,
  ];
}
