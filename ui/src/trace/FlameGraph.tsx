// The flame graph: spans stacked by depth on the time axis, drawn on a canvas so any number
// of spans costs one pass. A click selects the span under the pointer.
import { useEffect, useRef } from 'preact/hooks';
import { serviceColor } from '../format';
import type { SpanNode, TraceModel } from './model';
import { sizedContext } from './canvas';

const ROW = 20;
const MAX_HEIGHT = 16_000;
const ERROR_COLOR = '#d93025';

interface Props {
  model: TraceModel;
  view: [number, number];
  selected: number | null;
  onSelect: (index: number) => void;
}

export function FlameGraph({ model, view, selected, onSelect }: Props) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const height = Math.min(model.depth * ROW, MAX_HEIGHT);

  useEffect(() => {
    const element = canvas.current;
    if (!element) return;
    const draw = () => {
      const { context, width } = sizedContext(element, height);
      context.font = '11px system-ui, sans-serif';
      context.textBaseline = 'middle';
      const [from, to] = view;
      const scale = width / Math.max(to - from, 1e-9);
      // Visible spans grouped by service: one fill style per color, not per span.
      const groups = new Map<string, SpanNode[]>();
      for (const span of model.spans) {
        const x = (span.start - from) * scale;
        if (x > width || x + span.duration * scale < 0 || span.depth * ROW >= height) continue;
        let group = groups.get(span.service);
        if (!group) groups.set(span.service, (group = []));
        group.push(span);
      }
      const box = (span: SpanNode) => {
        const x = (span.start - from) * scale;
        return { x, y: span.depth * ROW, w: span.duration * scale };
      };
      for (const [service, spans] of groups) {
        context.fillStyle = serviceColor(service);
        for (const span of spans) {
          const { x, y, w } = box(span);
          context.fillRect(x, y, Math.max(w - 0.5, 0.5), ROW - 1);
        }
      }
      for (const spans of groups.values()) {
        for (const span of spans) {
          const { x, y, w } = box(span);
          if (span.error) {
            context.fillStyle = ERROR_COLOR;
            context.fillRect(x, y + ROW - 4, Math.max(w - 0.5, 0.5), 3);
          }
          if (span.index === selected) {
            context.strokeStyle = '#000';
            context.lineWidth = 2;
            context.strokeRect(x + 1, y + 1, Math.max(w - 2, 1), ROW - 3);
          }
          if (w > 40) {
            context.fillStyle = '#fff';
            const left = Math.max(x, 0) + 4;
            context.fillText(`${span.service}: ${span.name}`, left, y + ROW / 2, Math.min(x + w, width) - left - 4);
          }
        }
      }
    };
    // The observer also calls back once at the start: that is the first drawing.
    const observer = new ResizeObserver(draw);
    observer.observe(element);
    return () => observer.disconnect();
  }, [model, view, selected, height]);

  const onClick = (event: MouseEvent) => {
    const box = (event.currentTarget as HTMLElement).getBoundingClientRect();
    const [from, to] = view;
    const time = from + ((event.clientX - box.left) / box.width) * (to - from);
    const depth = Math.floor((event.clientY - box.top) / ROW);
    const hit = model.spans.find((s) => s.depth === depth && s.start <= time && time <= s.start + s.duration);
    if (hit) onSelect(hit.index);
  };
  return (
    <div class="flame panel">
      <canvas ref={canvas} style={{ height: `${height}px` }} onClick={onClick} aria-label="Flame graph" role="img" />
    </div>
  );
}
