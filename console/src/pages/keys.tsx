/** API keys: create (the secret is shown once, with a copy button), revoke, and when each was last used. */
import { useState } from 'preact/hooks';
import { api, describeError } from '../api.ts';
import { formatTime } from '../format.ts';
import type { ApiKey, Me } from '../types.ts';
import { CopyButton, ErrorNotice, Loading, PageHeader, useApi } from '../ui.tsx';

const roles = [
  { value: 'inference', description: 'calls models only (for applications)' },
  { value: 'viewer', description: 'reads metadata, no inference' },
  { value: 'developer', description: 'datasets, models, jobs, inference' },
  { value: 'admin', description: 'everything, including keys and audit' },
];

export function KeysPage({ me }: { me: Me }) {
  const allowed = me.permissions.includes('keys:manage');
  const keys = useApi<{ keys: ApiKey[] }>(allowed ? '/api/v1/keys' : undefined);
  const [name, setName] = useState('');
  const [role, setRole] = useState('inference');
  const [models, setModels] = useState('');
  const [created, setCreated] = useState<ApiKey | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  if (!allowed) {
    return (
      <section>
        <PageHeader title="API keys" />
        <p class="notice">This key's role ({me.key.role}) cannot manage keys; an admin key can.</p>
      </section>
    );
  }
  const create = async (event: Event) => {
    event.preventDefault();
    setError(undefined);
    try {
      const allowedModels = models
        .split(',')
        .map((entry) => entry.trim())
        .filter((entry) => entry !== '');
      const key = await api<ApiKey>('/api/v1/keys', { method: 'POST', body: { name: name.trim(), role, ...(allowedModels.length === 0 ? {} : { allowedModels }) } });
      setCreated(key);
      setName('');
      keys.reload();
    } catch (failure) {
      setError(describeError(failure));
    }
  };
  const revoke = async (key: ApiKey) => {
    if (!confirm(`Revoke ${key.name} (${key.prefix}…)? Clients using it are refused from their next request.`)) return;
    setError(undefined);
    try {
      await api(`/api/v1/keys/${key.id}`, { method: 'DELETE' });
      keys.reload();
    } catch (failure) {
      setError(describeError(failure));
    }
  };
  return (
    <section>
      <PageHeader title="API keys" />
      <form class="card" onSubmit={create} id="key-form" aria-labelledby="key-form-title">
        <h2 id="key-form-title">Create a key</h2>
        <div class="form-grid">
          <div class="field">
            <label for="key-name">Name</label>
            <input id="key-name" required maxLength={128} placeholder="e.g. web-app" value={name} onInput={(event) => setName(event.currentTarget.value)} />
          </div>
          <div class="field">
            <label for="key-role">Role</label>
            <select id="key-role" value={role} onChange={(event) => setRole(event.currentTarget.value)}>
              {roles.map((entry) => (
                <option key={entry.value} value={entry.value}>
                  {entry.value}: {entry.description}
                </option>
              ))}
            </select>
          </div>
          <div class="field">
            <label for="key-models">Only these models (optional)</label>
            <input id="key-models" placeholder="mnist, iris" value={models} onInput={(event) => setModels(event.currentTarget.value)} aria-describedby="key-models-hint" />
            <span class="hint" id="key-models-hint">
              Comma-separated; empty means every model of the tenant.
            </span>
          </div>
        </div>
        <button type="submit" disabled={name.trim() === ''}>
          Create key
        </button>
      </form>
      {created?.key !== undefined && (
        <div class="card secret" role="status" id="new-key">
          <h2>New key {created.name}</h2>
          <p>Copy it now: it is shown only once and cannot be read back.</p>
          <div class="secret-row">
            <code id="new-key-secret">{created.key}</code>
            <CopyButton text={created.key} />
          </div>
          <button type="button" class="secondary" onClick={() => setCreated(undefined)}>
            I have stored it
          </button>
        </div>
      )}
      <ErrorNotice>{keys.error ?? error}</ErrorNotice>
      {keys.loading && keys.data === undefined && <Loading what="keys" />}
      {keys.data !== undefined && (
        <div class="table-wrap">
          <table id="keys-table">
            <caption class="visually-hidden">API keys</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Prefix</th>
                <th scope="col">Role</th>
                <th scope="col">Models</th>
                <th scope="col">Created</th>
                <th scope="col">Last used</th>
                <th scope="col">State</th>
                <th scope="col">
                  <span class="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {keys.data.keys.map((key) => (
                <tr key={key.id} data-key={key.name} data-state={key.revokedAt === null ? 'active' : 'revoked'}>
                  <th scope="row">
                    {key.name}
                    {key.id === me.key.id && <span class="chip">this session</span>}
                  </th>
                  <td>
                    <code>{key.prefix}…</code>
                  </td>
                  <td>{key.role}</td>
                  <td>{key.allowedModels === null ? 'all' : key.allowedModels.join(', ')}</td>
                  <td>{formatTime(key.createdAt)}</td>
                  <td>{key.lastUsedAt === null ? 'never' : formatTime(key.lastUsedAt)}</td>
                  <td>
                    {key.revokedAt !== null ? (
                      <span class="badge status-cancelled">revoked</span>
                    ) : key.expiresAt !== null && new Date(key.expiresAt) < new Date() ? (
                      <span class="badge status-failed">expired</span>
                    ) : (
                      <span class="badge status-succeeded">active</span>
                    )}
                  </td>
                  <td>
                    {key.revokedAt === null && key.id !== me.key.id && (
                      <button type="button" class="secondary danger" onClick={() => revoke(key)} aria-label={`Revoke key ${key.name}`}>
                        Revoke
                      </button>
                    )}
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
