// A business process (`/processes/:id`): every trace that carries its ID as a step on one
// time axis, the gap between consecutive steps, and the producer → consumer hops drawn from
// the producer span's end to the consumer span's start, with their queue wait. Each step opens
// its trace; arrow keys (or j/k) move between steps, Enter opens one. The axis is to scale or
// has long idle gaps compressed (`axis=scale|compact` in the URL; by default compressed when
// the steps cover less than a fifth of the process's time).
import { useMemo, useRef } from 'preact/hooks';
import { api, ApiError, type BriefSpan, type ProcessAnswer, type ProcessHop } from '../api';
import { CopyButton, Empty, ErrorBox, Loading, useAsync } from '../components/common';
import { formatMicros, formatTime, nanosToMicros, serviceColor } from '../format';
import { href, navigate, type Route, withParams } from '../router';
import { type Axis, compactAxis, coveredShare, linearAxis } from '../trace/axis';

/** Height of a step row and of the gap row between two steps, in pixels. */
const ROW_PX = 40;
const GAP_PX = 22;

/** The stretches of time covered by the spans that carry the process ID, merged. */
function activeStretches(spans: BriefSpan[]): [string, string][] {
  const sorted = spans
    .filter((s) => s.inProcess)
    .map((s): [number, number, string, string] => [
      nanosToMicros(s.startTimeUnixNano),
      nanosToMicros(s.endTimeUnixNano),
      s.startTimeUnixNano,
      s.endTimeUnixNano,
    ])
    .sort((a, b) => a[0] - b[0]);
  const merged: [number, number, string, string][] = [];
  for (const span of sorted) {
    const last = merged[merged.length - 1];
    if (last && span[0] <= last[1]) {
      if (span[1] > last[1]) [last[1], last[3]] = [span[1], span[3]];
    } else merged.push([...span]);
  }
  return merged.map(([, , start, end]) => [start, end]);
}

/** Below this share of the process's time covered by steps, gaps are compressed. */
const COMPACT_BELOW = 0.2;

export function ProcessPage({ id, route }: { id: string; route: Route }) {
  const process = useAsync((signal) => api.process(id, signal), [id]);
  if (process.error) {
    const missing = process.error instanceof ApiError && process.error.status === 404;
    return (
      <ErrorBox title={missing ? `Process ${id} not found` : 'Could not load the process'} error={process.error} />
    );
  }
  if (!process.data) return <Loading what={`process ${id}`} />;
  if (process.data.steps.length === 0) return <Empty>No trace of process {id}.</Empty>;
  return <ProcessView process={process.data} route={route} />;
}

/** Signed nanoseconds (a decimal string) as a duration for people. */
function signedMicros(nanos: string): number {
  return nanos.startsWith('-') ? -nanosToMicros(nanos.slice(1)) : nanosToMicros(nanos);
}

function GapText({ nanos }: { nanos: string }) {
  const micros = signedMicros(nanos);
  return micros < 0 ? (
    <span class="overlap">overlaps the previous step by {formatMicros(-micros)}</span>
  ) : (
    <span>{formatMicros(micros)} later</span>
  );
}

function spanLabel(span: BriefSpan) {
  return (
    <>
      <span class="service-mark" style={{ background: serviceColor(span.service) }} />
      {span.service}: {span.name}
    </>
  );
}

function ProcessView({ process, route }: { process: ProcessAnswer; route: Route }) {
  const start = nanosToMicros(process.startTimeUnixNano);
  const total = Math.max(1, nanosToMicros(process.endTimeUnixNano) - start);
  const intervals = useMemo(
    () =>
      process.steps.map((s): [number, number] => [
        nanosToMicros(s.startTimeUnixNano),
        nanosToMicros(s.endTimeUnixNano),
      ]),
    [process],
  );
  const wanted = route.params.get('axis');
  const compact = wanted ? wanted === 'compact' : coveredShare(intervals, total) < COMPACT_BELOW;
  const axis: Axis = useMemo(
    () => (compact ? compactAxis(intervals) : linearAxis(start, total)),
    [compact, intervals, start, total],
  );
  /** Percent of the axis at unix nanoseconds `nanos`. */
  const x = (nanos: string) => axis.at(nanosToMicros(nanos));
  const setAxis = (value: 'scale' | 'compact') => navigate(withParams(route, { axis: value }), true);
  const stepOf = new Map(process.steps.map((step, i) => [step.traceId, i]));
  const rowTop = (i: number) => i * (ROW_PX + GAP_PX);
  const height = rowTop(process.steps.length - 1) + ROW_PX;
  const list = useRef<HTMLDivElement>(null);

  const onKeyDown = (event: KeyboardEvent) => {
    const links = [...(list.current?.querySelectorAll<HTMLAnchorElement>('a.step-row') ?? [])];
    const at = links.indexOf(document.activeElement as HTMLAnchorElement);
    const move = { ArrowDown: 1, j: 1, ArrowUp: -1, k: -1 }[event.key];
    if (move === undefined) return;
    const next = links[Math.min(links.length - 1, Math.max(0, at < 0 ? 0 : at + move))];
    next?.focus();
    event.preventDefault();
  };

  return (
    <div class="process-page">
      <header class="panel process-header">
        <h1>
          Process <span class="mono">{process.id}</span> <CopyButton text={process.id} label="process ID" />
        </h1>
        <dl class="trace-facts">
          <div>
            <dt>Start</dt>
            <dd>{formatTime(start)}</dd>
          </div>
          <div>
            <dt>Duration</dt>
            <dd data-testid="process-duration">{formatMicros(total)}</dd>
          </div>
          <div>
            <dt>Steps</dt>
            <dd data-testid="step-count">{process.traceCount}</dd>
          </div>
          <div>
            <dt>Spans</dt>
            <dd>{process.spanCount}</dd>
          </div>
          <div>
            <dt>Hops</dt>
            <dd data-testid="hop-count">{process.hops.length}</dd>
          </div>
        </dl>
        <div class="services legend">
          {process.services.map((s) => (
            <a key={s} class="chip" style={{ borderColor: serviceColor(s) }} href={`/service/${encodeURIComponent(s)}`}>
              {s}
            </a>
          ))}
        </div>
        {process.partial && (
          <div class="warning" role="status">
            Partial: the process has more traces or spans than one answer holds; the newest are shown.
          </div>
        )}
        <p class="dim">
          Traces carrying {process.keys.join(' or ')} = {process.id}. Gaps run from a step's end to the next step's
          start; queue waits from the producer span's end to the consumer span's start. On the timeline, a bar is a
          trace, its dark part the spans that carry the ID, a dashed line a message hop.
        </p>
      </header>
      <section class="panel process-timeline" aria-label="Process timeline">
        <div class="tabs" role="tablist" aria-label="Time axis">
          <button
            type="button"
            role="tab"
            aria-selected={!compact}
            class={!compact ? 'tab active' : 'tab'}
            onClick={() => setAxis('scale')}
          >
            To scale
          </button>
          <button
            type="button"
            role="tab"
            aria-selected={compact}
            class={compact ? 'tab active' : 'tab'}
            onClick={() => setAxis('compact')}
          >
            Gaps compressed
          </button>
        </div>
        <div class="process-axis" aria-hidden="true">
          <span class="step-label" />
          <span class="step-track">
            {compact
              ? axis.breaks.map((b) => (
                  <span key={b.at} class="axis-break" style={{ left: `${b.at}%` }} title="idle time, compressed">
                    ⋯{formatMicros(b.micros)}
                  </span>
                ))
              : [0, 0.25, 0.5, 0.75, 1].map((f) => (
                  <span key={f} class="tick" style={{ left: `${f * 100}%` }}>
                    {f === 0 ? '0' : formatMicros(total * f)}
                  </span>
                ))}
          </span>
        </div>
        <div
          class="process-rows"
          ref={list}
          role="list"
          aria-label="Steps: arrows move, Enter opens the trace"
          onKeyDown={onKeyDown}
          style={{ height: `${height}px` }}
        >
          {process.steps.map((step, i) => {
            const left = x(step.startTimeUnixNano);
            const width = Math.max(0.3, x(step.endTimeUnixNano) - left);
            const stretches = activeStretches(step.spans);
            return (
              <div key={step.traceId} role="listitem">
                {i > 0 && (
                  <div class="gap-row" style={{ top: `${rowTop(i) - GAP_PX}px`, height: `${GAP_PX}px` }}>
                    <span class="step-label dim">
                      <GapText nanos={process.gaps[i - 1].gapNanos} />
                    </span>
                  </div>
                )}
                <a
                  class={step.errorCount > 0 ? 'step-row error' : 'step-row'}
                  href={`/trace/${step.traceId}`}
                  data-trace-id={step.traceId}
                  style={{ top: `${rowTop(i)}px`, height: `${ROW_PX}px` }}
                >
                  <span class="step-label">
                    <span class="step-title">
                      <span class="service-mark" style={{ background: serviceColor(step.rootService) }} />
                      {step.rootService}: {step.rootName}
                    </span>
                    <span class="dim">
                      +{formatMicros(nanosToMicros(step.startTimeUnixNano) - start)} ·{' '}
                      {formatMicros(nanosToMicros(step.durationNanos))} · {step.spanCount} spans
                      {step.errorCount > 0 && <span class="status-error"> · {step.errorCount} errors</span>}
                    </span>
                  </span>
                  <span class="step-track">
                    <span
                      class="step-bar"
                      style={{ left: `${left}%`, width: `${width}%`, background: serviceColor(step.rootService) }}
                    />
                    {stretches.map(([from, to]) => (
                      <span
                        key={from}
                        class="step-mark"
                        style={{ left: `${x(from)}%`, width: `${Math.max(0.15, x(to) - x(from))}%` }}
                      />
                    ))}
                  </span>
                </a>
              </div>
            );
          })}
          {compact && (
            <div class="breaks-overlay" aria-hidden="true">
              {axis.breaks.map((b) => (
                <span key={b.at} class="break-line" style={{ left: `${b.at}%` }} />
              ))}
            </div>
          )}
          <svg
            class="hops-overlay"
            viewBox={`0 0 100 ${height}`}
            preserveAspectRatio="none"
            aria-hidden="true"
            style={{ height: `${height}px` }}
          >
            {process.hops.map((hop, i) => {
              const from = stepOf.get(hop.producer.traceId);
              const to = stepOf.get(hop.consumer.traceId);
              if (from === undefined || to === undefined) return null;
              const [x1, x2] = [x(hop.producer.endTimeUnixNano), x(hop.consumer.startTimeUnixNano)];
              const [y1, y2] = [rowTop(from) + ROW_PX - 8, rowTop(to) + 8];
              return (
                <path
                  key={i}
                  class="hop-line"
                  d={`M ${x1} ${y1} C ${x1} ${(y1 + y2) / 2}, ${x2} ${(y1 + y2) / 2}, ${x2} ${y2}`}
                  vector-effect="non-scaling-stroke"
                />
              );
            })}
          </svg>
        </div>
      </section>
      <Hops hops={process.hops} />
    </div>
  );
}

function Hops({ hops }: { hops: ProcessHop[] }) {
  if (hops.length === 0) return <Empty>No producer → consumer hops between these traces.</Empty>;
  return (
    <section class="panel">
      <h2>Asynchronous hops ({hops.length})</h2>
      <table class="hops">
        <thead>
          <tr>
            <th>Producer</th>
            <th>Consumer</th>
            <th>Queue</th>
            <th>Message</th>
            <th>Queue wait</th>
          </tr>
        </thead>
        <tbody>
          {hops.map((hop, i) => (
            <tr key={i} class="hop-row">
              <td>
                <a href={href(`/trace/${hop.producer.traceId}`, { span: hop.producer.spanId })}>
                  {spanLabel(hop.producer)}
                </a>
              </td>
              <td>
                <a href={href(`/trace/${hop.consumer.traceId}`, { span: hop.consumer.spanId })}>
                  {spanLabel(hop.consumer)}
                </a>
              </td>
              <td>{[hop.messagingSystem, hop.destination].filter(Boolean).join(' · ') || '–'}</td>
              <td class="mono">
                {hop.messageId ?? '–'} <span class="dim">({hop.via === 'link' ? 'span link' : 'same message ID'})</span>
              </td>
              <td data-testid="queue-wait">{formatMicros(signedMicros(hop.queueWaitNanos))}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
