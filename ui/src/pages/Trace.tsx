// The trace page: header facts, minimap and zoom, the waterfall (or flame graph), search
// within the trace, the span panel, the clock-skew warning and the JSON download. The URL
// keeps the selected span (`span`), the view (`view=flame`), the search (`find`) and whether
// skew is corrected (`skew=raw` shows the timestamps as received). The header links the
// trace's business processes and lists its linked and backlinked traces. Once the trace is
// shown, its consistency findings (stale reads, missed writes, conflicts) mark their spans.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, ApiError, type OtlpTrace } from '../api';
import { CopyButton, ErrorBox, Loading, useAsync } from '../components/common';
import { formatMicros, formatTime, serviceColor } from '../format';
import { href, navigate, type Route } from '../router';
import { ConsistencySummary, loadTraceConsistency } from '../trace/Consistency';
import { FlameGraph } from '../trace/FlameGraph';
import { Minimap } from '../trace/Minimap';
import { buildTrace, findSpans, type TraceModel, traceProcessIds, visibleSpans } from '../trace/model';
import { SpanPanel } from '../trace/SpanPanel';
import { ProcessChips, TraceLinks } from '../trace/TraceLinks';
import { Waterfall } from '../trace/Waterfall';

export function TracePage({ traceId, route }: { traceId: string; route: Route }) {
  const raw = useAsync((signal) => api.trace(traceId, signal), [traceId]);
  const adjust = route.params.get('skew') !== 'raw';
  const model = useMemo(() => (raw.data ? buildTrace(raw.data, adjust) : null), [raw.data, adjust]);
  if (raw.error) {
    return (
      <ErrorBox
        title={
          raw.error instanceof ApiError && raw.error.status === 404
            ? `Trace ${traceId} not found`
            : 'Could not load the trace'
        }
        error={raw.error}
      />
    );
  }
  if (!model || !raw.data) return <Loading what={`trace ${traceId}`} />;
  return <TraceView key={`${model.traceId}-${adjust}`} model={model} raw={raw.data} route={route} />;
}

function TraceView({ model, raw, route }: { model: TraceModel; raw: OtlpTrace; route: Route }) {
  const params = route.params;
  const setParam = (key: string, value: string | undefined) => {
    const next = new URLSearchParams(params);
    if (value) next.set(key, value);
    else next.delete(key);
    navigate(`${location.pathname}${next.toString() ? `?${next}` : ''}`, true);
  };
  const selectedId = params.get('span');
  const selected = selectedId ? (model.spans.find((s) => s.spanId === selectedId)?.index ?? null) : null;
  const flame = params.get('view') === 'flame';
  const [collapsed, setCollapsed] = useState<Set<number>>(new Set());
  const [view, setView] = useState<[number, number]>([0, model.durationMicros]);
  const [find, setFind] = useState(params.get('find') ?? '');
  const [matchAt, setMatchAt] = useState(0);
  const [reveal, setReveal] = useState<number | null>(selected);
  const findInput = useRef<HTMLInputElement>(null);

  const rows = useMemo(() => visibleSpans(model, collapsed), [model, collapsed]);
  const matchList = useMemo(() => findSpans(model, find), [model, find]);
  const matches = useMemo(() => new Set(matchList), [matchList]);

  const select = (index: number | null) => {
    setParam('span', index === null ? undefined : model.spans[index].spanId);
    setReveal(index);
  };
  const toggle = (index: number) => {
    const next = new Set(collapsed);
    if (next.has(index)) next.delete(index);
    else next.add(index);
    setCollapsed(next);
  };
  /** Expands the ancestors of `index` so it is visible, then selects it. */
  const show = (index: number) => {
    const next = new Set(collapsed);
    for (let node = model.spans[index].parent; node; node = node.parent) next.delete(node.index);
    setCollapsed(next);
    select(index);
  };
  useEffect(() => {
    if (selected !== null) show(selected);
  }, []);

  const onKeyDown = (event: KeyboardEvent) => {
    if ((event.target as HTMLElement).tagName === 'INPUT') return;
    const position = selected === null ? -1 : rows.findIndex((r) => r.index === selected);
    const current = selected === null ? null : model.spans[selected];
    switch (event.key) {
      case 'ArrowDown':
      case 'j':
        if (position + 1 < rows.length) select(rows[position + 1].index);
        break;
      case 'ArrowUp':
      case 'k':
        if (position > 0) select(rows[position - 1].index);
        break;
      case 'ArrowLeft':
        if (current && current.children.length > 0 && !collapsed.has(current.index)) toggle(current.index);
        else if (current?.parent) select(current.parent.index);
        break;
      case 'ArrowRight':
        if (current && collapsed.has(current.index)) toggle(current.index);
        break;
      case 'Escape':
        select(null);
        break;
      case '/':
        findInput.current?.focus();
        break;
      default:
        return;
    }
    event.preventDefault();
  };

  const root = model.roots[0];
  const download = () => {
    const blob = new Blob([JSON.stringify(raw, null, 2)], { type: 'application/json' });
    const link = document.createElement('a');
    link.href = URL.createObjectURL(blob);
    link.download = `trace-${model.traceId}.json`;
    link.click();
    // Revoked once the browser has started reading it.
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  };
  const zoomed = view[0] > 0 || view[1] < model.durationMicros;
  const processIds = useMemo(() => traceProcessIds(model), [model]);
  const consistency = useAsync((signal) => loadTraceConsistency(model.traceId, signal), [model.traceId]);
  const findings = consistency.data?.bySpan;
  /** Shows a span of this trace (answers false for another trace's, left to the link). */
  const showSpan = (traceId: string, spanId: string) => {
    const found = traceId === model.traceId ? model.spans.find((s) => s.spanId === spanId) : undefined;
    if (found) show(found.index);
    return found !== undefined;
  };

  return (
    <div class="trace-page" onKeyDown={onKeyDown}>
      <header class="trace-header panel">
        <h1>
          <span class="service-mark" style={{ background: serviceColor(root.service) }} />
          {root.service}: {root.name}
        </h1>
        <dl class="trace-facts">
          <div>
            <dt>Trace ID</dt>
            <dd class="mono">
              {model.traceId} <CopyButton text={model.traceId} label="trace ID" />
            </dd>
          </div>
          <div>
            <dt>Start</dt>
            <dd>{formatTime(model.startMicros)}</dd>
          </div>
          <div>
            <dt>Duration</dt>
            <dd data-testid="trace-duration">{formatMicros(model.durationMicros)}</dd>
          </div>
          <div>
            <dt>Services</dt>
            <dd>{model.services.length}</dd>
          </div>
          <div>
            <dt>Depth</dt>
            <dd>{model.depth}</dd>
          </div>
          <div>
            <dt>Spans</dt>
            <dd data-testid="span-count">{model.spans.length}</dd>
          </div>
          <div>
            <dt>Errors</dt>
            <dd class={model.errorCount > 0 ? 'status-error' : ''}>{model.errorCount}</dd>
          </div>
        </dl>
        <div class="services legend">
          {model.services.map((s) => (
            <a key={s} class="chip" style={{ borderColor: serviceColor(s) }} href={`/service/${encodeURIComponent(s)}`}>
              {s}
            </a>
          ))}
        </div>
        <ProcessChips ids={processIds} />
        <TraceLinks traceId={model.traceId} />
        {consistency.data && (
          <ConsistencySummary
            traceId={model.traceId}
            found={consistency.data}
            onSelect={(spanId) => showSpan(model.traceId, spanId)}
          />
        )}
        {consistency.error && <p class="dim">Consistency findings unavailable: {consistency.error.message}</p>}
        {model.skewedCount > 0 && (
          <div class="warning" role="status">
            Clock skew: {model.skewedCount} span{model.skewedCount > 1 ? 's' : ''} of another service started before or
            ended after their parent.{' '}
            {model.skewAdjusted ? 'Shown shifted inside their parents. ' : 'Shown as received. '}
            <button
              type="button"
              class="link-button"
              onClick={() => setParam('skew', model.skewAdjusted ? 'raw' : undefined)}
            >
              {model.skewAdjusted ? 'Show as received' : 'Adjust for skew'}
            </button>
          </div>
        )}
        <div class="toolbar">
          <div class="tabs" role="tablist">
            <button
              type="button"
              role="tab"
              aria-selected={!flame}
              class={!flame ? 'tab active' : 'tab'}
              onClick={() => setParam('view', undefined)}
            >
              Waterfall
            </button>
            <button
              type="button"
              role="tab"
              aria-selected={flame}
              class={flame ? 'tab active' : 'tab'}
              onClick={() => setParam('view', 'flame')}
            >
              Flame graph
            </button>
          </div>
          <input
            ref={findInput}
            class="find"
            type="search"
            aria-label="Find in trace"
            placeholder="Find spans (/)"
            value={find}
            onInput={(e) => {
              setFind(e.currentTarget.value);
              setMatchAt(0);
            }}
            onKeyDown={(e) => {
              // Enter shows the next match, Shift+Enter the previous one.
              const count = matchList.length;
              if (e.key === 'Enter' && count > 0) {
                const at = e.shiftKey ? (matchAt - 2 + 2 * count) % count : matchAt % count;
                show(matchList[at]);
                setMatchAt(at + 1);
              }
            }}
          />
          {find && (
            <span class="dim" data-testid="match-count">
              {matchList.length} matches
            </span>
          )}
          <span class="legend-critical">critical path</span>
          {zoomed && (
            <button type="button" class="ghost" onClick={() => setView([0, model.durationMicros])}>
              Reset zoom
            </button>
          )}
          <button type="button" class="ghost" onClick={() => setCollapsed(new Set())}>
            Expand all
          </button>
          <a class="button ghost" href={href('/compare', { a: model.traceId })}>
            Compare…
          </a>
          <button type="button" class="ghost" onClick={download}>
            Download JSON
          </button>
        </div>
        <Minimap model={model} view={view} onView={setView} />
      </header>
      <div class={selected !== null ? 'trace-body with-panel' : 'trace-body'}>
        {flame ? (
          <FlameGraph model={model} view={view} selected={selected} onSelect={select} />
        ) : (
          <div
            class="panel waterfall-panel"
            tabIndex={0}
            aria-label="Waterfall: arrows move, left and right collapse and expand"
          >
            <Waterfall
              rows={rows}
              collapsed={collapsed}
              selected={selected}
              matches={matches}
              view={view}
              reveal={reveal}
              findings={findings}
              onToggle={toggle}
              onSelect={select}
            />
          </div>
        )}
        {selected !== null && (
          <SpanPanel
            span={model.spans[selected]}
            model={model}
            consistency={findings?.get(model.spans[selected].spanId)}
            onShowSpan={showSpan}
            onClose={() => select(null)}
          />
        )}
      </div>
    </div>
  );
}
