// The minimap: every span of the trace drawn small on a canvas (rows squeezed to its height),
// with the zoomed window on top. Dragging across it zooms the waterfall to that window;
// a double click shows the whole trace again.
import { useEffect, useRef, useState } from 'preact/hooks';
import { serviceColor } from '../format';
import type { TraceModel } from './model';
import { sizedContext } from './canvas';

const HEIGHT = 56;
const ERROR_COLOR = '#d93025';

interface Props {
  model: TraceModel;
  view: [number, number];
  onView: (view: [number, number]) => void;
}

export function Minimap({ model, view, onView }: Props) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const [drag, setDrag] = useState<[number, number] | null>(null);

  useEffect(() => {
    const element = canvas.current;
    if (!element) return;
    const draw = () => {
      const { context, width } = sizedContext(element, HEIGHT);
      const total = model.durationMicros || 1;
      const rowHeight = HEIGHT / model.spans.length;
      // Spans grouped by color: the canvas parses a fill style once per color, not per span.
      const groups = new Map<string, number[]>();
      const errors: number[] = [];
      for (const span of model.spans) {
        if (span.error) {
          errors.push(span.index);
          continue;
        }
        let indexes = groups.get(span.service);
        if (!indexes) groups.set(span.service, (indexes = []));
        indexes.push(span.index);
      }
      const fill = (color: string, indexes: number[]) => {
        context.fillStyle = color;
        for (const index of indexes) {
          const span = model.spans[index];
          context.fillRect(
            (span.start / total) * width,
            index * rowHeight,
            Math.max((span.duration / total) * width, 1),
            Math.max(rowHeight, 1),
          );
        }
      };
      for (const [service, indexes] of groups) fill(serviceColor(service), indexes);
      fill(ERROR_COLOR, errors);
    };
    // The observer also calls back once at the start: that is the first drawing.
    const observer = new ResizeObserver(draw);
    observer.observe(element);
    return () => observer.disconnect();
  }, [model]);

  const total = model.durationMicros || 1;
  const fraction = (event: PointerEvent) => {
    const box = (event.currentTarget as HTMLElement).getBoundingClientRect();
    return Math.min(1, Math.max(0, (event.clientX - box.left) / box.width));
  };
  const shown = drag ? [Math.min(...drag), Math.max(...drag)] : [view[0] / total, view[1] / total];
  return (
    <div
      class="minimap"
      aria-label="Minimap: drag to zoom, double-click to reset"
      onPointerDown={(e) => {
        (e.currentTarget as HTMLElement).setPointerCapture(e.pointerId);
        const f = fraction(e);
        setDrag([f, f]);
      }}
      onPointerMove={(e) => drag && setDrag([drag[0], fraction(e)])}
      onPointerUp={() => {
        if (drag && Math.abs(drag[1] - drag[0]) > 0.005) {
          onView([Math.min(...drag) * total, Math.max(...drag) * total]);
        }
        setDrag(null);
      }}
      onDblClick={() => onView([0, total])}
    >
      <canvas ref={canvas} style={{ height: `${HEIGHT}px` }} />
      <div class="minimap-window" style={{ left: `${shown[0] * 100}%`, width: `${(shown[1] - shown[0]) * 100}%` }} />
    </div>
  );
}
