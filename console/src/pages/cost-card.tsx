/** A version's cost card (docs/models.md, "Cost cards"): size, FLOPs, memory, measured speed and price. */
import { useState } from 'preact/hooks';
import { api, describeError } from '../api.ts';
import { formatBytes, formatNumber, formatTime } from '../format.ts';
import { ErrorNotice, useApi } from '../ui.tsx';

interface CostCardData {
  parameters: number | null;
  fileBytes: number | null;
  flopsPerItem: number | null;
  flopsComplete: boolean;
  calibration: { p50Milliseconds: number; itemsPerSecond: number; throughputBatch: number; runs: number; measuredAt: string } | null;
  tokensPerSecond: number | null;
  kvCacheBytesPerToken: number | null;
  memoryBytes: number | null;
  measuredMemoryBytes: number | null;
  pricePer1000Predictions: { plan: string; currency: string; micros: number; includedPredictions: number } | null;
  priceNote?: string | null;
}

function Fact({ name, value, id }: { name: string; value: string; id?: string }) {
  return (
    <div>
      <dt>{name}</dt>
      <dd {...(id === undefined ? {} : { id })}>{value}</dd>
    </div>
  );
}

export function CostCard({ model, version, canCalibrate }: { model: string; version: number; canCalibrate: boolean }) {
  const path = `/api/v1/models/${encodeURIComponent(model)}/versions/${version}/cost`;
  const card = useApi<CostCardData>(path);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>(undefined);
  const calibrate = async () => {
    setBusy(true);
    setError(undefined);
    try {
      await api(`${path}/calibrate`, { method: 'POST' });
      card.reload();
    } catch (failure) {
      setError(describeError(failure));
    } finally {
      setBusy(false);
    }
  };
  if (card.error !== undefined) return <p class="muted small">No cost card: {card.error}</p>;
  const data = card.data;
  if (data === undefined) return null;
  const price = data.pricePer1000Predictions;
  return (
    <div class="cost-card" id={`cost-${version}`}>
      <h4>Cost card</h4>
      <dl class="facts">
        {data.parameters !== null && <Fact name="parameters" value={data.parameters.toLocaleString('en')} id={`cost-${version}-parameters`} />}
        {data.fileBytes !== null && <Fact name="size" value={formatBytes(data.fileBytes)} />}
        {data.flopsPerItem !== null && <Fact name="FLOPs / item" value={`${formatNumber(data.flopsPerItem)}${data.flopsComplete ? '' : ' (partial)'}`} />}
        {(data.measuredMemoryBytes ?? data.memoryBytes) !== null && <Fact name={data.measuredMemoryBytes !== null ? 'memory (measured)' : 'memory (estimated)'} value={formatBytes((data.measuredMemoryBytes ?? data.memoryBytes)!)} />}
        {data.calibration !== null && (
          <>
            <Fact name="p50 latency" value={`${formatNumber(data.calibration.p50Milliseconds, 3)} ms`} />
            <Fact name={`items/s (batch ${data.calibration.throughputBatch})`} value={formatNumber(Math.round(data.calibration.itemsPerSecond))} />
          </>
        )}
        {data.tokensPerSecond !== null && <Fact name="tokens/s" value={formatNumber(data.tokensPerSecond, 3)} />}
        {data.kvCacheBytesPerToken !== null && <Fact name="KV cache / token" value={formatBytes(data.kvCacheBytesPerToken)} />}
        <Fact
          name="price / 1,000 predictions"
          value={price === null ? (data.priceNote ?? 'no plan') : `${formatNumber(price.micros / 1_000_000)} ${price.currency} (${price.plan}, ${price.includedPredictions.toLocaleString('en')} included)`}
        />
      </dl>
      <div class="actions">
        {data.calibration === null ? <span class="muted small">Not calibrated: latency and throughput are measured on demand.</span> : <span class="muted small">Measured {formatTime(data.calibration.measuredAt)}.</span>}
        {canCalibrate && (
          <button type="button" class="secondary" onClick={calibrate} disabled={busy}>
            {busy ? 'Measuring…' : data.calibration === null ? 'Calibrate' : 'Measure again'}
          </button>
        )}
      </div>
      <ErrorNotice>{error}</ErrorNotice>
    </div>
  );
}
