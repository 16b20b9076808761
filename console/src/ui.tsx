/** Shared pieces: a data-loading hook, error and status notices, a copy button, page headings. */
import { Component, type ComponentChildren } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { api, describeError } from './api.ts';

export interface Loaded<T> {
  data: T | undefined;
  error: string | undefined;
  loading: boolean;
  reload: () => void;
}

/** GETs `path` (again when it changes, or on reload()); undefined path loads nothing. */
export function useApi<T>(path: string | undefined): Loaded<T> {
  const [state, setState] = useState<{ data: T | undefined; error: string | undefined; loading: boolean }>({ data: undefined, error: undefined, loading: path !== undefined });
  const [generation, setGeneration] = useState(0);
  useEffect(() => {
    if (path === undefined) return;
    const controller = new AbortController();
    setState((previous) => ({ ...previous, loading: true }));
    api<T>(path, { signal: controller.signal })
      .then((data) => setState({ data, error: undefined, loading: false }))
      .catch((error: unknown) => {
        if (!controller.signal.aborted) setState({ data: undefined, error: describeError(error), loading: false });
      });
    return () => controller.abort();
  }, [path, generation]);
  const reload = useCallback(() => setGeneration((value) => value + 1), []);
  return { ...state, reload };
}

export function ErrorNotice({ children }: { children: ComponentChildren }) {
  if (children === undefined || children === null || children === '') return null;
  return (
    <p class="notice error" role="alert">
      {children}
    </p>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p class="muted" role="status" aria-live="polite">
      Loading {what}…
    </p>
  );
}

export function PageHeader({ title, children }: { title: string; children?: ComponentChildren }) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    document.title = `${title} · aiaas console`;
  }, [title]);
  return (
    <header class="page-header">
      <h1 ref={heading} tabIndex={-1} id="page-title">
        {title}
      </h1>
      {children !== undefined && <div class="actions">{children}</div>}
    </header>
  );
}

export function CopyButton({ text, label = 'Copy' }: { text: string; label?: string }) {
  const [copied, setCopied] = useState<'idle' | 'done' | 'failed'>('idle');
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
      setCopied('done');
    } catch {
      setCopied('failed');
    }
  };
  return (
    <button type="button" class="secondary" onClick={copy}>
      {copied === 'done' ? 'Copied' : copied === 'failed' ? 'Select and copy by hand' : label}
    </button>
  );
}

export function StatusBadge({ status }: { status: string }) {
  return <span class={`badge status-${status}`}>{status}</span>;
}

export function EmptyState({ children }: { children: ComponentChildren }) {
  return <p class="empty">{children}</p>;
}

/** Keeps one page's rendering error from freezing the whole console: it says what broke instead. */
export class PageErrorBoundary extends Component<{ children: ComponentChildren; path: string }, { error: string | undefined; path: string }> {
  override state = { error: undefined as string | undefined, path: this.props.path };

  static override getDerivedStateFromError(error: unknown) {
    return { error: error instanceof Error ? error.message : String(error) };
  }

  override componentDidUpdate() {
    if (this.state.error !== undefined && this.state.path !== this.props.path) this.setState({ error: undefined, path: this.props.path });
  }

  override render() {
    if (this.state.error === undefined) return this.props.children;
    return (
      <p class="notice error" role="alert">
        This page failed to render: {this.state.error}. Reload, or report it with what you did.
      </p>
    );
  }
}
