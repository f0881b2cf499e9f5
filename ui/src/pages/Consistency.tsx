// The consistency page (`/consistency`): what the server's consistency analysis found in the
// time range (`range` or `start`/`end`, see components/TimeRange): replication lag per
// (source, replica) region pair over time with exemplars that open the apply span; stale
// reads over time by classification (binned here from the reads' start times) and per region
// pair; the stale reads (filtered by `classification`, `service` and `key` in the URL), each
// linking the read and the write it missed; the conflicts with winner, losers and why; and the
// consistency levels each service reads and writes at, with the risky combinations. Arrow
// keys (or j/k) move between the findings' read links.
import { useMemo, useRef, useState } from 'preact/hooks';
import {
  api,
  type Classification,
  CLASSIFICATIONS,
  type Conflict,
  type LagPair,
  type LevelsAnswer,
  type StaleRead,
} from '../api';
import { Empty, ErrorBox, Loading, useAsync } from '../components/common';
import { LineChart, type Line } from '../components/LineChart';
import { rangeOf, rangeQuery, type TimeRange, TimeRangePicker } from '../components/TimeRange';
import { formatMillis, formatTime, nanosToMicros } from '../format';
import { navigate, type Route, withParams } from '../router';
import { ClassificationBadge, ConflictFacts, isDisabled, spanHref, SpanWho, WriteLink } from '../trace/Consistency';

/** Stale reads asked for at most (the API's maximum), binned for the chart. */
const STALE_LIMIT = '10000';
const CONFLICT_LIMIT = '1000';
/** Findings rows shown at first, and added by "Show more". */
const PAGE_ROWS = 100;
/** Bin widths of the stale-read chart, in seconds: the smallest giving at most ~60 bins. */
const BINS = [15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400];

interface Filters {
  classification: string;
  service: string;
  key: string;
}

interface Overview {
  range: TimeRange;
  lag: { intervalSeconds: number; pairs: LagPair[] };
  stale: { staleReads: StaleRead[]; matched: number; truncated: boolean };
  conflicts: { conflicts: Conflict[]; matched: number; truncated: boolean };
  levels: LevelsAnswer;
}

function filtersOf(params: URLSearchParams): Filters {
  return {
    classification: params.get('classification') ?? '',
    service: params.get('service') ?? '',
    key: params.get('key') ?? '',
  };
}

function query(params: Record<string, string>): string {
  return new URLSearchParams(Object.entries(params).filter(([, value]) => value !== '')).toString();
}

export function ConsistencyPage({ route }: { route: Route }) {
  const urlKey = route.params.toString();
  const range = useMemo(() => rangeOf(route.params), [urlKey]);
  const filters = filtersOf(route.params);
  const overview = useAsync(
    async (signal): Promise<Overview> => {
      const times = rangeQuery(range);
      const [lag, stale, conflicts, levels] = await Promise.all([
        api.replicationLag(query(times), signal),
        api.staleReads(query({ ...times, ...filters, limit: STALE_LIMIT }), signal),
        api.conflicts(query({ ...times, key: filters.key, limit: CONFLICT_LIMIT }), signal),
        api.consistencyLevels(signal),
      ]);
      return { range, lag, stale, conflicts, levels };
    },
    [range],
  );
  return (
    <div class="consistency-page">
      <header class="panel">
        <h1>Consistency</h1>
        <p class="dim">
          Database spans carrying <span class="mono">db.record.key</span> and{' '}
          <span class="mono">db.record.version</span>, judged as they arrive: reads that returned an older version than
          a write acknowledged before them (stale reads), classified by whether the consistency levels used allowed it;
          the delay of each replica apply (replication lag); concurrent versions a replica resolved (conflicts).
        </p>
        <TimeRangePicker route={route} range={range} />
      </header>
      {overview.error ? (
        isDisabled(overview.error) ? (
          <ErrorBox title="The consistency analysis is disabled on this server" error={overview.error} />
        ) : (
          <ErrorBox title="Could not load the consistency analysis" error={overview.error} />
        )
      ) : !overview.data ? (
        <Loading what="the consistency analysis" />
      ) : (
        <OverviewView data={overview.data} filters={filters} route={route} />
      )}
    </div>
  );
}

function OverviewView({ data, filters, route }: { data: Overview; filters: Filters; route: Route }) {
  const { range, lag, stale, conflicts, levels } = data;
  const filtered = filters.classification !== '' || filters.service !== '' || filters.key !== '';
  if (levels.usage.length === 0 && lag.pairs.length === 0 && stale.matched === 0 && conflicts.matched === 0) {
    return (
      <Empty>
        No database spans with <span class="mono">db.record.key</span>/<span class="mono">db.record.version</span> seen
        yet: the analysis needs reads and writes that name the record and its version (and{' '}
        <span class="mono">db.replication.apply</span> spans for lag and conflicts).
      </Empty>
    );
  }
  const nothingInRange = lag.pairs.length === 0 && stale.matched === 0 && conflicts.matched === 0 && !filtered;
  return (
    <>
      <Facts data={data} />
      {nothingInRange ? (
        <Empty>No replication, stale read or conflict in {range.label}.</Empty>
      ) : (
        <>
          <LagSection pairs={lag.pairs} intervalSeconds={lag.intervalSeconds} range={range} />
          <StaleOverTime reads={stale.staleReads} truncated={stale.truncated} range={range} filtered={filtered} />
        </>
      )}
      <StaleReadList answer={stale} filters={filters} route={route} range={range} />
      <ConflictList answer={conflicts} filters={filters} range={range} />
      <LevelsSection levels={levels} />
    </>
  );
}

function Facts({ data }: { data: Overview }) {
  const violations = data.stale.staleReads.filter((s) => s.classification === 'violation').length;
  const applies = data.lag.pairs.reduce((sum, p) => sum + p.count, 0);
  const pending = data.levels.counters.pending ?? 0;
  return (
    <div class="panel consistency-facts">
      <dl class="trace-facts">
        <div>
          <dt>Replica applies</dt>
          <dd data-testid="apply-count">{applies}</dd>
        </div>
        <div>
          <dt>Region pairs</dt>
          <dd data-testid="pair-count">{data.lag.pairs.length}</dd>
        </div>
        <div>
          <dt>Stale reads</dt>
          <dd data-testid="stale-count">{data.stale.matched}</dd>
        </div>
        <div>
          <dt>Violations</dt>
          <dd data-testid="violation-count" class={violations > 0 ? 'status-error' : ''}>
            {violations}
          </dd>
        </div>
        <div>
          <dt>Conflicts</dt>
          <dd data-testid="conflict-count">{data.conflicts.matched}</dd>
        </div>
      </dl>
      {pending > 0 && (
        <p class="dim pending">
          {pending} reads and replica applies are still waiting to be judged (for writes that arrive late, see{' '}
          <span class="mono">metrics.consistency.wait_seconds</span>).
        </p>
      )}
    </div>
  );
}

const pairName = (source: string, replica: string) => `${source} → ${replica}`;
const millisOfNanos = (nanos: string) => nanosToMicros(nanos) / 1000;

function LagSection({
  pairs,
  intervalSeconds,
  range,
}: {
  pairs: LagPair[];
  intervalSeconds: number;
  range: TimeRange;
}) {
  if (pairs.length === 0) {
    return (
      <section class="panel">
        <h2>Replication lag</h2>
        <Empty>
          No replica apply in {range.label}: lag is kept in memory for the recent intervals only ({intervalSeconds} s
          each).
        </Empty>
      </section>
    );
  }
  const sorted = [...pairs].sort(
    (a, b) => a.sourceRegion.localeCompare(b.sourceRegion) || a.replicaRegion.localeCompare(b.replicaRegion),
  );
  return (
    <section class="panel" aria-label="Replication lag">
      <h2>Replication lag by region pair</h2>
      <p class="dim">
        From a write's acknowledgement to its apply on the replica, per {intervalSeconds} s interval: p50 and p99.
      </p>
      <div class="charts lag-charts">
        {sorted.map((pair) => {
          const points = (pick: (p: LagPair['series'][0]) => number | null) =>
            pair.series
              .filter((p) => pick(p) !== null)
              .map((p) => ({ t: millisOfNanos(p.startTimeUnixNano), v: pick(p) as number }));
          const lines: Line[] = [
            { label: 'p50', className: 'c-p50', points: points((p) => p.p50Millis) },
            { label: 'p99', className: 'c-p99', points: points((p) => p.p99Millis) },
          ];
          return (
            <div
              key={pairName(pair.sourceRegion, pair.replicaRegion)}
              class="lag-pair"
              data-pair={pairName(pair.sourceRegion, pair.replicaRegion)}
            >
              <LineChart
                title={pairName(pair.sourceRegion, pair.replicaRegion)}
                lines={lines}
                from={range.start}
                to={range.end}
                format={formatMillis}
              />
            </div>
          );
        })}
      </div>
      <table class="consistency-table lag-table">
        <thead>
          <tr>
            <th>Source → replica</th>
            <th class="num">Applies</th>
            <th class="num">p50</th>
            <th class="num">p99</th>
            <th class="num">Max</th>
            <th>Exemplars (open the apply span)</th>
          </tr>
        </thead>
        <tbody>
          {sorted.map((pair) => (
            <tr key={pairName(pair.sourceRegion, pair.replicaRegion)} class="lag-row">
              <td>{pairName(pair.sourceRegion, pair.replicaRegion)}</td>
              <td class="num">{pair.count}</td>
              <td class="num">{formatMillis(pair.p50Millis)}</td>
              <td class="num">{formatMillis(pair.p99Millis)}</td>
              <td class="num">{formatMillis(pair.maxMillis)}</td>
              <td class="exemplars">
                {[...pair.exemplars]
                  .sort((a, b) => Number(a.lagNanos) - Number(b.lagNanos))
                  .map((e) => (
                    <a
                      key={e.spanId}
                      class="exemplar-link"
                      href={spanHref(e.traceId, e.spanId)}
                      title={`trace ${e.traceId}, at ${formatTime(nanosToMicros(e.timeUnixNano))}`}
                    >
                      {formatMillis(millisOfNanos(e.lagNanos))}
                    </a>
                  ))}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

/** The bin width for a range: the smallest of BINS giving at most ~60 bins. */
function binSeconds(range: TimeRange): number {
  const seconds = (range.end - range.start) / 1000;
  return BINS.find((bin) => seconds / bin <= 60) ?? BINS[BINS.length - 1];
}

function binLabel(seconds: number): string {
  return seconds < 60 ? `${seconds} s` : seconds < 3600 ? `${seconds / 60} min` : `${seconds / 3600} h`;
}

const countFormat = (value: number) => (Number.isInteger(value) ? String(value) : value.toFixed(1));

function StaleOverTime({
  reads,
  truncated,
  range,
  filtered,
}: {
  reads: StaleRead[];
  truncated: boolean;
  range: TimeRange;
  filtered: boolean;
}) {
  const bin = binSeconds(range);
  const lines = useMemo(() => {
    const first = Math.floor(range.start / (bin * 1000)) * bin * 1000;
    const count = Math.max(1, Math.ceil((range.end - first) / (bin * 1000)));
    return CLASSIFICATIONS.map((classification): Line | null => {
      const bins = new Array<number>(count).fill(0);
      let any = false;
      for (const read of reads) {
        if (read.classification !== classification) continue;
        const at = Math.floor((millisOfNanos(read.read.startTimeUnixNano) - first) / (bin * 1000));
        if (at >= 0 && at < count) {
          bins[at]++;
          any = true;
        }
      }
      if (!any) return null;
      const points = bins.map((v, i) => ({ t: first + (i + 0.5) * bin * 1000, v }));
      return { label: classification, className: `c-${classification}`, points };
    }).filter((line): line is Line => line !== null);
  }, [reads, range, bin]);
  const pairs = useMemo(() => {
    const byPair = new Map<string, Record<Classification, number>>();
    for (const read of reads) {
      const name = pairName(read.write.region, read.read.region);
      const counts = byPair.get(name) ?? { expected: 0, violation: 0, unknown: 0 };
      counts[read.classification]++;
      byPair.set(name, counts);
    }
    return [...byPair.entries()].sort(([a], [b]) => a.localeCompare(b));
  }, [reads]);
  return (
    <section class="panel" aria-label="Stale reads over time">
      <h2>Stale reads over time{filtered && <span class="dim"> (filtered)</span>}</h2>
      {lines.length === 0 ? (
        <Empty>No stale read {filtered ? 'matches the filters' : `in ${range.label}`}.</Empty>
      ) : (
        <div class="stale-overview">
          <LineChart
            title={`Stale reads per ${binLabel(bin)}, by classification`}
            lines={lines}
            from={range.start}
            to={range.end}
            format={countFormat}
          />
          <table class="consistency-table stale-pairs">
            <caption class="dim">By region pair (the write's region → the read's)</caption>
            <thead>
              <tr>
                <th>Write → read region</th>
                <th class="num">Violations</th>
                <th class="num">Unknown</th>
                <th class="num">Expected</th>
              </tr>
            </thead>
            <tbody>
              {pairs.map(([name, counts]) => (
                <tr key={name} class="stale-pair-row" data-pair={name}>
                  <td>{name}</td>
                  <td class={counts.violation > 0 ? 'num status-error' : 'num'}>{counts.violation}</td>
                  <td class="num">{counts.unknown}</td>
                  <td class="num">{counts.expected}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {truncated && <p class="dim">Only the newest {STALE_LIMIT} stale reads are counted.</p>}
    </section>
  );
}

function FilterForm({ filters, route }: { filters: Filters; route: Route }) {
  const [draft, setDraft] = useState(filters);
  const go = (next: Filters) => navigate(withParams(route, { ...next }));
  return (
    <form
      class="row consistency-filters"
      onSubmit={(e) => {
        e.preventDefault();
        go(draft);
      }}
    >
      <label class="field">
        <span>Classification</span>
        <select
          aria-label="Classification"
          value={filters.classification}
          onChange={(e) => {
            const next = { ...draft, classification: e.currentTarget.value };
            setDraft(next);
            go(next);
          }}
        >
          <option value="">All</option>
          <option value="violation">Violation</option>
          <option value="unknown">Unknown</option>
          <option value="expected">Expected</option>
        </select>
      </label>
      <label class="field">
        <span>Service (reading or writing)</span>
        <input
          aria-label="Service filter"
          value={draft.service}
          placeholder="any"
          onInput={(e) => setDraft({ ...draft, service: e.currentTarget.value.trim() })}
        />
      </label>
      <label class="field">
        <span>Key</span>
        <input
          aria-label="Key filter"
          class="mono"
          value={draft.key}
          placeholder="any, e.g. carts:3"
          onInput={(e) => setDraft({ ...draft, key: e.currentTarget.value.trim() })}
        />
      </label>
      <button type="submit" class="primary">
        Filter
      </button>
      {(filters.classification || filters.service || filters.key) && (
        <button
          type="button"
          class="ghost"
          onClick={() => {
            const cleared = { classification: '', service: '', key: '' };
            setDraft(cleared);
            go(cleared);
          }}
        >
          Clear filters
        </button>
      )}
    </form>
  );
}

function StaleReadList({
  answer,
  filters,
  route,
  range,
}: {
  answer: Overview['stale'];
  filters: Filters;
  route: Route;
  range: TimeRange;
}) {
  const [shown, setShown] = useState(PAGE_ROWS);
  const list = useRef<HTMLTableSectionElement>(null);
  const reads = answer.staleReads;
  const keyHref = (key: string) => withParams(route, { key });
  const onKeyDown = (event: KeyboardEvent) => {
    const move = { ArrowDown: 1, j: 1, ArrowUp: -1, k: -1 }[event.key];
    if (move === undefined || (event.target as HTMLElement).tagName === 'INPUT') return;
    const links = [...(list.current?.querySelectorAll<HTMLAnchorElement>('a.read-link') ?? [])];
    const at = links.indexOf(document.activeElement as HTMLAnchorElement);
    links[Math.min(links.length - 1, Math.max(0, at < 0 ? 0 : at + move))]?.focus();
    event.preventDefault();
  };
  return (
    <section class="panel" aria-label="Stale reads">
      <h2>
        Stale reads <span class="dim">({answer.matched})</span>
      </h2>
      <FilterForm key={route.params.toString()} filters={filters} route={route} />
      {reads.length === 0 ? (
        <Empty>
          No stale read {filters.classification || filters.service || filters.key ? 'matches the filters' : ''} in{' '}
          {range.label}.
        </Empty>
      ) : (
        <table class="consistency-table findings">
          <thead>
            <tr>
              <th>Read at</th>
              <th>Key</th>
              <th>Read (opens it)</th>
              <th>Missed write</th>
              <th class="num">Staleness</th>
              <th>Classification</th>
            </tr>
          </thead>
          <tbody ref={list} onKeyDown={onKeyDown}>
            {reads.slice(0, shown).map((stale) => (
              <tr
                key={stale.read.spanId + stale.write.spanId}
                class={`stale-row ${stale.classification}`}
                data-read-span={stale.read.spanId}
                data-write-span={stale.write.spanId}
              >
                <td class="nowrap">{formatTime(nanosToMicros(stale.read.startTimeUnixNano))}</td>
                <td>
                  <a class="mono key-link" href={keyHref(stale.key)} title="Only this key">
                    {stale.key}
                  </a>
                </td>
                <td>
                  <a class="read-link" href={spanHref(stale.read.traceId, stale.read.spanId)}>
                    <SpanWho service={stale.read.service} region={stale.read.region} level={stale.read.level} />
                  </a>
                  <div class="dim">
                    returned <span class="mono">{stale.read.returnedVersion}</span>
                  </div>
                </td>
                <td>
                  <WriteLink write={stale.write} />
                  <div class="dim">
                    version <span class="mono">{stale.write.version}</span>
                  </div>
                </td>
                <td class="num">{formatMillis(stale.stalenessMillis)}</td>
                <td>
                  <ClassificationBadge classification={stale.classification} />
                  <div class="reason dim">{stale.reason}</div>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {reads.length > shown && (
        <button type="button" class="ghost more" onClick={() => setShown(shown + PAGE_ROWS)}>
          Show {Math.min(PAGE_ROWS, reads.length - shown)} more of {reads.length}
        </button>
      )}
      {answer.truncated && (
        <p class="dim">
          {answer.matched} matched; the newest {reads.length} are listed.
        </p>
      )}
    </section>
  );
}

function ConflictList({
  answer,
  filters,
  range,
}: {
  answer: Overview['conflicts'];
  filters: Filters;
  range: TimeRange;
}) {
  const [shown, setShown] = useState(PAGE_ROWS);
  const conflicts = answer.conflicts;
  return (
    <section class="panel" aria-label="Conflicts">
      <h2>
        Conflicts <span class="dim">({answer.matched})</span>
        {filters.key && <span class="dim"> of {filters.key}</span>}
      </h2>
      {conflicts.length === 0 ? (
        <Empty>No conflict resolved by a replica in {range.label}.</Empty>
      ) : (
        <ul class="conflict-list">
          {conflicts.slice(0, shown).map((conflict) => (
            <li key={conflict.apply.spanId} class="conflict-row" data-apply-span={conflict.apply.spanId}>
              <div class="conflict-head">
                <span class="nowrap dim">{formatTime(nanosToMicros(conflict.apply.startTimeUnixNano))}</span>{' '}
                <a class="apply-link" href={spanHref(conflict.apply.traceId, conflict.apply.spanId)}>
                  open the apply span
                </a>
              </div>
              <ConflictFacts conflict={conflict} />
            </li>
          ))}
        </ul>
      )}
      {conflicts.length > shown && (
        <button type="button" class="ghost more" onClick={() => setShown(shown + PAGE_ROWS)}>
          Show more
        </button>
      )}
      {answer.truncated && (
        <p class="dim">
          {answer.matched} matched; the newest {conflicts.length} are listed.
        </p>
      )}
    </section>
  );
}

/** The levels in a sensible order: weakest first, then any others by name. */
const LEVEL_ORDER = ['ANY', 'ONE', 'LOCAL_ONE', 'TWO', 'THREE', 'LOCAL_QUORUM', 'QUORUM', 'EACH_QUORUM', 'ALL'];
function levelRank(level: string): number {
  const at = LEVEL_ORDER.indexOf(level.toUpperCase());
  return at < 0 ? LEVEL_ORDER.length : at;
}

function LevelsSection({ levels }: { levels: LevelsAnswer }) {
  const { columns, rows } = useMemo(() => {
    const columns = [...new Set(levels.usage.map((u) => u.level))].sort(
      (a, b) => levelRank(a) - levelRank(b) || a.localeCompare(b),
    );
    const rows = new Map<
      string,
      { service: string; operation: string; collection: string; access: string; spans: Map<string, number> }
    >();
    for (const u of levels.usage) {
      const id = [u.service, u.system, u.collection, u.operation, u.access].join('\u0000');
      const row = rows.get(id) ?? {
        service: u.service,
        operation: u.operation,
        collection: u.system ? `${u.system} · ${u.collection}` : u.collection,
        access: u.access,
        spans: new Map<string, number>(),
      };
      row.spans.set(u.level, (row.spans.get(u.level) ?? 0) + u.spans);
      rows.set(id, row);
    }
    const sorted = [...rows.values()].sort(
      (a, b) =>
        a.service.localeCompare(b.service) ||
        a.collection.localeCompare(b.collection) ||
        a.access.localeCompare(b.access) ||
        a.operation.localeCompare(b.operation),
    );
    return { columns, rows: sorted };
  }, [levels]);
  return (
    <section class="panel" aria-label="Consistency levels">
      <h2>Consistency levels</h2>
      <p class="dim">Database spans per level since the server started (not limited to the time range).</p>
      {rows.length === 0 ? (
        <Empty>No database span with a consistency level seen yet.</Empty>
      ) : (
        <table class="consistency-table levels">
          <thead>
            <tr>
              <th>Service</th>
              <th>Collection</th>
              <th>Operation</th>
              <th>Access</th>
              {columns.map((level) => (
                <th key={level} class="num">
                  {level}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {rows.map((row) => (
              <tr
                key={[row.service, row.collection, row.operation, row.access].join('/')}
                class="level-row"
                data-service={row.service}
                data-access={row.access}
              >
                <td>{row.service}</td>
                <td>{row.collection}</td>
                <td>{row.operation}</td>
                <td>{row.access === 'read' ? 'reads' : 'writes'}</td>
                {columns.map((level) => (
                  <td key={level} class="num" data-level={level}>
                    {row.spans.get(level) ?? ''}
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h3>Risky patterns</h3>
      {levels.riskyPatterns.length === 0 ? (
        <p class="dim">No service reads at a level that may miss the writes it makes.</p>
      ) : (
        <>
          <p class="dim">
            Reads at a weaker level than the write of their key they follow (the one acknowledged last before them):
            such a read may miss that write.
          </p>
          <table class="consistency-table risky">
            <thead>
              <tr>
                <th>Service</th>
                <th>Collection</th>
                <th>Reads at</th>
                <th>Writes at</th>
                <th class="num">Reads</th>
                <th class="num">Stale reads</th>
                <th>Example</th>
              </tr>
            </thead>
            <tbody>
              {levels.riskyPatterns.map((risky) => (
                <tr
                  key={[risky.service, risky.collection, risky.readLevel, risky.writeLevel].join('/')}
                  class="risky-row"
                >
                  <td>{risky.service}</td>
                  <td>{risky.collection}</td>
                  <td class="level">{risky.readLevel}</td>
                  <td class="level">{risky.writeLevel}</td>
                  <td class="num">{risky.reads}</td>
                  <td class={risky.staleReads > 0 ? 'num status-error' : 'num'}>{risky.staleReads}</td>
                  <td>
                    <a class="example-link" href={spanHref(risky.example.traceId, risky.example.spanId)}>
                      a read
                    </a>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}
