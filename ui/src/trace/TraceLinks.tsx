// The trace's links to other traces and the traces that link to it (backlinks), from
// `/api/v1/traces/{id}/links`, with the queue wait of producer → consumer hops; and the
// business processes the trace belongs to, each opening its timeline.
import { api, type TraceLinkEntry } from '../api';
import { useAsync } from '../components/common';
import { formatMicros, nanosToMicros, serviceColor } from '../format';
import { href } from '../router';

function wait(nanos: string | null): string | null {
  if (nanos === null) return null;
  const micros = nanos.startsWith('-') ? -nanosToMicros(nanos.slice(1)) : nanosToMicros(nanos);
  return `queue wait ${formatMicros(micros)}`;
}

function Entry({ link, incoming }: { link: TraceLinkEntry; incoming: boolean }) {
  const other = link.linked;
  const details = [
    wait(link.queueWaitNanos),
    link.via === 'message_id' ? 'same message ID' : null,
    link.messageId,
  ].filter(Boolean);
  return (
    <li class="trace-link-entry" data-trace-id={link.linkedTraceId}>
      <a href={href(`/trace/${link.linkedTraceId}`, { span: link.linkedSpanId })}>
        {other ? (
          <>
            <span class="service-mark" style={{ background: serviceColor(other.service) }} />
            {other.service}: {other.name}
          </>
        ) : (
          <span class="mono">{link.linkedTraceId.slice(0, 16)}… (not stored)</span>
        )}
      </a>{' '}
      <span class="dim">
        {incoming ? 'links to' : 'from'} {link.span.service}: {link.span.name}
        {details.length > 0 && ` · ${details.join(' · ')}`}
      </span>
    </li>
  );
}

export function TraceLinks({ traceId }: { traceId: string }) {
  const links = useAsync((signal) => api.traceLinks(traceId, signal), [traceId]);
  if (links.error) return <p class="dim">Linked traces unavailable: {links.error.message}</p>;
  if (!links.data) {
    return (
      <p class="dim" role="status">
        Looking for linked traces…
      </p>
    );
  }
  const { outgoing, incoming, partial } = links.data;
  if (outgoing.length === 0 && incoming.length === 0) return null;
  return (
    <section class="trace-links" aria-label="Linked traces">
      {outgoing.length > 0 && (
        <>
          <h3>Links to ({outgoing.length})</h3>
          <ul data-testid="links-outgoing">
            {outgoing.map((link, i) => (
              <Entry key={i} link={link} incoming={false} />
            ))}
          </ul>
        </>
      )}
      {incoming.length > 0 && (
        <>
          <h3>Linked from ({incoming.length})</h3>
          <ul data-testid="links-incoming">
            {incoming.map((link, i) => (
              <Entry key={i} link={link} incoming={true} />
            ))}
          </ul>
        </>
      )}
      {partial && <p class="dim">Only part of the candidate traces were read.</p>}
    </section>
  );
}

export function ProcessChips({ ids }: { ids: string[] }) {
  if (ids.length === 0) return null;
  return (
    <div class="process-chips">
      <span class="dim">Business process:</span>
      {ids.map((id) => (
        <a key={id} class="chip process-link" href={`/processes/${encodeURIComponent(id)}`}>
          {id}
        </a>
      ))}
    </div>
  );
}
