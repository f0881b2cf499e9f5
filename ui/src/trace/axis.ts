// The time axis of the process timeline: to scale, or with long idle gaps compressed so that
// steps of milliseconds stay visible in a process of hours. Both map a time (unix
// microseconds) to a percent of the axis's width.

export interface Axis {
  /** Percent of the width at unix microseconds `micros`. */
  at(micros: number): number;
  /** Compressed gaps: where they are drawn (percent) and how long they really were. */
  breaks: { at: number; micros: number }[];
}

export function linearAxis(start: number, total: number): Axis {
  const span = Math.max(1, total);
  return { at: (micros) => ((micros - start) / span) * 100, breaks: [] };
}

/** `[start, end]` intervals merged where they overlap or touch, by start. */
export function mergeIntervals(intervals: [number, number][]): [number, number][] {
  const merged: [number, number][] = [];
  for (const [from, to] of [...intervals].sort((a, b) => a[0] - b[0])) {
    const last = merged[merged.length - 1];
    if (last && from <= last[1]) last[1] = Math.max(last[1], to);
    else merged.push([from, to]);
  }
  return merged;
}

/** The share of `[start, start + total]` the intervals cover. */
export function coveredShare(intervals: [number, number][], total: number): number {
  const covered = mergeIntervals(intervals).reduce((sum, [from, to]) => sum + (to - from), 0);
  return total > 0 ? covered / total : 1;
}

/**
 * An axis on which each idle gap between the merged intervals takes at most `capShare` of the
 * covered time's width: busy time stays to scale, long gaps become breaks.
 */
export function compactAxis(intervals: [number, number][], capShare = 0.06): Axis {
  const merged = mergeIntervals(intervals);
  if (merged.length === 0) return linearAxis(0, 1);
  const covered = merged.reduce((sum, [from, to]) => sum + Math.max(to - from, 0), 0);
  const cap = Math.max(covered * capShare, 1);
  // Pieces in time order: [from, to, weight before it, its weight].
  const pieces: [number, number, number, number][] = [];
  let weight = 0;
  const breaks: { at: number; micros: number }[] = [];
  merged.forEach(([from, to], i) => {
    if (i > 0) {
      const previous = merged[i - 1][1];
      const gap = from - previous;
      const w = Math.min(gap, cap);
      if (gap > cap) breaks.push({ at: weight + w / 2, micros: gap });
      pieces.push([previous, from, weight, w]);
      weight += w;
    }
    const w = Math.max(to - from, 0);
    pieces.push([from, to, weight, w]);
    weight += w;
  });
  const total = Math.max(weight, 1);
  const at = (micros: number) => {
    let low = 0;
    let high = pieces.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if (pieces[mid][0] <= micros) low = mid;
      else high = mid - 1;
    }
    const [from, to, before, w] = pieces[low];
    const inside = to > from ? Math.min(Math.max((micros - from) / (to - from), 0), 1) : 0;
    return ((before + inside * w) / total) * 100;
  };
  return { at, breaks: breaks.map((b) => ({ at: (b.at / total) * 100, micros: b.micros })) };
}
