// Formatting of durations, times and counts for people.

/** A duration in microseconds as `1.23s`, `45.6ms`, `789μs`. */
export function formatMicros(micros: number): string {
  const abs = Math.abs(micros);
  if (abs === 0) return '0';
  if (abs >= 60_000_000) return `${(micros / 60_000_000).toFixed(abs >= 600_000_000 ? 0 : 1)}min`;
  if (abs >= 1_000_000) return `${trim(micros / 1_000_000)}s`;
  if (abs >= 1_000) return `${trim(micros / 1_000)}ms`;
  return `${trim(micros)}μs`;
}

export function formatMillis(millis: number | null | undefined): string {
  return millis === null || millis === undefined ? '–' : formatMicros(millis * 1000);
}

function trim(value: number): string {
  return value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2);
}

/** Unix microseconds as a local date and time with milliseconds. */
export function formatTime(unixMicros: number): string {
  const date = new Date(unixMicros / 1000);
  const pad = (n: number, width = 2) => String(n).padStart(width, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${pad(date.getHours())}:${pad(
    date.getMinutes(),
  )}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
}

/** How long ago, roughly: `5s ago`, `3m ago`, `2h ago`. */
export function formatAgo(unixMicros: number, nowMillis = Date.now()): string {
  const seconds = Math.max(0, Math.round(nowMillis / 1000 - unixMicros / 1e6));
  if (seconds < 60) return `${seconds}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h ago`;
  return `${Math.floor(seconds / 86400)}d ago`;
}

/** Unix nanoseconds as a decimal string to unix microseconds (exact to the microsecond). */
export function nanosToMicros(nanos: string | number | undefined): number {
  if (nanos === undefined) return 0;
  const text = String(nanos);
  return text.length > 3 ? Number(text.slice(0, -3)) + Number(text.slice(-3)) / 1000 : Number(text) / 1000;
}

export function formatRate(perSecond: number | null | undefined): string {
  if (perSecond === null || perSecond === undefined) return '–';
  if (perSecond === 0) return '0/s';
  if (perSecond < 1) return `${trim(perSecond * 60)}/min`;
  return perSecond >= 10 ? `${perSecond.toFixed(0)}/s` : `${perSecond.toFixed(2)}/s`;
}

export function formatPercent(fraction: number | null | undefined): string {
  return fraction === null || fraction === undefined ? '–' : `${(fraction * 100).toFixed(fraction < 0.1 ? 1 : 0)}%`;
}

/** A stable color per service name (hue from a string hash), readable in both themes. */
export function serviceColor(service: string): string {
  let hash = 2166136261;
  for (let i = 0; i < service.length; i++) hash = Math.imul(hash ^ service.charCodeAt(i), 16777619);
  const hue = (hash >>> 0) % 360;
  return `hsl(${hue} 62% 52%)`;
}
