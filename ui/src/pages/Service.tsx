// A service's page: per operation (and span kind), request rate, error rate and latency
// percentiles over the time range in the URL (`range` or `start`/`end`, see
// components/TimeRange) from the span metrics, with exemplar points that open the traces
// behind them.
import { useMemo } from 'preact/hooks';
import { api, type MetricSeries } from '../api';
import { Empty, ErrorBox, Loading, useAsync } from '../components/common';
import { LineChart } from '../components/LineChart';
import { rangeOf, rangeQuery, TimeRangePicker } from '../components/TimeRange';
import { formatMillis, formatPercent, formatRate, nanosToMicros, serviceColor } from '../format';
import { href, type Route } from '../router';

/** Points per chart at most, roughly: the step grows with the range. */
const MAX_POINTS = 120;

/** The step of a range: the interval (15 s) up to 30 minutes, then whole minutes. */
function stepFor(seconds: number): string | undefined {
  if (seconds <= 1800) return undefined;
  return `${Math.ceil(seconds / MAX_POINTS / 60)}m`;
}

export function ServicePage({ service, route }: { service: string; route: Route }) {
  const key = route.params.toString();
  const range = useMemo(() => rangeOf(route.params), [key]);
  const window = useAsync(
    async (signal) => {
      const seconds = (range.end - range.start) / 1000;
      const query = new URLSearchParams({ service, groupBy: 'operation,kind', ...rangeQuery(range) });
      const step = stepFor(seconds);
      if (step) query.set('step', step);
      return { start: range.start, end: range.end, answer: await api.spanMetrics(query.toString(), signal) };
    },
    [service, range],
  );
  return (
    <div class="service-page">
      <header class="panel">
        <h1>
          <span class="service-mark" style={{ background: serviceColor(service) }} />
          {service}
        </h1>
        <a href={href('/search', { service })}>Search its traces</a> ·{' '}
        <a href={`/map${key ? `?${key}` : ''}`}>Service map</a>
        <TimeRangePicker route={route} range={range} />
      </header>
      {window.error ? (
        <ErrorBox title="Could not load the span metrics" error={window.error} />
      ) : !window.data ? (
        <Loading what={`metrics of ${service}`} />
      ) : window.data.answer.series.length === 0 ? (
        <Empty>
          No spans of {service} ended in {range.label}.
        </Empty>
      ) : (
        <Operations series={window.data.answer.series} from={window.data.start} to={window.data.end} />
      )}
    </div>
  );
}

function totals(series: MetricSeries) {
  const calls = series.points.reduce((sum, p) => sum + p.calls, 0);
  const errors = series.points.reduce((sum, p) => sum + p.errors, 0);
  const max = (pick: (p: MetricSeries['points'][0]) => number | null) =>
    Math.max(...series.points.map((p) => pick(p) ?? 0));
  return { calls, errors, p50: max((p) => p.p50Millis), p95: max((p) => p.p95Millis), p99: max((p) => p.p99Millis) };
}

function Operations({ series, from, to }: { series: MetricSeries[]; from: number; to: number }) {
  const sorted = [...series].sort((a, b) => totals(b).calls - totals(a).calls);
  const time = (nanos: string) => nanosToMicros(nanos) / 1000;
  return (
    <>
      <table class="panel operations">
        <thead>
          <tr>
            <th>Operation</th>
            <th>Kind</th>
            <th>Rate</th>
            <th>Error rate</th>
            <th>max p50</th>
            <th>max p95</th>
            <th>max p99</th>
          </tr>
        </thead>
        <tbody>
          {sorted.map((s) => {
            const t = totals(s);
            return (
              <tr key={`${s.labels.operation}-${s.labels.kind}`} class="operation-row">
                <td>{s.labels.operation}</td>
                <td>{s.labels.kind}</td>
                <td>{formatRate(t.calls / Math.max(1, (to - from) / 1000))}</td>
                <td class={t.errors > 0 ? 'status-error' : ''}>{formatPercent(t.calls ? t.errors / t.calls : 0)}</td>
                <td>{formatMillis(t.p50)}</td>
                <td>{formatMillis(t.p95)}</td>
                <td>{formatMillis(t.p99)}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {sorted.map((s) => (
        <section key={`${s.labels.operation}-${s.labels.kind}`} class="panel operation">
          <h2>
            {s.labels.operation} <span class="dim">({s.labels.kind})</span>
          </h2>
          <div class="charts">
            <LineChart
              title="Requests"
              from={from}
              to={to}
              format={formatRate}
              lines={[
                {
                  label: 'rate',
                  className: 'c-rate',
                  points: s.points.map((p) => ({ t: time(p.startTimeUnixNano), v: p.ratePerSecond })),
                },
              ]}
            />
            <LineChart
              title="Errors"
              from={from}
              to={to}
              format={formatRate}
              lines={[
                {
                  label: 'errors',
                  className: 'c-error',
                  points: s.points.map((p) => ({ t: time(p.startTimeUnixNano), v: p.errorRatePerSecond })),
                },
              ]}
            />
            <LineChart
              title="Duration"
              from={from}
              to={to}
              format={formatMillis}
              lines={(['p50', 'p95', 'p99'] as const).map((q) => ({
                label: q,
                className: `c-${q}`,
                points: s.points
                  .filter((p) => p[`${q}Millis`] !== null)
                  .map((p) => ({ t: time(p.startTimeUnixNano), v: p[`${q}Millis`]! })),
              }))}
              exemplars={s.exemplars.map((e) => ({
                t: time(e.timeUnixNano),
                v: nanosToMicros(e.durationNanos) / 1000,
                traceId: e.traceId,
              }))}
            />
          </div>
        </section>
      ))}
    </>
  );
}
