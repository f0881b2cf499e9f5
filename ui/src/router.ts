// A small router over the History API: the path names the page, the query string holds the
// page's whole state, so every view is a link that survives a reload.
import { useEffect, useState } from 'preact/hooks';

export interface Route {
  path: string;
  params: URLSearchParams;
}

const listeners = new Set<() => void>();

function current(): Route {
  return { path: location.pathname, params: new URLSearchParams(location.search) };
}

/** Goes to `url` (path and query); `replace` keeps the history entry (typing in a form). */
export function navigate(url: string, replace = false): void {
  if (url === location.pathname + location.search) return;
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  listeners.forEach((listener) => listener());
}

window.addEventListener('popstate', () => listeners.forEach((listener) => listener()));

export function useRoute(): Route {
  const [route, setRoute] = useState(current);
  useEffect(() => {
    const listener = () => setRoute(current());
    listeners.add(listener);
    return () => void listeners.delete(listener);
  }, []);
  return route;
}

/** `path?params`, leaving out empty parameters. */
export function href(path: string, params: Record<string, string | string[] | undefined> = {}): string {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    for (const item of Array.isArray(value) ? value : [value]) {
      if (item !== undefined && item !== '') query.append(key, item);
    }
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

/** The route's URL with `change` applied to its parameters (an empty value removes one). */
export function withParams(route: Route, change: Record<string, string | undefined>): string {
  const next = new URLSearchParams(route.params);
  for (const [key, value] of Object.entries(change)) {
    if (value) next.set(key, value);
    else next.delete(key);
  }
  const text = next.toString();
  return text ? `${route.path}?${text}` : route.path;
}

/** Follows same-origin links without reloading the page (modifier clicks open tabs as usual). */
export function onLinkClick(event: MouseEvent): void {
  const anchor = (event.target as Element).closest('a');
  if (!anchor || anchor.target || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
  const url = new URL(anchor.href);
  if (url.origin !== location.origin || anchor.hasAttribute('download')) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
}
