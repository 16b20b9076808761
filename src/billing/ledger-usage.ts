/**
 * The usage ledger's totals as invoices bill them: predictions are the items answered on the tensor
 * protocols (V2, TF-Serving; a language-model request counts one item in the ledger, billed by its
 * tokens instead), tokens and training and storage from whichever protocol recorded them.
 */
import type { UsageLedger } from './ledger.ts';
import type { BillableUsage, UsageTotals } from './invoices.ts';

const tensorProtocols: ReadonlySet<string> = new Set(['v2', 'tfserving']);

export function ledgerUsageTotals(ledger: Pick<UsageLedger, 'query'>): UsageTotals {
  return async (tenantId, range) => {
    const groups = await ledger.query(tenantId, { groupBy: ['protocol'], from: range.from, to: range.to });
    const usage: BillableUsage = { predictions: 0, promptTokens: 0, completionTokens: 0, trainingWorkerSeconds: 0, storedByteHours: 0 };
    for (const group of groups) {
      if (tensorProtocols.has(group.protocol ?? '')) usage.predictions += group.items;
      usage.promptTokens += group.promptTokens;
      usage.completionTokens += group.completionTokens;
      usage.trainingWorkerSeconds += group.trainingWorkerSeconds;
      usage.storedByteHours += group.storedByteHours;
    }
    return usage;
  };
}
