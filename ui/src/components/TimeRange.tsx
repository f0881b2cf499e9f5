// The time range of the service map, the service page and the process search, kept in the
// URL like the search's: `range=15m|1h|6h|24h|7d` (relative to now, default 15m), or `start` and `end` as local
// date-times (absolute). The span metrics and the service graph are kept with the traces, so
// any range within retention answers.
import { useEffect, useState } from 'preact/hooks';
import { navigate, type Route, withParams } from '../router';

export const RANGES: [string, string, number][] = [
  ['15m', 'Last 15 minutes', 900],
  ['1h', 'Last hour', 3600],
  ['6h', 'Last 6 hours', 6 * 3600],
  ['24h', 'Last 24 hours', 86400],
  ['7d', 'Last 7 days', 7 * 86400],
];
export const DEFAULT_RANGE = '15m';

export interface TimeRange {
  /** Unix milliseconds. */
  start: number;
  end: number;
  /** `15m`…`7d`, or `custom` for an absolute range. */
  key: string;
  /** For people: `the last 15 minutes`, or `this range`. */
  label: string;
}

/** The range the URL names, computed now (a relative range ends now). */
export function rangeOf(params: URLSearchParams, fallback = DEFAULT_RANGE): TimeRange {
  const start = params.get('start');
  if (start) {
    const end = params.get('end');
    const endMs = end ? new Date(end).getTime() : Date.now();
    const startMs = new Date(start).getTime();
    if (Number.isFinite(startMs) && Number.isFinite(endMs) && startMs < endMs) {
      return { start: startMs, end: endMs, key: 'custom', label: 'this range' };
    }
  }
  const wanted = params.get('range') ?? fallback;
  const found = RANGES.find(([key]) => key === wanted) ?? RANGES[0];
  const now = Date.now();
  return { start: now - found[2] * 1000, end: now, key: found[0], label: found[1].toLowerCase() };
}

/** `start` and `end` parameters of the API, in unix nanoseconds. */
export function rangeQuery(range: TimeRange): Record<string, string> {
  return { start: `${Math.floor(range.start)}000000`, end: `${Math.floor(range.end)}000000` };
}

/** A `datetime-local` value for unix milliseconds, in local time. */
function localInput(ms: number): string {
  const date = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
  return date.toISOString().slice(0, 19);
}

/** The picker: a select of relative ranges and, for `Absolute range`, two date-times. */
export function TimeRangePicker({
  route,
  range,
  fallback = DEFAULT_RANGE,
}: {
  route: Route;
  range: TimeRange;
  /** The range without a `range` parameter. */
  fallback?: string;
}) {
  const [custom, setCustom] = useState(range.key === 'custom');
  const [from, setFrom] = useState(route.params.get('start') ?? localInput(range.start));
  const [to, setTo] = useState(route.params.get('end') ?? localInput(range.end));
  useEffect(() => setCustom(range.key === 'custom'), [range.key]);
  const go = (change: Record<string, string | undefined>) => navigate(withParams(route, change));
  return (
    <form
      class="row time-range"
      onSubmit={(e) => {
        e.preventDefault();
        go({ range: undefined, start: from, end: to });
      }}
    >
      <label class="field">
        <span>Time range</span>
        <select
          aria-label="Time range"
          value={custom ? 'custom' : range.key}
          onChange={(e) => {
            const value = e.currentTarget.value;
            if (value === 'custom') setCustom(true);
            else go({ range: value === fallback ? undefined : value, start: undefined, end: undefined });
          }}
        >
          {RANGES.map(([key, label]) => (
            <option key={key} value={key}>
              {label}
            </option>
          ))}
          <option value="custom">Absolute range</option>
        </select>
      </label>
      {custom && (
        <>
          <label class="field">
            <span>From</span>
            <input type="datetime-local" step="1" value={from} onInput={(e) => setFrom(e.currentTarget.value)} />
          </label>
          <label class="field">
            <span>To</span>
            <input type="datetime-local" step="1" value={to} onInput={(e) => setTo(e.currentTarget.value)} />
          </label>
          <button type="submit" class="primary">
            Apply
          </button>
        </>
      )}
    </form>
  );
}
