/** Audit: the hash-chained log, a page at a time, and a button that verifies the chain. */
import { useState } from 'preact/hooks';
import { api, describeError } from '../api.ts';
import { formatTime, shortId } from '../format.ts';
import type { AuditEntry, Me } from '../types.ts';
import { ErrorNotice, Loading, PageHeader, useApi } from '../ui.tsx';

const pageSize = 50;

type Verification = { ok: true; count: number } | { ok: false; position: number; seq: number; reason: string; message: string };

export function AuditPage({ me }: { me: Me }) {
  const allowed = me.permissions.includes('audit:read');
  // Pages are cursors: the seq after which each page starts.
  const [cursors, setCursors] = useState<number[]>([0]);
  const after = cursors[cursors.length - 1]!;
  const entries = useApi<{ entries: AuditEntry[] }>(allowed ? `/api/v1/audit?after=${after}&limit=${pageSize}` : undefined);
  const [verification, setVerification] = useState<Verification | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [verifying, setVerifying] = useState(false);
  if (!allowed) {
    return (
      <section>
        <PageHeader title="Audit log" />
        <p class="notice">This key's role ({me.key.role}) cannot read the audit log; an admin key can.</p>
      </section>
    );
  }
  const verify = async () => {
    setVerifying(true);
    setError(undefined);
    try {
      setVerification(await api<Verification>('/api/v1/audit/verify'));
    } catch (failure) {
      setError(describeError(failure));
    } finally {
      setVerifying(false);
    }
  };
  const list = entries.data?.entries ?? [];
  const page = cursors.length;
  return (
    <section>
      <PageHeader title="Audit log">
        <button type="button" onClick={verify} disabled={verifying} id="verify-chain">
          {verifying ? 'Verifying…' : 'Verify chain'}
        </button>
      </PageHeader>
      {verification !== undefined &&
        (verification.ok ? (
          <p class="notice success" role="status" id="verify-result">
            The chain is intact: {verification.count.toLocaleString('en')} entries, each hash matching the one before.
          </p>
        ) : (
          <p class="notice error" role="alert" id="verify-result">
            The chain is broken at entry {verification.seq} ({verification.reason}): {verification.message}
          </p>
        ))}
      <ErrorNotice>{entries.error ?? error}</ErrorNotice>
      {entries.loading && entries.data === undefined && <Loading what="audit entries" />}
      <div class="table-wrap">
        <table id="audit-table" class="compact">
          <caption class="visually-hidden">Audit entries, oldest first</caption>
          <thead>
            <tr>
              <th scope="col">#</th>
              <th scope="col">Time</th>
              <th scope="col">Action</th>
              <th scope="col">Resource</th>
              <th scope="col">Outcome</th>
              <th scope="col">Key</th>
              <th scope="col">IP</th>
            </tr>
          </thead>
          <tbody>
            {list.map((entry) => (
              <tr key={entry.seq}>
                <td class="number">{entry.seq}</td>
                <td>{formatTime(entry.at)}</td>
                <td>
                  <code>{entry.action}</code>
                </td>
                <td class="wrap">{entry.resource ?? '—'}</td>
                <td>
                  <span class={`badge outcome-${entry.outcome}`}>{entry.outcome}</span>
                </td>
                <td>
                  <code>{entry.keyId === null ? '—' : shortId(entry.keyId)}</code>
                </td>
                <td>{entry.ip ?? '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <nav class="pager" aria-label="Audit pages">
        <button type="button" class="secondary" disabled={page === 1} onClick={() => setCursors(cursors.slice(0, -1))}>
          Previous
        </button>
        <span>Page {page}</span>
        <button type="button" class="secondary" disabled={list.length < pageSize} onClick={() => setCursors([...cursors, list[list.length - 1]!.seq])}>
          Next
        </button>
      </nav>
    </section>
  );
}
