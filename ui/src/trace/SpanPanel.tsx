// The selected span's details: identity (with copyable IDs), timing, kind and status, its
// attributes, resource, events and links (a link opens the linked trace at its span), and
// the business process it belongs to (opening the process timeline), and what the
// consistency analysis found about it (a stale read and the write it missed, a conflict).
import type { OtlpKeyValue } from '../api';
import { CopyButton } from '../components/common';
import { formatMicros, formatTime, serviceColor } from '../format';
import { href } from '../router';
import { ConsistencySection, type SpanConsistency } from './Consistency';
import { processIds, type SpanNode, type TraceModel, valueText } from './model';

export function SpanPanel({
  span,
  model,
  consistency,
  onShowSpan,
  onClose,
}: {
  span: SpanNode;
  model: TraceModel;
  consistency?: SpanConsistency;
  /** Shows a span of this trace; false when it is another trace's (the link navigates). */
  onShowSpan?: (traceId: string, spanId: string) => boolean;
  onClose: () => void;
}) {
  return (
    <aside class="span-panel panel" aria-label="Span details">
      <header>
        <span class="service-mark" style={{ background: serviceColor(span.service) }} />
        <h2>
          {span.service}: {span.name}
        </h2>
        <button type="button" class="ghost" aria-label="Close span details" onClick={onClose}>
          ×
        </button>
      </header>
      <dl class="facts">
        <dt>Span ID</dt>
        <dd class="mono">
          {span.spanId} <CopyButton text={span.spanId} label="span ID" />
        </dd>
        {span.parentId && (
          <>
            <dt>Parent</dt>
            <dd class="mono">{span.parentId}</dd>
          </>
        )}
        <dt>Trace ID</dt>
        <dd class="mono">
          {model.traceId} <CopyButton text={model.traceId} label="trace ID" />
        </dd>
        <dt>Start</dt>
        <dd>
          {formatTime(model.startMicros + span.start - span.shift)} (+{formatMicros(span.start)})
        </dd>
        <dt>Duration</dt>
        <dd>{formatMicros(span.duration)}</dd>
        <dt>Kind</dt>
        <dd>{span.kind}</dd>
        <dt>Status</dt>
        <dd class={span.error ? 'status-error' : ''}>
          {span.statusCode}
          {span.statusMessage && `: ${span.statusMessage}`}
        </dd>
        {processIds(span).length > 0 && (
          <>
            <dt>Business process</dt>
            <dd>
              {processIds(span).map((id) => (
                <a key={id} class="process-link" href={`/processes/${encodeURIComponent(id)}`}>
                  {id}{' '}
                </a>
              ))}
              <span class="dim">(timeline)</span>
            </dd>
          </>
        )}
        {span.critical && (
          <>
            <dt>Critical path</dt>
            <dd>yes: the trace's end waited for this span</dd>
          </>
        )}
        {span.shift !== 0 && (
          <>
            <dt>Clock skew</dt>
            <dd>shown shifted by {formatMicros(span.shift)}</dd>
          </>
        )}
      </dl>
      {consistency && <ConsistencySection info={consistency} onShow={onShowSpan} />}
      <Attributes title="Attributes" attributes={span.attributes} />
      <Attributes title="Resource" attributes={span.resource} />
      {span.scope && <p class="dim">Instrumentation scope: {span.scope}</p>}
      {span.events.length > 0 && (
        <section>
          <h3>Events ({span.events.length})</h3>
          <ul class="events">
            {span.events.map((event, i) => (
              <li key={i}>
                <strong>{event.name}</strong> <span class="dim">at +{formatMicros(event.time - span.start)}</span>
                <Attributes attributes={event.attributes} />
              </li>
            ))}
          </ul>
        </section>
      )}
      {span.links.length > 0 && (
        <section>
          <h3>Links ({span.links.length})</h3>
          <ul class="links">
            {span.links.map((link, i) => (
              <li key={i}>
                <a class="span-link mono" href={href(`/trace/${link.traceId}`, { span: link.spanId })}>
                  {link.traceId.slice(0, 16)}… / {link.spanId}
                </a>
                <Attributes attributes={link.attributes} />
              </li>
            ))}
          </ul>
        </section>
      )}
    </aside>
  );
}

function Attributes({ title, attributes }: { title?: string; attributes: OtlpKeyValue[] }) {
  if (attributes.length === 0) return null;
  return (
    <section>
      {title && <h3>{title}</h3>}
      <table class="attributes">
        <tbody>
          {attributes.map((kv, i) => (
            <tr key={i}>
              <th>{kv.key}</th>
              <td class="mono">{valueText(kv.value)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
