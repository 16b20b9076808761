/** The console's shell: login with an API key, navigation, and the page for the current path. */
import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, describeError, forgetKey, setUnauthorizedHandler, storedKey, storeKey } from './api.ts';
import { href, interceptLinks, navigate, usePath } from './router.ts';
import type { Me } from './types.ts';
import { PageErrorBoundary } from './ui.tsx';
import { ModelsPage, ModelPage } from './pages/models.tsx';
import { JobsPage, JobPage, NewJobPage } from './pages/jobs.tsx';
import { DatasetsPage } from './pages/datasets.tsx';
import { TryPage } from './pages/try.tsx';
import { UsagePage } from './pages/usage.tsx';
import { KeysPage } from './pages/keys.tsx';
import { AuditPage } from './pages/audit.tsx';
import './styles.css';

const sections = [
  { path: '/models', label: 'Models' },
  { path: '/jobs', label: 'Training jobs' },
  { path: '/datasets', label: 'Datasets' },
  { path: '/try', label: 'Try it' },
  { path: '/usage', label: 'Usage' },
  { path: '/keys', label: 'Keys' },
  { path: '/audit', label: 'Audit' },
];

function Login({ onLogin, reason }: { onLogin: (me: Me) => void; reason: string | undefined }) {
  const [key, setKey] = useState('');
  const [error, setError] = useState<string | undefined>(reason);
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const me = await api<Me>('/api/v1/me', { key: key.trim() });
      storeKey(key.trim());
      setKey('');
      onLogin(me);
    } catch (failure) {
      setError(describeError(failure));
    } finally {
      setBusy(false);
    }
  };
  useEffect(() => {
    document.title = 'Sign in · aiaas console';
  }, []);
  return (
    <main class="login" id="main">
      <form class="card login-card" onSubmit={submit} aria-labelledby="login-title">
        <h1 id="login-title">
          <span class="logo" aria-hidden="true">
            ai
          </span>
          aiaas console
        </h1>
        <p class="muted">Sign in with an API key. It is kept in this tab only (sessionStorage) and sent as a Bearer header.</p>
        <label for="api-key">API key</label>
        <input id="api-key" name="api-key" type="password" autocomplete="off" spellcheck={false} required placeholder="aiaas_…" value={key} onInput={(event) => setKey(event.currentTarget.value)} />
        {error !== undefined && (
          <p class="notice error" role="alert" id="login-error">
            {error}
          </p>
        )}
        <button type="submit" disabled={busy || key.trim() === ''}>
          {busy ? 'Checking…' : 'Sign in'}
        </button>
        <p class="muted small">
          No key? The server prints the first admin key when it starts on a new data directory; see <code>aiaas keys create</code>.
        </p>
      </form>
    </main>
  );
}

function Page({ path, me }: { path: string; me: Me }) {
  const parts = path.split('/').filter((part) => part !== '').map(decodeURIComponent);
  switch (parts[0]) {
    case 'models':
      return parts[1] === undefined ? <ModelsPage /> : <ModelPage name={parts[1]} me={me} />;
    case 'jobs':
      if (parts[1] === 'new') return <NewJobPage />;
      return parts[1] === undefined ? <JobsPage /> : <JobPage id={parts[1]} />;
    case 'datasets':
      return <DatasetsPage />;
    case 'try':
      return <TryPage model={parts[1]} version={parts[2]} />;
    case 'usage':
      return <UsagePage />;
    case 'keys':
      return <KeysPage me={me} />;
    case 'audit':
      return <AuditPage me={me} />;
    default:
      return (
        <section>
          <h1>Not found</h1>
          <p>
            There is no console page at this address. Go to <a href={href('/models')}>Models</a>.
          </p>
        </section>
      );
  }
}

function App() {
  const path = usePath();
  const [me, setMe] = useState<Me | undefined>(undefined);
  const [checking, setChecking] = useState(storedKey() !== undefined);
  const [reason, setReason] = useState<string | undefined>(undefined);
  const [menuOpen, setMenuOpen] = useState(false);

  useEffect(() => {
    setUnauthorizedHandler(() => {
      forgetKey();
      setMe(undefined);
      setReason('The server refused the key (expired or revoked). Sign in again.');
    });
    if (storedKey() === undefined) return;
    api<Me>('/api/v1/me')
      .then(setMe)
      .catch(() => forgetKey())
      .finally(() => setChecking(false));
  }, []);

  const shownPath = useRef<string | undefined>(undefined);
  useEffect(() => {
    if (me !== undefined && (path === '/' || path === '')) navigate('/models', true);
    setMenuOpen(false);
    // After a client-side navigation (not the first page), focus goes to the new page's heading so
    // screen readers announce it, as a full page load would.
    if (shownPath.current !== undefined && shownPath.current !== path) requestAnimationFrame(() => document.getElementById('page-title')?.focus({ preventScroll: true }));
    if (me !== undefined) shownPath.current = path;
  }, [path, me]);

  if (checking) return <p class="muted center">Checking the stored key…</p>;
  if (me === undefined) return <Login onLogin={(identity) => (setReason(undefined), setMe(identity))} reason={reason} />;

  const signOut = () => {
    forgetKey();
    setMe(undefined);
  };
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="topbar">
        <a class="brand" href={href('/models')}>
          <span class="logo" aria-hidden="true">
            ai
          </span>
          aiaas
        </a>
        <button type="button" class="menu-toggle secondary" aria-expanded={menuOpen} aria-controls="nav" onClick={() => setMenuOpen(!menuOpen)}>
          Menu
        </button>
        <nav id="nav" class={menuOpen ? 'open' : ''} aria-label="Sections">
          <ul>
            {sections.map((section) => (
              <li key={section.path}>
                <a href={href(section.path)} aria-current={path.startsWith(section.path) ? 'page' : undefined}>
                  {section.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <div class="identity">
          <span class="who" title={`key ${me.key.prefix}…, role ${me.key.role}`}>
            {me.tenant.name} · <span class="role">{me.key.role}</span>
          </span>
          <button type="button" class="secondary" onClick={signOut}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        <PageErrorBoundary path={path}>
          <Page path={path} me={me} />
        </PageErrorBoundary>
      </main>
    </>
  );
}

interceptLinks();
render(<App />, document.getElementById('app')!);
