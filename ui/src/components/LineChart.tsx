// A small SVG line chart over a time window, with optional clickable exemplar points (each
// opens its trace).
import { formatTime } from '../format';
import { href, navigate } from '../router';

export interface Line {
  label: string;
  className: string;
  points: { t: number; v: number }[];
}
export interface ExemplarPoint {
  t: number;
  v: number;
  traceId: string;
}

const W = 360;
const H = 120;
const PAD = { left: 64, right: 8, top: 8, bottom: 18 };

interface Props {
  title: string;
  lines: Line[];
  /** Window in unix milliseconds. */
  from: number;
  to: number;
  format: (value: number) => string;
  exemplars?: ExemplarPoint[];
}

export function LineChart({ title, lines, from, to, format, exemplars = [] }: Props) {
  const values = [...lines.flatMap((l) => l.points.map((p) => p.v)), ...exemplars.map((e) => e.v)];
  const max = Math.max(...values, 0) || 1;
  const x = (t: number) => PAD.left + ((t - from) / Math.max(to - from, 1)) * (W - PAD.left - PAD.right);
  const y = (v: number) => PAD.top + (1 - v / max) * (H - PAD.top - PAD.bottom);
  return (
    <figure class="chart">
      <figcaption>
        {title}
        {lines.length > 1 &&
          lines.map((line) => (
            <span key={line.label} class={`key ${line.className}`}>
              {line.label}
            </span>
          ))}
      </figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={title}>
        {[0, 0.5, 1].map((f) => (
          <g key={f}>
            <line class="grid" x1={PAD.left} x2={W - PAD.right} y1={y(f * max)} y2={y(f * max)} />
            <text class="axis" x={PAD.left - 4} y={y(f * max) + 3} text-anchor="end">
              {format(f * max)}
            </text>
          </g>
        ))}
        <text class="axis" x={PAD.left} y={H - 4}>
          {formatTime(from * 1000).slice(11, 19)}
        </text>
        <text class="axis" x={W - PAD.right} y={H - 4} text-anchor="end">
          {formatTime(to * 1000).slice(11, 19)}
        </text>
        {lines.map((line) =>
          line.points.length === 1 ? (
            <circle
              key={line.label}
              class={`dot ${line.className}`}
              cx={x(line.points[0].t)}
              cy={y(line.points[0].v)}
              r={2.5}
            />
          ) : (
            <polyline
              key={line.label}
              class={`line ${line.className}`}
              points={line.points.map((p) => `${x(p.t)},${y(p.v)}`).join(' ')}
            />
          ),
        )}
        {exemplars.map((e, i) => (
          <circle
            key={i}
            class="exemplar"
            data-trace-id={e.traceId}
            cx={x(e.t)}
            cy={y(e.v)}
            r={4}
            tabIndex={0}
            onClick={() => navigate(href(`/trace/${e.traceId}`))}
            onKeyDown={(event) => event.key === 'Enter' && navigate(href(`/trace/${e.traceId}`))}
          >
            <title>
              exemplar: trace {e.traceId} ({format(e.v)})
            </title>
          </circle>
        ))}
      </svg>
    </figure>
  );
}
