// The consistency findings of one trace (`/api/v1/consistency/stale-reads` and `/conflicts`
// with `traceId=`), loaded once after the trace and indexed by span ID, so the waterfall
// marks its rows with a map lookup per visible row: the stale reads (the read span), the
// writes they missed, and the replica applies that resolved a conflict. The span panel's
// Consistency section says which write a read missed, how stale it was, at which levels and
// in which regions, and for a conflict the winner, the losers and why. Also the pieces the
// consistency page shares: links to a finding's spans, the classification badge.
import { api, ApiError, type Conflict, type ConsistencyWrite, type StaleRead } from '../api';
import { formatMillis, formatTime, nanosToMicros, serviceColor } from '../format';
import { href } from '../router';

/** What the consistency analysis says about one span. */
export interface SpanConsistency {
  /** Stale reads this span made. */
  staleReads: StaleRead[];
  /** Stale reads that missed this span's write. */
  missedBy: StaleRead[];
  /** Conflicts this replica apply resolved. */
  conflicts: Conflict[];
  /** Conflicts where this span's write won or lost. */
  versions: { conflict: Conflict; won: boolean }[];
}

export interface TraceConsistency {
  bySpan: Map<string, SpanConsistency>;
  staleReads: StaleRead[];
  conflicts: Conflict[];
}

/** The most findings asked for per trace (the API's maximum). */
const TRACE_LIMIT = '10000';

function entry(bySpan: Map<string, SpanConsistency>, spanId: string): SpanConsistency {
  let found = bySpan.get(spanId);
  if (!found) {
    found = { staleReads: [], missedBy: [], conflicts: [], versions: [] };
    bySpan.set(spanId, found);
  }
  return found;
}

/** Indexes the findings by the spans of `traceId` they involve. */
export function indexFindings(traceId: string, staleReads: StaleRead[], conflicts: Conflict[]): TraceConsistency {
  const bySpan = new Map<string, SpanConsistency>();
  for (const stale of staleReads) {
    if (stale.read.traceId === traceId) entry(bySpan, stale.read.spanId).staleReads.push(stale);
    if (stale.write.traceId === traceId) entry(bySpan, stale.write.spanId).missedBy.push(stale);
  }
  for (const conflict of conflicts) {
    if (conflict.apply.traceId === traceId) entry(bySpan, conflict.apply.spanId).conflicts.push(conflict);
    for (const version of [conflict.winner, ...conflict.losers]) {
      const write = version.write;
      if (write?.traceId === traceId) {
        entry(bySpan, write.spanId).versions.push({ conflict, won: version === conflict.winner });
      }
    }
  }
  return { bySpan, staleReads, conflicts };
}

/** The findings of a trace, or `null` when the analysis is disabled (501). */
export async function loadTraceConsistency(traceId: string, signal: AbortSignal): Promise<TraceConsistency | null> {
  const query = new URLSearchParams({ traceId, limit: TRACE_LIMIT }).toString();
  try {
    const [stale, conflicts] = await Promise.all([api.staleReads(query, signal), api.conflicts(query, signal)]);
    return indexFindings(traceId, stale.staleReads, conflicts.conflicts);
  } catch (error) {
    if (isDisabled(error)) return null;
    throw error;
  }
}

/** Whether an API error says the consistency analysis is turned off. */
export function isDisabled(error: unknown): boolean {
  return error instanceof ApiError && error.status === 501;
}

export function spanHref(traceId: string, spanId: string): string {
  return href(`/trace/${traceId}`, { span: spanId });
}

/** `service · region · LEVEL`, for a read or a write. */
export function SpanWho({ service, region, level }: { service: string; region: string; level: string }) {
  return (
    <>
      <span class="service-mark" style={{ background: serviceColor(service) }} />
      {service} <span class="dim">in</span> {region} <span class="dim">at</span> <span class="level">{level}</span>
    </>
  );
}

export function ClassificationBadge({ classification }: { classification: string }) {
  return <span class={`badge classification ${classification}`}>{classification}</span>;
}

/** Links to a write (its trace at its span), or says it is not remembered. */
export function WriteLink({
  write,
  className = 'write-link',
  onShow,
}: {
  write: ConsistencyWrite | null;
  className?: string;
  onShow?: (traceId: string, spanId: string) => boolean;
}) {
  if (!write) return <span class="dim">write not remembered</span>;
  return (
    <a
      class={className}
      href={spanHref(write.traceId, write.spanId)}
      data-trace-id={write.traceId}
      data-span-id={write.spanId}
      onClick={(event) => onShow?.(write.traceId, write.spanId) && event.preventDefault()}
    >
      <SpanWho service={write.service} region={write.region} level={write.level} />
    </a>
  );
}

/** The badges of a waterfall row. */
export function ConsistencyBadges({ info }: { info: SpanConsistency }) {
  return (
    <>
      {info.staleReads.length > 0 && (
        <span
          class={`badge consistency stale-read ${info.staleReads.some((s) => s.classification === 'violation') ? 'violation' : ''}`}
          title={info.staleReads.map((s) => `${s.key}: ${s.reason}`).join('\n')}
        >
          stale read
        </span>
      )}
      {info.missedBy.length > 0 && (
        <span class="badge consistency missed-write" title={`missed by ${info.missedBy.length} stale read(s)`}>
          missed write
        </span>
      )}
      {info.conflicts.length > 0 && (
        <span class="badge consistency conflict" title={info.conflicts.map((c) => c.explanation).join('\n')}>
          conflict
        </span>
      )}
      {info.versions.length > 0 && (
        <span class="badge consistency conflict-version">
          {info.versions.every((v) => v.won) ? 'won conflict' : 'lost conflict'}
        </span>
      )}
    </>
  );
}

/** The trace header's line: how many findings involve this trace, each selecting its span. */
export function ConsistencySummary({
  traceId,
  found,
  onSelect,
}: {
  traceId: string;
  found: TraceConsistency;
  onSelect: (spanId: string) => void;
}) {
  const reads = found.staleReads.filter((s) => s.read.traceId === traceId);
  const missed = found.staleReads.filter((s) => s.write.traceId === traceId);
  const applies = found.conflicts.filter((c) => c.apply.traceId === traceId);
  if (reads.length + missed.length + applies.length === 0) return null;
  const button = (spanId: string, label: string, key: string) => (
    <button key={key} type="button" class="link-button" onClick={() => onSelect(spanId)}>
      {label}
    </button>
  );
  return (
    <div class="consistency-summary" data-testid="trace-consistency">
      <span class="dim">Consistency:</span>
      {reads.map((s, i) => button(s.read.spanId, `stale read of ${s.key}`, `r${i}`))}
      {missed.map((s, i) => button(s.write.spanId, `write of ${s.key} missed by a read`, `w${i}`))}
      {applies.map((c, i) => button(c.apply.spanId, `conflict on ${c.key} in ${c.region}`, `c${i}`))}
    </div>
  );
}

function StaleReadFacts({ stale, onShow }: { stale: StaleRead; onShow?: (t: string, s: string) => boolean }) {
  return (
    <div class="consistency-finding stale-read-finding">
      <p>
        <strong>Stale read</strong> of <span class="mono">{stale.key}</span>{' '}
        <ClassificationBadge classification={stale.classification} />
      </p>
      <dl class="facts">
        <dt>Read</dt>
        <dd>
          <SpanWho service={stale.read.service} region={stale.read.region} level={stale.read.level} />, returned version{' '}
          <span class="mono">{stale.read.returnedVersion}</span>
        </dd>
        <dt>Missed write</dt>
        <dd>
          <WriteLink write={stale.write} className="missed-write-link" onShow={onShow} />, version{' '}
          <span class="mono">{stale.write.version}</span>, acknowledged{' '}
          {formatTime(nanosToMicros(stale.write.acknowledgedUnixNano))}
        </dd>
        <dt>Staleness</dt>
        <dd data-testid="staleness">{formatMillis(stale.stalenessMillis)}</dd>
        <dt>Why</dt>
        <dd class="reason">{stale.reason}</dd>
      </dl>
    </div>
  );
}

function MissedWriteFacts({ stale, onShow }: { stale: StaleRead; onShow?: (t: string, s: string) => boolean }) {
  return (
    <div class="consistency-finding missed-write-finding">
      <p>
        <strong>Missed</strong> by a read of <span class="mono">{stale.key}</span>{' '}
        <ClassificationBadge classification={stale.classification} />
      </p>
      <dl class="facts">
        <dt>Read</dt>
        <dd>
          <a
            class="stale-read-link"
            href={spanHref(stale.read.traceId, stale.read.spanId)}
            onClick={(event) => onShow?.(stale.read.traceId, stale.read.spanId) && event.preventDefault()}
          >
            <SpanWho service={stale.read.service} region={stale.read.region} level={stale.read.level} />
          </a>
          , {formatMillis(stale.stalenessMillis)} after this write was acknowledged
        </dd>
        <dt>Why</dt>
        <dd class="reason">{stale.reason}</dd>
      </dl>
    </div>
  );
}

export function ConflictFacts({
  conflict,
  onShow,
}: {
  conflict: Conflict;
  onShow?: (t: string, s: string) => boolean;
}) {
  return (
    <div class="consistency-finding conflict-finding">
      <p>
        <strong>Conflict</strong> on <span class="mono">{conflict.key}</span> in {conflict.region}{' '}
        <span class="dim">
          (replicated from {conflict.sourceRegion}, resolved by {conflict.resolution})
        </span>
      </p>
      <dl class="facts">
        <dt>Winner</dt>
        <dd class="winner">
          <span class="mono">{conflict.winner.version}</span>{' '}
          <WriteLink write={conflict.winner.write} onShow={onShow} />
        </dd>
        <dt>{conflict.losers.length > 1 ? 'Losers' : 'Loser'}</dt>
        <dd>
          <ul class="losers">
            {conflict.losers.map((loser) => (
              <li key={loser.version} class="loser">
                <span class="mono">{loser.version}</span> <WriteLink write={loser.write} onShow={onShow} />
              </li>
            ))}
          </ul>
        </dd>
        <dt>Why</dt>
        <dd class="explanation">{conflict.explanation}</dd>
      </dl>
    </div>
  );
}

/** The span panel's Consistency section. */
export function ConsistencySection({
  info,
  onShow,
}: {
  info: SpanConsistency;
  /** Shows a span of the current trace; answers whether it did (else the link navigates). */
  onShow?: (traceId: string, spanId: string) => boolean;
}) {
  return (
    <section class="consistency-section" aria-label="Consistency">
      <h3>Consistency</h3>
      {info.staleReads.map((stale, i) => (
        <StaleReadFacts key={`r${i}`} stale={stale} onShow={onShow} />
      ))}
      {info.missedBy.map((stale, i) => (
        <MissedWriteFacts key={`w${i}`} stale={stale} onShow={onShow} />
      ))}
      {info.conflicts.map((conflict, i) => (
        <ConflictFacts key={`c${i}`} conflict={conflict} onShow={onShow} />
      ))}
      {info.versions.map(({ conflict, won }, i) => (
        <div key={`v${i}`} class="consistency-finding">
          <p>
            This write {won ? 'won' : 'lost'} a conflict on <span class="mono">{conflict.key}</span> in{' '}
            {conflict.region}:{' '}
            <a
              href={spanHref(conflict.apply.traceId, conflict.apply.spanId)}
              onClick={(event) => onShow?.(conflict.apply.traceId, conflict.apply.spanId) && event.preventDefault()}
            >
              the apply that resolved it
            </a>
          </p>
          <p class="explanation dim">{conflict.explanation}</p>
        </div>
      ))}
    </section>
  );
}
