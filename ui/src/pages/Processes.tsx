// The process search (`/processes`): business processes of the traces that match a service
// and attribute filters in a time range, grouped by process ID, the most recently active
// first. The URL holds `service`, `attr` (`key=value`), `range` or `start`/`end`, `limit`.
import { useEffect, useMemo, useState } from 'preact/hooks';
import { api } from '../api';
import { Empty, ErrorBox, Loading, useAsync } from '../components/common';
import { rangeOf, rangeQuery, TimeRangePicker } from '../components/TimeRange';
import { formatMicros, formatTime, nanosToMicros, serviceColor } from '../format';
import { href, navigate, type Route, withParams } from '../router';

const DEFAULT_RANGE = '1h';

export function ProcessesPage({ route }: { route: Route }) {
  const key = route.params.toString();
  const range = useMemo(() => rangeOf(route.params, DEFAULT_RANGE), [key]);
  const service = route.params.get('service') ?? '';
  const attr = route.params.get('attr') ?? '';
  const [draft, setDraft] = useState({ service, attr });
  useEffect(() => setDraft({ service, attr }), [service, attr]);
  const services = useAsync((signal) => api.services(signal), []);
  const found = useAsync(
    (signal) => {
      const query = new URLSearchParams({ ...rangeQuery(range), limit: route.params.get('limit') ?? '50' });
      if (service) query.set('service', service);
      const at = attr.indexOf('=');
      if (at > 0) query.set(`attr.${attr.slice(0, at).trim()}`, attr.slice(at + 1).trim());
      return api.processes(query.toString(), signal);
    },
    [range, service, attr],
  );
  const submit = (event: Event) => {
    event.preventDefault();
    navigate(withParams(route, draft));
  };
  return (
    <div class="processes-page">
      <header class="panel">
        <h1>Business processes</h1>
        <form class="row" onSubmit={submit}>
          <label class="field">
            <span>Service</span>
            <select
              aria-label="Service"
              value={draft.service}
              onChange={(e) => setDraft({ ...draft, service: e.currentTarget.value })}
            >
              <option value="">any</option>
              {(services.data?.services ?? []).map((s) => (
                <option key={s} value={s}>
                  {s}
                </option>
              ))}
            </select>
          </label>
          <label class="field wide">
            <span>Attribute</span>
            <input
              aria-label="Attribute filter"
              placeholder="key=value"
              value={draft.attr}
              onInput={(e) => setDraft({ ...draft, attr: e.currentTarget.value })}
            />
          </label>
          <button type="submit" class="primary">
            Find
          </button>
        </form>
        <TimeRangePicker route={route} range={range} fallback={DEFAULT_RANGE} />
      </header>
      {found.error ? (
        <ErrorBox title="Could not search processes" error={found.error} />
      ) : !found.data ? (
        <Loading what="processes" />
      ) : found.data.processes.length === 0 ? (
        <Empty>No trace carrying a process ID matches in {range.label}.</Empty>
      ) : (
        <section class="panel">
          {found.data.partial && (
            <div class="warning" role="status">
              Partial: more traces matched than one search reads; narrow the range or the filters.
            </div>
          )}
          <table class="hops processes">
            <thead>
              <tr>
                <th>Process</th>
                <th>First</th>
                <th>Active for</th>
                <th>Traces</th>
                <th>Services</th>
              </tr>
            </thead>
            <tbody>
              {found.data.processes.map((p) => {
                const first = nanosToMicros(p.firstTimeUnixNano);
                return (
                  <tr key={p.id} class="process-row" data-process-id={p.id}>
                    <td>
                      <a class="mono" href={href(`/processes/${encodeURIComponent(p.id)}`)}>
                        {p.id}
                      </a>
                    </td>
                    <td>{formatTime(first)}</td>
                    <td>{formatMicros(nanosToMicros(p.lastTimeUnixNano) - first)}</td>
                    <td>{p.traceCount}</td>
                    <td>
                      {p.services.map((s) => (
                        <span key={s} class="chip" style={{ borderColor: serviceColor(s) }}>
                          {s}
                        </span>
                      ))}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </section>
      )}
    </div>
  );
}
