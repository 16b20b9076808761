/** Client-side routes under /console/ with the History API; links are ordinary <a href>. */
import { useEffect, useState } from 'preact/hooks';

export const base = '/console';

export function currentPath(): string {
  const path = location.pathname.startsWith(base) ? location.pathname.slice(base.length) : '/';
  return path === '' ? '/' : path;
}

const listeners = new Set<() => void>();

export function navigate(path: string, replace = false): void {
  const url = base + path;
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  for (const listener of listeners) listener();
}

export function usePath(): string {
  const [path, setPath] = useState(currentPath());
  useEffect(() => {
    const update = () => setPath(currentPath());
    listeners.add(update);
    addEventListener('popstate', update);
    return () => {
      listeners.delete(update);
      removeEventListener('popstate', update);
    };
  }, []);
  return path;
}

/** Same-origin clicks on links under /console stay in the app (modifier clicks open tabs as usual). */
export function interceptLinks(): void {
  document.addEventListener('click', (event) => {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const anchor = (event.target as Element | null)?.closest('a');
    if (anchor === null || anchor === undefined || anchor.target !== '' || anchor.hasAttribute('download')) return;
    const url = new URL(anchor.href, location.href);
    if (url.origin !== location.origin || !url.pathname.startsWith(base)) return;
    // In-page anchors (the skip link) keep the browser's own behaviour: scroll and focus.
    if (url.hash !== '' && url.pathname === location.pathname) return;
    event.preventDefault();
    navigate(url.pathname.slice(base.length) || '/');
  });
}

export function href(path: string): string {
  return base + path;
}
