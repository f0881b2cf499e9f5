// The query port's JSON APIs the UI reads (crates/server/src/api/native*.rs,
// derived_metrics.rs, processes.rs and consistency.rs). Every call answers the decoded JSON
// or throws an ApiError carrying the server's message (`{"error": {"code", "message"}}`) and
// the HTTP status.

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

export async function getJson<T>(url: string, signal?: AbortSignal): Promise<T> {
  const response = await fetch(url, { signal, headers: { accept: 'application/json' } });
  const text = await response.text();
  let body: any = undefined;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    // A plain-text answer (not JSON) is reported as it is.
  }
  if (!response.ok) {
    const error = body?.error ?? {};
    throw new ApiError(error.message ?? (text || `HTTP ${response.status}`), response.status);
  }
  return body as T;
}

export interface TraceSummary {
  traceId: string;
  rootService: string;
  rootName: string;
  startTimeUnixNano: string;
  durationNanos: string;
  spanCount: number;
  errorCount: number;
  services: string[];
  matched?: number;
}

export interface SearchAnswer {
  traces: TraceSummary[];
  nextCursor?: string | null;
}

export interface OtlpAnyValue {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
  bytesValue?: string;
  arrayValue?: { values?: OtlpAnyValue[] };
  kvlistValue?: { values?: OtlpKeyValue[] };
}
export interface OtlpKeyValue {
  key: string;
  value?: OtlpAnyValue;
}
export interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind?: number | string;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes?: OtlpKeyValue[];
  events?: { timeUnixNano: string; name: string; attributes?: OtlpKeyValue[] }[];
  links?: { traceId: string; spanId: string; attributes?: OtlpKeyValue[] }[];
  status?: { code?: number | string; message?: string };
}
export interface OtlpTrace {
  resourceSpans: {
    resource?: { attributes?: OtlpKeyValue[] };
    scopeSpans?: { scope?: { name?: string; version?: string }; spans?: OtlpSpan[] }[];
  }[];
}

export interface Operation {
  name: string;
  spanKind: string;
}

export interface MetricPoint {
  startTimeUnixNano: string;
  calls: number;
  errors: number;
  ratePerSecond: number;
  errorRatePerSecond: number;
  p50Millis: number | null;
  p95Millis: number | null;
  p99Millis: number | null;
}
export interface Exemplar {
  traceId: string;
  spanId: string;
  durationNanos: string;
  timeUnixNano: string;
}
export interface MetricSeries {
  labels: Record<string, string>;
  points: MetricPoint[];
  exemplars: Exemplar[];
}
export interface SpanMetricsAnswer {
  intervalSeconds: number;
  start: string;
  end: string;
  stepNanos: string;
  series: MetricSeries[];
}

export interface GraphEdge {
  client: string;
  server: string;
  connectionType: string;
  calls: number;
  failed: number;
  errorRate: number;
  p50Millis: number | null;
  p90Millis: number | null;
  p99Millis: number | null;
}
export interface GraphNode {
  name: string;
  virtual: boolean;
  callsIn: number;
  failedIn: number;
  callsOut: number;
}
export interface ServiceGraphAnswer {
  edges: GraphEdge[];
  nodes: GraphNode[];
}

export interface ParseCheck {
  valid: boolean;
  error?: { message: string; offset?: number; line?: number; column?: number };
}

/** A span as the process and links APIs describe it (crates/server/src/api/processes.rs). */
export interface BriefSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string | null;
  service: string;
  name: string;
  kind: string;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  error: boolean;
  inProcess?: boolean;
}
export interface ProcessStep {
  traceId: string;
  rootService: string;
  rootName: string;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  durationNanos: string;
  spanCount: number;
  errorCount: number;
  processSpanCount: number;
  services: string[];
  spans: BriefSpan[];
}
export interface ProcessHop {
  producer: BriefSpan;
  consumer: BriefSpan;
  via: 'link' | 'message_id';
  messageId: string | null;
  messagingSystem: string | null;
  destination: string | null;
  queueWaitNanos: string;
}
export interface ProcessAnswer {
  id: string;
  keys: string[];
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  durationNanos: string;
  partial: boolean;
  traceCount: number;
  spanCount: number;
  services: string[];
  steps: ProcessStep[];
  gaps: { fromTraceId: string; toTraceId: string; gapNanos: string }[];
  hops: ProcessHop[];
}
export interface ProcessSummary {
  id: string;
  firstTimeUnixNano: string;
  lastTimeUnixNano: string;
  traceCount: number;
  services: string[];
}
export interface TraceLinkEntry {
  span: BriefSpan;
  linkedTraceId: string;
  linkedSpanId: string;
  linked: BriefSpan | null;
  via: 'link' | 'message_id';
  messageId: string | null;
  queueWaitNanos: string | null;
}
export interface TraceLinksAnswer {
  traceId: string;
  outgoing: TraceLinkEntry[];
  incoming: TraceLinkEntry[];
  partial: boolean;
}

/** The consistency analysis (crates/server/src/api/consistency.rs): a read or write span. */
export interface ConsistencyRead {
  traceId: string;
  spanId: string;
  service: string;
  region: string;
  level: string;
  returnedVersion: string;
  startTimeUnixNano: string;
}
export interface ConsistencyWrite {
  traceId: string;
  spanId: string;
  service: string;
  region: string;
  level: string;
  version: string;
  acknowledgedUnixNano: string;
}
export type Classification = 'expected' | 'violation' | 'unknown';
export const CLASSIFICATIONS: Classification[] = ['violation', 'unknown', 'expected'];
export interface StaleRead {
  key: string;
  system: string;
  collection: string;
  read: ConsistencyRead;
  write: ConsistencyWrite;
  stalenessNanos: string;
  stalenessMillis: number;
  classification: Classification;
  reason: string;
}
export interface StaleReadsAnswer {
  staleReads: StaleRead[];
  matched: number;
  truncated: boolean;
}
export interface LagPoint {
  startTimeUnixNano: string;
  count: number;
  minMillis: number;
  maxMillis: number;
  p50Millis: number | null;
  p99Millis: number | null;
}
export interface LagPair {
  sourceRegion: string;
  replicaRegion: string;
  count: number;
  minMillis: number;
  maxMillis: number;
  meanMillis: number;
  p50Millis: number | null;
  p90Millis: number | null;
  p99Millis: number | null;
  series: LagPoint[];
  exemplars: { traceId: string; spanId: string; lagNanos: string; timeUnixNano: string }[];
}
export interface ReplicationLagAnswer {
  intervalSeconds: number;
  pairs: LagPair[];
}
export interface ConflictVersion {
  version: string;
  write: ConsistencyWrite | null;
}
export interface Conflict {
  key: string;
  region: string;
  sourceRegion: string;
  resolution: string;
  apply: { traceId: string; spanId: string; startTimeUnixNano: string };
  winner: ConflictVersion;
  losers: ConflictVersion[];
  explanation: string;
}
export interface ConflictsAnswer {
  conflicts: Conflict[];
  matched: number;
  truncated: boolean;
}
export interface LevelUsage {
  service: string;
  system: string;
  collection: string;
  operation: string;
  level: string;
  access: 'read' | 'write';
  spans: number;
}
export interface RiskyPattern {
  service: string;
  collection: string;
  readLevel: string;
  writeLevel: string;
  reads: number;
  staleReads: number;
  example: { traceId: string; spanId: string };
}
export interface LevelsAnswer {
  usage: LevelUsage[];
  riskyPatterns: RiskyPattern[];
  staleReadsByRegion: { sourceRegion: string; replicaRegion: string; classification: Classification; count: number }[];
  counters: Record<string, number>;
}

/** The attribute keys that hold a business process ID (the server's default). */
export const PROCESS_KEYS = ['business_process.id'];

export const api = {
  services: (signal?: AbortSignal) => getJson<{ services: string[] }>('/api/v1/services', signal),
  operations: (service: string, signal?: AbortSignal) =>
    getJson<{ operations: Operation[] }>(`/api/v1/services/${encodeURIComponent(service)}/operations`, signal),
  search: (query: string, signal?: AbortSignal) => getJson<SearchAnswer>(`/api/v1/search?${query}`, signal),
  traceql: (query: string, signal?: AbortSignal) => getJson<SearchAnswer>(`/api/v1/traceql/search?${query}`, signal),
  parse: (q: string, signal?: AbortSignal) =>
    getJson<ParseCheck>(`/api/v1/traceql/parse?q=${encodeURIComponent(q)}`, signal),
  trace: (id: string, signal?: AbortSignal) => getJson<OtlpTrace>(`/api/v1/traces/${encodeURIComponent(id)}`, signal),
  tags: (signal?: AbortSignal) => getJson<Record<string, string[] | null>>('/api/v1/tags', signal),
  tagValues: (key: string, scope?: string, signal?: AbortSignal) =>
    getJson<{ values: string[] }>(
      `/api/v1/tags/${encodeURIComponent(key)}/values${scope ? `?scope=${scope}` : ''}`,
      signal,
    ),
  spanMetrics: (query: string, signal?: AbortSignal) =>
    getJson<SpanMetricsAnswer>(`/api/v1/span-metrics?${query}`, signal),
  serviceGraph: (query: string, signal?: AbortSignal) =>
    getJson<ServiceGraphAnswer>(`/api/v1/service-graph?${query}`, signal),
  process: (id: string, signal?: AbortSignal) =>
    getJson<ProcessAnswer>(`/api/v1/processes/${encodeURIComponent(id)}`, signal),
  processes: (query: string, signal?: AbortSignal) =>
    getJson<{ processes: ProcessSummary[]; partial: boolean }>(`/api/v1/processes?${query}`, signal),
  traceLinks: (id: string, signal?: AbortSignal) =>
    getJson<TraceLinksAnswer>(`/api/v1/traces/${encodeURIComponent(id)}/links`, signal),
  staleReads: (query: string, signal?: AbortSignal) =>
    getJson<StaleReadsAnswer>(`/api/v1/consistency/stale-reads?${query}`, signal),
  replicationLag: (query: string, signal?: AbortSignal) =>
    getJson<ReplicationLagAnswer>(`/api/v1/consistency/replication-lag?${query}`, signal),
  conflicts: (query: string, signal?: AbortSignal) =>
    getJson<ConflictsAnswer>(`/api/v1/consistency/conflicts?${query}`, signal),
  consistencyLevels: (signal?: AbortSignal) => getJson<LevelsAnswer>('/api/v1/consistency/levels', signal),
};
