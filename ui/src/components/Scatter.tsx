// Search results as points: start time across, duration up (errors in red). A click opens
// the trace, so the slow outliers are one click away.
import type { TraceSummary } from '../api';
import { formatMicros, formatTime, nanosToMicros } from '../format';
import { href, navigate } from '../router';

const WIDTH = 1000;
const HEIGHT = 180;
const PAD = { left: 56, right: 12, top: 10, bottom: 22 };

export function Scatter({ traces }: { traces: TraceSummary[] }) {
  if (traces.length === 0) return null;
  const points = traces.map((t) => ({
    t,
    x: nanosToMicros(t.startTimeUnixNano),
    y: nanosToMicros(t.durationNanos),
  }));
  const minX = Math.min(...points.map((p) => p.x));
  const maxX = Math.max(...points.map((p) => p.x));
  const maxY = Math.max(...points.map((p) => p.y), 1);
  const spanX = maxX - minX || 1;
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const px = (x: number) => PAD.left + (points.length === 1 ? plotW / 2 : ((x - minX) / spanX) * plotW);
  const py = (y: number) => PAD.top + plotH - (y / maxY) * plotH;
  const ticks = [0, 0.5, 1].map((f) => f * maxY);
  return (
    <svg class="scatter" viewBox={`0 0 ${WIDTH} ${HEIGHT}`} role="img" aria-label="Trace durations over time">
      {ticks.map((tick) => (
        <g key={tick}>
          <line class="grid" x1={PAD.left} x2={WIDTH - PAD.right} y1={py(tick)} y2={py(tick)} />
          <text class="axis" x={PAD.left - 6} y={py(tick) + 4} text-anchor="end">
            {formatMicros(tick)}
          </text>
        </g>
      ))}
      <text class="axis" x={PAD.left} y={HEIGHT - 4}>
        {formatTime(minX)}
      </text>
      <text class="axis" x={WIDTH - PAD.right} y={HEIGHT - 4} text-anchor="end">
        {formatTime(maxX)}
      </text>
      {points.map(({ t, x, y }) => (
        <circle
          key={t.traceId}
          class={t.errorCount > 0 ? 'point error' : 'point'}
          data-trace-id={t.traceId}
          cx={px(x)}
          cy={py(y)}
          r={5}
          tabIndex={0}
          onClick={() => navigate(href(`/trace/${t.traceId}`))}
          onKeyDown={(e) => e.key === 'Enter' && navigate(href(`/trace/${t.traceId}`))}
        >
          <title>
            {t.rootService}: {t.rootName} — {formatMicros(y)}
          </title>
        </circle>
      ))}
    </svg>
  );
}
