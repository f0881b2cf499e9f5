// The shell: navigation, theme and the page for the current path.
import { useEffect, useState } from 'preact/hooks';
import { ComparePage } from './pages/Compare';
import { ConsistencyPage } from './pages/Consistency';
import { ProcessPage } from './pages/Process';
import { ProcessesPage } from './pages/Processes';
import { SearchPage } from './pages/Search';
import { ServicePage } from './pages/Service';
import { ServiceMapPage } from './pages/ServiceMap';
import { TracePage } from './pages/Trace';
import { onLinkClick, type Route, useRoute } from './router';

type Theme = 'light' | 'dark';

/** The theme index.html chose before the first paint (saved, else the system's). */
function initialTheme(): Theme {
  return document.documentElement.dataset.theme === 'dark' ? 'dark' : 'light';
}

function page(route: Route) {
  const path = route.path.replace(/\/+$/, '') || '/';
  const trace = /^\/trace\/([^/]+)$/.exec(path);
  if (trace) return <TracePage traceId={decodeURIComponent(trace[1])} route={route} />;
  const service = /^\/service\/([^/]+)$/.exec(path);
  if (service) return <ServicePage service={decodeURIComponent(service[1])} route={route} />;
  const process = /^\/processes\/([^/]+)$/.exec(path);
  if (process) return <ProcessPage id={decodeURIComponent(process[1])} route={route} />;
  if (path === '/processes') return <ProcessesPage route={route} />;
  if (path === '/compare') return <ComparePage route={route} />;
  if (path === '/map') return <ServiceMapPage route={route} />;
  if (path === '/consistency') return <ConsistencyPage route={route} />;
  if (path === '/' || path === '/search') return <SearchPage route={route} />;
  return <div class="state empty">No page at {route.path}.</div>;
}

const TITLES: [RegExp, string][] = [
  [/^\/trace\//, 'Trace'],
  [/^\/service\//, 'Service'],
  [/^\/processes\//, 'Process'],
  [/^\/processes/, 'Processes'],
  [/^\/compare/, 'Compare'],
  [/^\/map/, 'Service map'],
  [/^\/consistency/, 'Consistency'],
];

export function App() {
  const route = useRoute();
  const [theme, setTheme] = useState<Theme>(initialTheme);
  useEffect(() => {
    document.documentElement.dataset.theme = theme;
    localStorage.setItem('sextant-theme', theme);
  }, [theme]);
  useEffect(() => {
    const title = TITLES.find(([pattern]) => pattern.test(route.path))?.[1] ?? 'Search';
    document.title = `${title} · Sextant`;
  }, [route.path]);
  const active = (prefix: string) => (route.path.startsWith(prefix) ? 'active' : '');
  return (
    <div class="app" onClick={onLinkClick}>
      <nav class="topbar" aria-label="Main">
        <a class="brand" href="/">
          Sextant
        </a>
        <a class={route.path === '/' || route.path.startsWith('/search') ? 'active' : ''} href="/search">
          Search
        </a>
        <a class={active('/map') || active('/service')} href="/map">
          Service map
        </a>
        <a class={active('/processes')} href="/processes">
          Processes
        </a>
        <a class={active('/compare')} href="/compare">
          Compare
        </a>
        <a class={active('/consistency')} href="/consistency">
          Consistency
        </a>
        <span class="spacer" />
        <button
          type="button"
          class="ghost theme-toggle"
          aria-label={`Switch to ${theme === 'dark' ? 'light' : 'dark'} theme`}
          onClick={() => setTheme(theme === 'dark' ? 'light' : 'dark')}
        >
          {theme === 'dark' ? '☀' : '☾'}
        </button>
      </nav>
      <main>{page(route)}</main>
    </div>
  );
}
