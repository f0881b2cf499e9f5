// The search page. The URL holds the whole state (`mode`, `service`, `operation`, `attr`
// (repeatable `key=value`), `minDuration`, `maxDuration`, `errors`, `lookback` or
// `start`/`end`, `q`, `limit`): the form edits a draft, Search (or Enter) writes it to the
// URL, and the results are loaded from the URL.
import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, type SearchAnswer } from '../api';
import { Empty, ErrorBox, Loading, useAsync } from '../components/common';
import { Scatter } from '../components/Scatter';
import { TraceQLEditor } from '../components/TraceQLEditor';
import { formatAgo, formatMicros, formatTime, nanosToMicros, serviceColor } from '../format';
import { href, navigate, type Route } from '../router';

const LOOKBACKS: [string, string][] = [
  ['5m', 'Last 5 minutes'],
  ['15m', 'Last 15 minutes'],
  ['1h', 'Last hour'],
  ['6h', 'Last 6 hours'],
  ['24h', 'Last 24 hours'],
  ['168h', 'Last 7 days'],
  ['custom', 'Absolute range'],
];
const UNIT_NANOS: Record<string, number> = { m: 60e9, h: 3600e9 };

interface Draft {
  mode: 'filters' | 'traceql';
  service: string;
  operation: string;
  attrs: string[];
  minDuration: string;
  maxDuration: string;
  errors: boolean;
  lookback: string;
  start: string;
  end: string;
  q: string;
  limit: string;
}

function draftFrom(params: URLSearchParams): Draft {
  return {
    mode: params.get('mode') === 'traceql' ? 'traceql' : 'filters',
    service: params.get('service') ?? '',
    operation: params.get('operation') ?? '',
    attrs: params.getAll('attr'),
    minDuration: params.get('minDuration') ?? '',
    maxDuration: params.get('maxDuration') ?? '',
    errors: params.get('errors') === 'true',
    lookback: params.get('lookback') ?? (params.get('start') ? 'custom' : '1h'),
    start: params.get('start') ?? '',
    end: params.get('end') ?? '',
    q: params.get('q') ?? '',
    limit: params.get('limit') ?? '20',
  };
}

function urlOf(draft: Draft): string {
  const custom = draft.lookback === 'custom';
  return href('/search', {
    mode: draft.mode === 'traceql' ? 'traceql' : undefined,
    service: draft.mode === 'filters' ? draft.service : undefined,
    operation: draft.mode === 'filters' ? draft.operation : undefined,
    attr: draft.mode === 'filters' ? draft.attrs.filter((a) => a.includes('=')) : undefined,
    minDuration: draft.mode === 'filters' ? draft.minDuration : undefined,
    maxDuration: draft.mode === 'filters' ? draft.maxDuration : undefined,
    errors: draft.mode === 'filters' && draft.errors ? 'true' : undefined,
    q: draft.mode === 'traceql' ? draft.q : undefined,
    lookback: custom ? undefined : draft.lookback,
    start: custom ? draft.start : undefined,
    end: custom ? draft.end : undefined,
    limit: draft.limit === '20' ? undefined : draft.limit,
  });
}

/** The time range in unix nanoseconds (as decimal strings). */
function timeRange(draft: Draft): { start: string; end: string } {
  if (draft.lookback === 'custom') {
    const nanos = (local: string, fallback: number) =>
      local ? `${new Date(local).getTime()}000000` : `${fallback}000000`;
    return { start: nanos(draft.start, 0), end: nanos(draft.end, Date.now()) };
  }
  const match = /^(\d+)([mh])$/.exec(draft.lookback) ?? ['', '1', 'h'];
  const now = Date.now();
  const back = (Number(match[1]) * UNIT_NANOS[match[2]]) / 1e6;
  return { start: `${Math.floor(now - back)}000000`, end: `${now}000000` };
}

/** The API request a submitted search makes. */
function runSearch(draft: Draft, signal?: AbortSignal, cursor?: string): Promise<SearchAnswer> {
  const { start, end } = timeRange(draft);
  const query = new URLSearchParams({ start, end, limit: draft.limit || '20' });
  if (cursor) query.set('cursor', cursor);
  if (draft.mode === 'traceql') {
    query.set('q', draft.q);
    return api.traceql(query.toString(), signal);
  }
  if (draft.service) query.set('service', draft.service);
  if (draft.operation) query.set('operation', draft.operation);
  for (const attr of draft.attrs) {
    const at = attr.indexOf('=');
    if (at > 0) query.append(`attr.${attr.slice(0, at).trim()}`, attr.slice(at + 1).trim());
  }
  if (draft.minDuration) query.set('minDuration', draft.minDuration);
  if (draft.maxDuration) query.set('maxDuration', draft.maxDuration);
  if (draft.errors) query.set('status', 'error');
  return api.search(query.toString(), signal);
}

export function SearchPage({ route }: { route: Route }) {
  const submitted = useMemo(() => draftFrom(route.params), [route.params.toString()]);
  const [draft, setDraft] = useState(submitted);
  useEffect(() => setDraft(submitted), [submitted]);
  const update = (change: Partial<Draft>) => setDraft({ ...draft, ...change });
  const submit = () => navigate(urlOf(draft));

  const services = useAsync((signal) => api.services(signal), []);
  const operations = useAsync(
    (signal) => api.operations(draft.service, signal),
    draft.service ? [draft.service] : null,
  );
  const tags = useAsync((signal) => api.tags(signal), []);
  // A TraceQL search needs a query; filters search as soon as the URL has any parameter.
  const hasSearch = submitted.mode === 'traceql' ? submitted.q.trim() !== '' : route.params.toString() !== '';
  const results = useAsync((signal) => runSearch(submitted, signal), hasSearch ? [route.params.toString()] : null);

  return (
    <div class="search-page">
      <form
        class="search-form panel"
        aria-label="Search traces"
        onSubmit={(e) => {
          e.preventDefault();
          submit();
        }}
      >
        <div class="tabs" role="tablist">
          {(['filters', 'traceql'] as const).map((mode) => (
            <button
              type="button"
              role="tab"
              key={mode}
              aria-selected={draft.mode === mode}
              class={draft.mode === mode ? 'tab active' : 'tab'}
              onClick={() => update({ mode })}
            >
              {mode === 'filters' ? 'Filters' : 'TraceQL'}
            </button>
          ))}
        </div>
        {draft.mode === 'filters' ? (
          <FilterFields
            draft={draft}
            update={update}
            services={services.data?.services ?? []}
            operations={operations.data?.operations.map((o) => o.name) ?? []}
            tags={tags.data ?? {}}
          />
        ) : (
          <label class="field wide">
            <span>Query</span>
            <TraceQLEditor value={draft.q} onInput={(q) => update({ q })} onSubmit={submit} tags={tags.data ?? {}} />
          </label>
        )}
        <div class="row">
          <label class="field">
            <span>Time range</span>
            <select
              value={draft.lookback}
              onChange={(e) => update({ lookback: e.currentTarget.value })}
              aria-label="Time range"
            >
              {LOOKBACKS.map(([value, label]) => (
                <option key={value} value={value}>
                  {label}
                </option>
              ))}
            </select>
          </label>
          {draft.lookback === 'custom' && (
            <>
              <label class="field">
                <span>From</span>
                <input
                  type="datetime-local"
                  step="1"
                  value={draft.start}
                  onInput={(e) => update({ start: e.currentTarget.value })}
                />
              </label>
              <label class="field">
                <span>To</span>
                <input
                  type="datetime-local"
                  step="1"
                  value={draft.end}
                  onInput={(e) => update({ end: e.currentTarget.value })}
                />
              </label>
            </>
          )}
          <label class="field narrow">
            <span>Limit</span>
            <input
              type="number"
              min={1}
              max={1000}
              value={draft.limit}
              onInput={(e) => update({ limit: e.currentTarget.value })}
            />
          </label>
          <button type="submit" class="primary">
            Search
          </button>
        </div>
      </form>
      {!hasSearch ? (
        <Empty>Choose a service or write a TraceQL query, then Search (Enter).</Empty>
      ) : results.error ? (
        <ErrorBox title="Search failed" error={results.error} />
      ) : results.loading && !results.data ? (
        <Loading what="traces" />
      ) : results.data && results.data.traces.length === 0 ? (
        <Empty>No trace matches in this time range. Widen the range or loosen the filters.</Empty>
      ) : results.data ? (
        <Results
          key={route.params.toString()}
          first={results.data}
          loading={results.loading}
          more={(cursor) => runSearch(submitted, undefined, cursor)}
        />
      ) : null}
    </div>
  );
}

interface FilterProps {
  draft: Draft;
  update: (change: Partial<Draft>) => void;
  services: string[];
  operations: string[];
  tags: Record<string, string[] | null>;
}

/**
 * The options of a picker, with the chosen one even before the list has loaded (a deep
 * link): a select shows its first option when its value is not among them.
 */
function withChoice(options: string[], chosen: string): string[] {
  return chosen && !options.includes(chosen) ? [chosen, ...options] : options;
}

function FilterFields({ draft, update, services, operations, tags }: FilterProps) {
  const keys = useMemo(() => [...new Set([...(tags.span ?? []), ...(tags.resource ?? [])])].sort(), [tags]);
  const attrs = draft.attrs.length > 0 ? draft.attrs : [''];
  const setAttr = (i: number, value: string) => {
    const next = [...attrs];
    next[i] = value;
    update({ attrs: next });
  };
  return (
    <>
      <div class="row">
        <label class="field">
          <span>Service</span>
          <select
            aria-label="Service"
            value={draft.service}
            onChange={(e) => update({ service: e.currentTarget.value, operation: '' })}
          >
            <option value="">All services</option>
            {withChoice(services, draft.service).map((s) => (
              <option key={s} value={s} selected={s === draft.service}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <label class="field">
          <span>Operation</span>
          <select
            aria-label="Operation"
            value={draft.operation}
            disabled={!draft.service}
            onChange={(e) => update({ operation: e.currentTarget.value })}
          >
            <option value="">All operations</option>
            {withChoice(operations, draft.operation).map((o) => (
              <option key={o} value={o} selected={o === draft.operation}>
                {o}
              </option>
            ))}
          </select>
        </label>
        <label class="field narrow">
          <span>Min duration</span>
          <input
            aria-label="Min duration"
            placeholder="100ms"
            value={draft.minDuration}
            onInput={(e) => update({ minDuration: e.currentTarget.value })}
          />
        </label>
        <label class="field narrow">
          <span>Max duration</span>
          <input
            aria-label="Max duration"
            placeholder="5s"
            value={draft.maxDuration}
            onInput={(e) => update({ maxDuration: e.currentTarget.value })}
          />
        </label>
        <label class="check">
          <input type="checkbox" checked={draft.errors} onChange={(e) => update({ errors: e.currentTarget.checked })} />{' '}
          Errors only
        </label>
      </div>
      <div class="row attrs">
        {attrs.map((attr, i) => (
          <AttributeFilter
            key={i}
            value={attr}
            keys={keys}
            onInput={(value) => setAttr(i, value)}
            onRemove={() => update({ attrs: attrs.filter((_, j) => j !== i) })}
          />
        ))}
        <button type="button" class="ghost" onClick={() => update({ attrs: [...attrs, ''] })}>
          + Attribute
        </button>
      </div>
    </>
  );
}

/** One `key=value` filter: the key completed from the tags API, then its values. */
function AttributeFilter(props: { value: string; keys: string[]; onInput: (v: string) => void; onRemove: () => void }) {
  const at = props.value.indexOf('=');
  const key = at >= 0 ? props.value.slice(0, at) : props.value;
  const val = at >= 0 ? props.value.slice(at + 1) : '';
  const values = useAsync((signal) => api.tagValues(key, undefined, signal), props.keys.includes(key) ? [key] : null);
  const id = `attr-${key.replace(/\W/g, '_')}`;
  return (
    <div class="attr-filter">
      <input
        aria-label="Attribute key"
        list="attr-keys"
        placeholder="http.route"
        value={key}
        onInput={(e) => props.onInput(`${e.currentTarget.value}=${val}`)}
      />
      <span>=</span>
      <input
        aria-label="Attribute value"
        list={id}
        placeholder="value"
        value={val}
        onInput={(e) => props.onInput(`${key}=${e.currentTarget.value}`)}
      />
      <datalist id="attr-keys">
        {props.keys.map((k) => (
          <option key={k} value={k} />
        ))}
      </datalist>
      <datalist id={id}>
        {(values.data?.values ?? []).map((v) => (
          <option key={v} value={v} />
        ))}
      </datalist>
      <button type="button" class="ghost" aria-label="Remove attribute filter" onClick={props.onRemove}>
        ×
      </button>
    </div>
  );
}

interface ResultsProps {
  first: SearchAnswer;
  loading: boolean;
  /** The next page after `cursor`. */
  more: (cursor: string) => Promise<SearchAnswer>;
}

function Results({ first, loading, more }: ResultsProps) {
  const [pages, setPages] = useState<SearchAnswer[]>([]);
  const [paging, setPaging] = useState<{ loading: boolean; error: Error | null }>({ loading: false, error: null });
  const traces = [first, ...pages].flatMap((page) => page.traces);
  const cursor = (pages.length > 0 ? pages[pages.length - 1] : first).nextCursor;
  const loadMore = () => {
    if (!cursor) return;
    setPaging({ loading: true, error: null });
    more(cursor).then(
      (page) => {
        setPages([...pages, page]);
        setPaging({ loading: false, error: null });
      },
      (error: Error) => setPaging({ loading: false, error }),
    );
  };
  const [picked, setPicked] = useState<string[]>([]);
  const maxDuration = Math.max(...traces.map((t) => nanosToMicros(t.durationNanos)), 1);
  const toggle = (id: string) =>
    setPicked(picked.includes(id) ? picked.filter((p) => p !== id) : [...picked.slice(-1), id]);
  return (
    <section class={loading ? 'results stale' : 'results'} aria-label="Results">
      <div class="panel">
        <Scatter traces={traces} />
      </div>
      <div class="results-head">
        <strong>{traces.length === 1 ? '1 trace' : `${traces.length} traces`}</strong>
        <button
          type="button"
          class="ghost"
          disabled={picked.length !== 2}
          onClick={() => navigate(href('/compare', { a: picked[0], b: picked[1] }))}
        >
          Compare selected ({picked.length}/2)
        </button>
      </div>
      <ol class="trace-list">
        {traces.map((t) => {
          const duration = nanosToMicros(t.durationNanos);
          const start = nanosToMicros(t.startTimeUnixNano);
          return (
            <li key={t.traceId} class="trace-row" data-trace-id={t.traceId}>
              <input
                type="checkbox"
                aria-label={`Select ${t.traceId} to compare`}
                checked={picked.includes(t.traceId)}
                onChange={() => toggle(t.traceId)}
              />
              <a class="trace-link" href={`/trace/${t.traceId}`}>
                <div class="trace-title">
                  <span class="swatch" style={{ background: serviceColor(t.rootService) }} />
                  <span>
                    <strong>{t.rootService}</strong>: {t.rootName}
                  </span>
                  <span class="mono dim"> {t.traceId.slice(0, 12)}</span>
                </div>
                <div class="trace-meta">
                  <span class="bar-track">
                    <span
                      class={t.errorCount > 0 ? 'bar error' : 'bar'}
                      style={{ width: `${Math.max(1, (duration / maxDuration) * 100)}%` }}
                    />
                  </span>
                  <span class="duration">{formatMicros(duration)}</span>
                  <span>{t.spanCount} spans</span>
                  {t.errorCount > 0 && <span class="errors">{t.errorCount} errors</span>}
                  <span class="services">
                    {t.services.map((s) => (
                      <span key={s} class="chip" style={{ borderColor: serviceColor(s) }}>
                        {s}
                      </span>
                    ))}
                  </span>
                  <span class="dim" title={formatTime(start)}>
                    {formatAgo(start)}
                  </span>
                </div>
              </a>
            </li>
          );
        })}
      </ol>
      {paging.error && <ErrorBox title="Could not load more traces" error={paging.error} />}
      {cursor && (
        <button type="button" class="ghost more" disabled={paging.loading} onClick={loadMore}>
          {paging.loading ? 'Loading…' : 'Load more'}
        </button>
      )}
    </section>
  );
}
