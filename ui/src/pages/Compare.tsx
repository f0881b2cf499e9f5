// Two traces side by side and their structural difference: spans missing from B, added in
// B, slower and faster (see trace/compare.ts). `?a=&b=` in the URL.
import { useMemo, useState } from 'preact/hooks';
import { api } from '../api';
import { Empty, ErrorBox, Loading, useAsync } from '../components/common';
import { formatMicros, formatTime, serviceColor } from '../format';
import { href, navigate, type Route } from '../router';
import { type Change, diffTraces } from '../trace/compare';
import { buildTrace, type TraceModel } from '../trace/model';

const LABELS: Record<Change, string> = {
  missing: 'missing in B',
  added: 'added in B',
  slower: 'slower in B',
  faster: 'faster in B',
  same: 'same',
};

export function ComparePage({ route }: { route: Route }) {
  const a = route.params.get('a') ?? '';
  const b = route.params.get('b') ?? '';
  const [draftA, setDraftA] = useState(a);
  const [draftB, setDraftB] = useState(b);
  const traceA = useAsync((signal) => api.trace(a, signal), a ? [a] : null);
  const traceB = useAsync((signal) => api.trace(b, signal), b ? [b] : null);
  const models = useMemo(
    () => (traceA.data && traceB.data ? [buildTrace(traceA.data, true), buildTrace(traceB.data, true)] : null),
    [traceA.data, traceB.data],
  );
  return (
    <div class="compare-page">
      <form
        class="panel row"
        onSubmit={(e) => {
          e.preventDefault();
          navigate(href('/compare', { a: draftA.trim(), b: draftB.trim() }));
        }}
      >
        <label class="field wide">
          <span>Trace A</span>
          <input aria-label="Trace A" class="mono" value={draftA} onInput={(e) => setDraftA(e.currentTarget.value)} />
        </label>
        <label class="field wide">
          <span>Trace B</span>
          <input aria-label="Trace B" class="mono" value={draftB} onInput={(e) => setDraftB(e.currentTarget.value)} />
        </label>
        <button type="submit" class="primary">
          Compare
        </button>
      </form>
      {!a || !b ? (
        <Empty>Enter two trace IDs, or pick two traces in the search results.</Empty>
      ) : traceA.error || traceB.error ? (
        <ErrorBox title="Could not load both traces" error={(traceA.error ?? traceB.error)!} />
      ) : !models ? (
        <Loading what="both traces" />
      ) : (
        <Diff a={models[0]} b={models[1]} />
      )}
    </div>
  );
}

function Side({ label, model }: { label: string; model: TraceModel }) {
  const root = model.roots[0];
  return (
    <div class="panel side">
      <h2>
        {label}:{' '}
        <a href={`/trace/${model.traceId}`}>
          {root.service}: {root.name}
        </a>
      </h2>
      <div class="mono dim">{model.traceId}</div>
      <div>
        {formatTime(model.startMicros)} · {formatMicros(model.durationMicros)} · {model.spans.length} spans ·{' '}
        {model.errorCount} errors · {model.services.length} services
      </div>
    </div>
  );
}

function Diff({ a, b }: { a: TraceModel; b: TraceModel }) {
  const rows = useMemo(() => diffTraces(a, b), [a, b]);
  const [changedOnly, setChangedOnly] = useState(true);
  const counts = rows.reduce<Record<string, number>>(
    (all, row) => ({ ...all, [row.change]: (all[row.change] ?? 0) + 1 }),
    {},
  );
  const shown = changedOnly ? rows.filter((row) => row.change !== 'same') : rows;
  return (
    <>
      <div class="sides">
        <Side label="A" model={a} />
        <Side label="B" model={b} />
      </div>
      <div class="panel">
        <div class="diff-summary">
          {(['missing', 'added', 'slower', 'faster', 'same'] as Change[]).map((change) => (
            <span key={change} class={`badge ${change}`} data-change={change}>
              {counts[change] ?? 0} {LABELS[change]}
            </span>
          ))}
          <label class="check">
            <input type="checkbox" checked={changedOnly} onChange={(e) => setChangedOnly(e.currentTarget.checked)} />{' '}
            Changes only
          </label>
        </div>
        {shown.length === 0 ? (
          <Empty>The two traces have the same structure and similar timings.</Empty>
        ) : (
          <table class="diff">
            <thead>
              <tr>
                <th>Span</th>
                <th>A</th>
                <th>B</th>
                <th>Change</th>
              </tr>
            </thead>
            <tbody>
              {shown.map((row) => (
                <tr key={row.path} class={`diff-row ${row.change}`}>
                  <td style={{ paddingLeft: `${row.depth * 14 + 6}px` }}>
                    <span class="service-mark" style={{ background: serviceColor(row.service) }} />
                    {row.service}: {row.name}
                  </td>
                  <td>{row.durationA === null ? '–' : formatMicros(row.durationA)}</td>
                  <td>{row.durationB === null ? '–' : formatMicros(row.durationB)}</td>
                  <td>
                    {LABELS[row.change]}
                    {row.durationA !== null &&
                      row.durationB !== null &&
                      row.change !== 'same' &&
                      ` (${row.durationB > row.durationA ? '+' : ''}${formatMicros(row.durationB - row.durationA)})`}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
    </>
  );
}
