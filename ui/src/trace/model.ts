// A trace as the UI works with it: OTLP/JSON spans turned into a tree in depth-first order
// with times in microseconds relative to the trace's start, the critical path marked, and
// clock skew between services detected (and, on demand, corrected).
import { type OtlpAnyValue, type OtlpKeyValue, type OtlpTrace, PROCESS_KEYS } from '../api';
import { nanosToMicros } from '../format';

export interface SpanEvent {
  time: number;
  name: string;
  attributes: OtlpKeyValue[];
}
export interface SpanLink {
  traceId: string;
  spanId: string;
  attributes: OtlpKeyValue[];
}

export interface SpanNode {
  /** Position in `TraceModel.spans` (depth-first order). */
  index: number;
  spanId: string;
  parentId: string;
  name: string;
  service: string;
  kind: string;
  /** Start in microseconds from the trace's start, after any skew correction. */
  start: number;
  duration: number;
  /** Microseconds this span (and its subtree) was shifted to correct clock skew. */
  shift: number;
  depth: number;
  parent: SpanNode | null;
  children: SpanNode[];
  /** Spans below this one, at any depth. */
  descendants: number;
  error: boolean;
  statusCode: string;
  statusMessage: string;
  attributes: OtlpKeyValue[];
  resource: OtlpKeyValue[];
  scope: string;
  events: SpanEvent[];
  links: SpanLink[];
  /** On the critical path: the chain of spans the trace's end waited for. */
  critical: boolean;
  /** Its start or end fell outside its parent's, from another service's clock. */
  skewed: boolean;
}

export interface TraceModel {
  traceId: string;
  spans: SpanNode[];
  roots: SpanNode[];
  /** Unix microseconds of the earliest span start. */
  startMicros: number;
  durationMicros: number;
  services: string[];
  depth: number;
  errorCount: number;
  skewedCount: number;
  skewAdjusted: boolean;
}

const KINDS = ['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'];
/** Shared by the spans without events or links: one array less per span on large traces. */
const NONE: never[] = [];

function kindName(kind: number | string | undefined): string {
  if (typeof kind === 'number') return KINDS[kind] ?? 'unspecified';
  if (!kind) return 'unspecified';
  return kind.replace(/^SPAN_KIND_/, '').toLowerCase();
}

function statusName(code: number | string | undefined): string {
  if (code === 2 || code === 'STATUS_CODE_ERROR') return 'error';
  if (code === 1 || code === 'STATUS_CODE_OK') return 'ok';
  return 'unset';
}

/** An OTLP/JSON value as text. */
export function valueText(value: OtlpAnyValue | undefined): string {
  if (!value) return '';
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.intValue !== undefined) return String(value.intValue);
  if (value.doubleValue !== undefined) return String(value.doubleValue);
  if (value.boolValue !== undefined) return String(value.boolValue);
  if (value.bytesValue !== undefined) return value.bytesValue;
  if (value.arrayValue) return `[${(value.arrayValue.values ?? []).map(valueText).join(', ')}]`;
  if (value.kvlistValue)
    return `{${(value.kvlistValue.values ?? []).map((kv) => `${kv.key}: ${valueText(kv.value)}`).join(', ')}}`;
  return '';
}

export function attribute(attributes: OtlpKeyValue[], key: string): string | undefined {
  const found = attributes.find((kv) => kv.key === key);
  return found ? valueText(found.value) : undefined;
}

/** The business process IDs a span carries (span attributes, then resource), each once. */
export function processIds(span: Pick<SpanNode, 'attributes' | 'resource'>): string[] {
  const ids: string[] = [];
  for (const key of PROCESS_KEYS) {
    for (const id of [attribute(span.attributes, key), attribute(span.resource, key)]) {
      if (id && !ids.includes(id)) ids.push(id);
    }
  }
  return ids;
}

/** The business process IDs of any span of the trace, sorted. */
export function traceProcessIds(model: TraceModel): string[] {
  const ids = new Set<string>();
  for (const span of model.spans) for (const id of processIds(span)) ids.add(id);
  return [...ids].sort();
}

/** Builds the model; `adjustSkew` shifts skewed subtrees back inside their parents. */
export function buildTrace(trace: OtlpTrace, adjustSkew: boolean): TraceModel {
  const byId = new Map<string, SpanNode>();
  let traceId = '';
  let traceStart = Infinity;
  let traceEnd = -Infinity;
  const raw: SpanNode[] = [];
  for (const resourceSpans of trace.resourceSpans ?? []) {
    const resource = resourceSpans.resource?.attributes ?? [];
    const service = attribute(resource, 'service.name') ?? 'unknown_service';
    for (const scopeSpans of resourceSpans.scopeSpans ?? []) {
      const scope = scopeSpans.scope?.name ?? '';
      for (const span of scopeSpans.spans ?? []) {
        const start = nanosToMicros(span.startTimeUnixNano);
        const end = nanosToMicros(span.endTimeUnixNano);
        traceId = span.traceId;
        traceStart = Math.min(traceStart, start);
        traceEnd = Math.max(traceEnd, end);
        const status = statusName(span.status?.code);
        const node: SpanNode = {
          index: -1,
          spanId: span.spanId,
          parentId: span.parentSpanId ?? '',
          name: span.name,
          service,
          kind: kindName(span.kind),
          start,
          duration: Math.max(0, end - start),
          shift: 0,
          depth: 0,
          parent: null,
          children: [],
          descendants: 0,
          error: status === 'error',
          statusCode: status,
          statusMessage: span.status?.message ?? '',
          attributes: span.attributes ?? [],
          resource,
          scope,
          events: span.events?.length
            ? span.events.map((e) => ({
                time: nanosToMicros(e.timeUnixNano),
                name: e.name,
                attributes: e.attributes ?? [],
              }))
            : NONE,
          links: span.links?.length
            ? span.links.map((l) => ({ traceId: l.traceId, spanId: l.spanId, attributes: l.attributes ?? [] }))
            : NONE,
          critical: false,
          skewed: false,
        };
        raw.push(node);
        byId.set(node.spanId, node);
      }
    }
  }
  if (raw.length === 0) throw new Error('the trace has no spans');
  const roots: SpanNode[] = [];
  for (const node of raw) {
    node.start -= traceStart;
    for (const event of node.events) event.time -= traceStart;
    const parent = node.parentId ? byId.get(node.parentId) : undefined;
    if (parent && parent !== node) {
      node.parent = parent;
      parent.children.push(node);
    } else roots.push(node);
  }
  const byStart = (a: SpanNode, b: SpanNode) => a.start - b.start || a.name.localeCompare(b.name);
  roots.sort(byStart);
  // Depth-first order, iteratively: a 100,000-span chain must not overflow the stack.
  const spans: SpanNode[] = [];
  let skewedCount = 0;
  const visit = (from: SpanNode[]) => {
    const stack: SpanNode[] = [...from].reverse();
    while (stack.length > 0) {
      const node = stack.pop()!;
      if (node.index >= 0) continue;
      node.index = spans.length;
      spans.push(node);
      const parent = node.parent;
      if (parent) {
        node.depth = parent.depth + 1;
        node.shift = parent.shift;
        node.start += parent.shift;
        node.skewed = isSkewed(node, parent);
        if (node.skewed) {
          skewedCount++;
          if (adjustSkew) {
            const fix = skewFix(node, parent);
            node.shift += fix;
            node.start += fix;
          }
        }
      }
      node.children.sort(byStart);
      for (let i = node.children.length - 1; i >= 0; i--) stack.push(node.children[i]);
    }
  };
  visit(roots);
  // Spans whose parents form a cycle were not reached: each becomes a root, cutting the cycle.
  for (const node of raw) {
    if (node.index >= 0) continue;
    if (node.parent) node.parent.children = node.parent.children.filter((child) => child !== node);
    node.parent = null;
    roots.push(node);
    visit([node]);
  }
  for (let i = spans.length - 1; i >= 0; i--) {
    const node = spans[i];
    if (node.parent) node.parent.descendants += node.descendants + 1;
  }
  for (const node of spans) if (node.shift) for (const event of node.events) event.time += node.shift;
  let depth = 0;
  let errorCount = 0;
  let end = 0;
  const services = new Set<string>();
  for (const node of spans) {
    depth = Math.max(depth, node.depth + 1);
    if (node.error) errorCount++;
    services.add(node.service);
    end = Math.max(end, node.start + node.duration);
  }
  for (const root of roots) markCriticalPath(root);
  return {
    traceId,
    spans,
    roots,
    startMicros: traceStart,
    durationMicros: Math.max(end, traceEnd - traceStart),
    services: [...services].sort(),
    depth,
    errorCount,
    skewedCount,
    skewAdjusted: adjustSkew && skewedCount > 0,
  };
}

/**
 * Clock skew: a span of another service that starts before its parent or ends after it
 * although it is shorter. Within one service (one clock) such spans are real (async work).
 */
function isSkewed(node: SpanNode, parent: SpanNode): boolean {
  if (node.service === parent.service || node.duration > parent.duration) return false;
  return node.start < parent.start || node.start + node.duration > parent.start + parent.duration;
}

/** The smallest shift that puts the span inside its parent. */
function skewFix(node: SpanNode, parent: SpanNode): number {
  if (node.start < parent.start) return parent.start - node.start;
  return parent.start + parent.duration - (node.start + node.duration);
}

/**
 * Marks the critical path below `root`: from the end backwards, the child that finished last
 * before the cursor is what the parent waited for; the cursor then moves to that child's start.
 */
function markCriticalPath(root: SpanNode): void {
  root.critical = true;
  const stack = [root];
  while (stack.length > 0) {
    const node = stack.pop()!;
    const nodeEnd = node.start + node.duration;
    let cursor = nodeEnd;
    const children = [...node.children].sort((a, b) => b.start + b.duration - (a.start + a.duration));
    for (const child of children) {
      const childEnd = Math.min(child.start + child.duration, nodeEnd);
      if (childEnd <= cursor && child.start < cursor) {
        child.critical = true;
        stack.push(child);
        cursor = child.start;
      }
    }
  }
}

/** The spans shown when the subtrees of `collapsed` spans are hidden, in tree order. */
export function visibleSpans(model: TraceModel, collapsed: Set<number>): SpanNode[] {
  if (collapsed.size === 0) return model.spans;
  const visible: SpanNode[] = [];
  for (let i = 0; i < model.spans.length;) {
    const node = model.spans[i];
    visible.push(node);
    i += collapsed.has(i) ? node.descendants + 1 : 1;
  }
  return visible;
}

/** Spans whose name, service, ID or an attribute value contains `text` (case-insensitive). */
export function findSpans(model: TraceModel, text: string): number[] {
  const needle = text.trim().toLowerCase();
  if (!needle) return [];
  const matches: number[] = [];
  for (const span of model.spans) {
    const hit =
      span.name.toLowerCase().includes(needle) ||
      span.service.toLowerCase().includes(needle) ||
      span.spanId.includes(needle) ||
      span.attributes.some(
        (kv) => kv.key.toLowerCase().includes(needle) || valueText(kv.value).toLowerCase().includes(needle),
      );
    if (hit) matches.push(span.index);
  }
  return matches;
}
