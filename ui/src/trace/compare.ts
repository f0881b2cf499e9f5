// The structural difference of two traces. Each span is keyed by its path from the root
// (service and operation of every ancestor) and its occurrence among siblings with the same
// path, so the same call in both traces meets itself even when IDs and timings differ.
import type { SpanNode, TraceModel } from './model';

export type Change = 'missing' | 'added' | 'slower' | 'faster' | 'same';

export interface DiffRow {
  path: string;
  service: string;
  name: string;
  depth: number;
  durationA: number | null;
  durationB: number | null;
  change: Change;
}

/** Relative change in duration that counts as slower or faster. */
const THRESHOLD = 0.1;
/** Changes smaller than this (microseconds) are noise whatever their ratio. */
const MIN_DELTA_MICROS = 100;

function keyed(model: TraceModel): Map<string, SpanNode> {
  const keys = new Map<string, SpanNode>();
  const pathOf = new Map<number, string>();
  for (const span of model.spans) {
    const base = `${span.parent ? pathOf.get(span.parent.index) : ''}/${span.service}:${span.name}`;
    let n = 0;
    while (keys.has(`${base}#${n}`)) n++;
    const key = `${base}#${n}`;
    pathOf.set(span.index, key);
    keys.set(key, span);
  }
  return keys;
}

export function diffTraces(a: TraceModel, b: TraceModel): DiffRow[] {
  const left = keyed(a);
  const right = keyed(b);
  const rows: DiffRow[] = [];
  const row = (path: string, span: SpanNode, durationA: number | null, durationB: number | null): DiffRow => {
    let change: Change = 'same';
    if (durationB === null) change = 'missing';
    else if (durationA === null) change = 'added';
    else if (Math.abs(durationB - durationA) >= MIN_DELTA_MICROS) {
      if (durationB > durationA * (1 + THRESHOLD)) change = 'slower';
      else if (durationB < durationA * (1 - THRESHOLD)) change = 'faster';
    }
    return { path, service: span.service, name: span.name, depth: span.depth, durationA, durationB, change };
  };
  for (const [path, span] of left) rows.push(row(path, span, span.duration, right.get(path)?.duration ?? null));
  for (const [path, span] of right) if (!left.has(path)) rows.push(row(path, span, null, span.duration));
  rows.sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
  return rows;
}
