// The waterfall: one row per visible span (a collapsible tree on the left, its bar on the
// time axis on the right), virtualized: only the rows in view (plus a margin) are in the DOM,
// so a 100,000-span trace scrolls as smoothly as a small one. Rows of spans with consistency
// findings carry a badge (one map lookup per rendered row).
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { formatMicros, serviceColor } from '../format';
import { ConsistencyBadges, type SpanConsistency } from './Consistency';
import type { SpanNode } from './model';

const ROW_HEIGHT = 26;
const OVERSCAN = 12;

interface Props {
  rows: SpanNode[];
  collapsed: Set<number>;
  selected: number | null;
  matches: Set<number>;
  /** The time window shown, in microseconds from the trace's start. */
  view: [number, number];
  /** Row index to bring into view when it changes. */
  reveal: number | null;
  /** Consistency findings by span ID. */
  findings?: Map<string, SpanConsistency>;
  onToggle: (index: number) => void;
  onSelect: (index: number) => void;
}

export function Waterfall({ rows, collapsed, selected, matches, view, reveal, findings, onToggle, onSelect }: Props) {
  const scroller = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [height, setHeight] = useState(600);

  useLayoutEffect(() => {
    const element = scroller.current;
    if (!element) return;
    const observer = new ResizeObserver(() => setHeight(element.clientHeight));
    observer.observe(element);
    setHeight(element.clientHeight);
    return () => observer.disconnect();
  }, []);

  useEffect(() => {
    const element = scroller.current;
    if (reveal === null || !element) return;
    const position = rows.findIndex((row) => row.index === reveal);
    if (position < 0) return;
    const top = position * ROW_HEIGHT;
    if (top < element.scrollTop || top + ROW_HEIGHT > element.scrollTop + element.clientHeight) {
      element.scrollTop = Math.max(0, top - element.clientHeight / 3);
    }
  }, [reveal, rows]);

  const first = Math.max(0, Math.floor(scrollTop / ROW_HEIGHT) - OVERSCAN);
  const last = Math.min(rows.length, Math.ceil((scrollTop + height) / ROW_HEIGHT) + OVERSCAN);
  const [from, to] = view;
  const width = Math.max(to - from, 1e-9);
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => from + f * width);

  return (
    <div class="waterfall">
      <div class="waterfall-head">
        <div class="name-col">Service and operation</div>
        <div class="time-col">
          {ticks.map((tick, i) => (
            <span key={i} class="tick" style={{ left: `${i * 25}%` }}>
              {formatMicros(tick)}
            </span>
          ))}
        </div>
      </div>
      <div
        class="waterfall-body"
        ref={scroller}
        role="tree"
        aria-label="Spans"
        onScroll={(e) => setScrollTop(e.currentTarget.scrollTop)}
      >
        <div style={{ height: `${rows.length * ROW_HEIGHT}px`, position: 'relative' }}>
          {rows.slice(first, last).map((span, i) => {
            const left = ((span.start - from) / width) * 100;
            const barWidth = Math.max((span.duration / width) * 100, 0.15);
            const hasChildren = span.children.length > 0;
            const isCollapsed = collapsed.has(span.index);
            const consistency = findings?.get(span.spanId);
            const classes = [
              'span-row',
              span.index === selected ? 'selected' : '',
              matches.has(span.index) ? 'match' : '',
              span.error ? 'error' : '',
            ].join(' ');
            return (
              <div
                key={span.index}
                class={classes}
                role="treeitem"
                aria-expanded={hasChildren ? !isCollapsed : undefined}
                aria-selected={span.index === selected}
                aria-level={span.depth + 1}
                data-span-id={span.spanId}
                style={{ top: `${(first + i) * ROW_HEIGHT}px` }}
                onClick={() => onSelect(span.index)}
              >
                <div class="name-col" style={{ paddingLeft: `${span.depth * 14 + 4}px` }}>
                  {hasChildren ? (
                    <button
                      type="button"
                      class="toggle"
                      aria-label={isCollapsed ? 'Expand' : 'Collapse'}
                      onClick={(e) => {
                        e.stopPropagation();
                        onToggle(span.index);
                      }}
                    >
                      {isCollapsed ? '▸' : '▾'}
                    </button>
                  ) : (
                    <span class="toggle-space" />
                  )}
                  <span class="service-mark" style={{ background: serviceColor(span.service) }} />
                  <span class="service">{span.service}</span>
                  <span class="op">{span.name}</span>
                  {span.error && (
                    <span class="err-mark" title="error">
                      !
                    </span>
                  )}
                  {consistency && <ConsistencyBadges info={consistency} />}
                  {isCollapsed && <span class="dim"> (+{span.descendants})</span>}
                </div>
                <div class="time-col">
                  <div
                    class={span.critical ? 'span-bar critical' : 'span-bar'}
                    style={{ left: `${left}%`, width: `${barWidth}%`, background: serviceColor(span.service) }}
                  />
                  <span
                    class={left + barWidth > 85 ? 'span-label inside' : 'span-label'}
                    style={
                      left + barWidth > 85 ? { right: `${100 - left - barWidth}%` } : { left: `${left + barWidth}%` }
                    }
                  >
                    {formatMicros(span.duration)}
                  </span>
                </div>
              </div>
            );
          })}
        </div>
      </div>
    </div>
  );
}
