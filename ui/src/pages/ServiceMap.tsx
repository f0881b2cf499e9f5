// The service map: who calls whom over the time range in the URL (`range` or `start`/`end`,
// see components/TimeRange; the service graph derived from spans), each edge with its request rate, error rate and p99 latency. Services are laid out
// in columns by their distance from the callers at the edge; a click opens the service page.
import { useMemo } from 'preact/hooks';
import { api, type GraphEdge, type GraphNode } from '../api';
import { Empty, ErrorBox, Loading, useAsync } from '../components/common';
import { rangeOf, rangeQuery, TimeRangePicker } from '../components/TimeRange';
import { formatMillis, formatPercent, formatRate, serviceColor } from '../format';
import { navigate, type Route } from '../router';

const NODE_W = 168;
const NODE_H = 46;
const COL_GAP = 210;
const ROW_GAP = 34;

export function ServiceMapPage({ route }: { route: Route }) {
  const key = route.params.toString();
  const range = useMemo(() => rangeOf(route.params), [key]);
  const graph = useAsync(
    (signal) => api.serviceGraph(new URLSearchParams(rangeQuery(range)).toString(), signal),
    [range],
  );
  const seconds = Math.max(1, (range.end - range.start) / 1000);
  return (
    <div class="map-page">
      <header class="panel">
        <TimeRangePicker route={route} range={range} />
      </header>
      {graph.error ? (
        <ErrorBox title="Could not load the service graph" error={graph.error} />
      ) : !graph.data ? (
        <Loading what="the service map" />
      ) : graph.data.nodes.length === 0 ? (
        <Empty>No calls between services in {range.label}.</Empty>
      ) : (
        <ServiceMap nodes={graph.data.nodes} edges={graph.data.edges} seconds={seconds} search={key} />
      )}
    </div>
  );
}

/** Columns by longest path from the nodes nobody calls (cycles are cut after n rounds). */
function layout(nodes: GraphNode[], edges: GraphEdge[]): Map<string, { x: number; y: number }> {
  const column = new Map(nodes.map((n) => [n.name, 0]));
  for (let round = 0; round < nodes.length; round++) {
    let changed = false;
    for (const edge of edges) {
      const next = (column.get(edge.client) ?? 0) + 1;
      if (edge.client !== edge.server && next > (column.get(edge.server) ?? 0) && next < nodes.length) {
        column.set(edge.server, next);
        changed = true;
      }
    }
    if (!changed) break;
  }
  const rows = new Map<number, number>();
  const positions = new Map<string, { x: number; y: number }>();
  for (const node of [...nodes].sort((a, b) => a.name.localeCompare(b.name))) {
    const col = column.get(node.name) ?? 0;
    const row = rows.get(col) ?? 0;
    rows.set(col, row + 1);
    positions.set(node.name, { x: 20 + col * (NODE_W + COL_GAP), y: 20 + row * (NODE_H + ROW_GAP) });
  }
  return positions;
}

function ServiceMap({
  nodes,
  edges,
  seconds,
  search,
}: {
  nodes: GraphNode[];
  edges: GraphEdge[];
  /** Length of the range, for rates. */
  seconds: number;
  /** The page's query string (the range), kept when opening a service. */
  search: string;
}) {
  const positions = layout(nodes, edges);
  const width = Math.max(...[...positions.values()].map((p) => p.x)) + NODE_W + 20;
  const height = Math.max(...[...positions.values()].map((p) => p.y)) + NODE_H + 20;
  const open = (node: GraphNode) =>
    !node.virtual && navigate(`/service/${encodeURIComponent(node.name)}${search ? `?${search}` : ''}`);
  return (
    <>
      <div class="panel map-scroll">
        <svg
          class="service-map"
          width={width}
          height={height}
          viewBox={`0 0 ${width} ${height}`}
          role="img"
          aria-label="Service map"
        >
          <defs>
            <marker
              id="arrow"
              viewBox="0 0 10 10"
              refX="10"
              refY="5"
              markerWidth="8"
              markerHeight="8"
              orient="auto-start-reverse"
            >
              <path d="M 0 0 L 10 5 L 0 10 z" class="arrowhead" />
            </marker>
          </defs>
          {edges.map((edge) => {
            const from = positions.get(edge.client);
            const to = positions.get(edge.server);
            if (!from || !to) return null;
            const x1 = from.x + NODE_W;
            const y1 = from.y + NODE_H / 2;
            const x2 = to.x;
            const y2 = to.y + NODE_H / 2;
            const mid = (x1 + x2) / 2;
            return (
              <g key={`${edge.client}->${edge.server}`} class={edge.errorRate > 0 ? 'edge failing' : 'edge'}>
                <path d={`M ${x1} ${y1} C ${mid} ${y1}, ${mid} ${y2}, ${x2} ${y2}`} marker-end="url(#arrow)" />
                <text x={mid} y={(y1 + y2) / 2 - 18} text-anchor="middle">
                  {formatRate(edge.calls / seconds)} · {formatPercent(edge.errorRate)} errors
                </text>
                <text x={mid} y={(y1 + y2) / 2 - 4} text-anchor="middle">
                  p99 {formatMillis(edge.p99Millis)}
                </text>
              </g>
            );
          })}
          {nodes.map((node) => {
            const p = positions.get(node.name)!;
            return (
              <g
                key={node.name}
                class={node.virtual ? 'node virtual' : 'node'}
                data-service={node.name}
                transform={`translate(${p.x} ${p.y})`}
                tabIndex={node.virtual ? undefined : 0}
                role={node.virtual ? undefined : 'link'}
                onClick={() => open(node)}
                onKeyDown={(e) => e.key === 'Enter' && open(node)}
              >
                <rect width={NODE_W} height={NODE_H} rx={8} style={{ stroke: serviceColor(node.name) }} />
                <text x={10} y={19} class="node-name">
                  {node.name}
                </text>
                <text x={10} y={36} class="node-stats">
                  {node.callsIn > 0
                    ? `${formatRate(node.callsIn / seconds)} in · ${formatPercent(node.failedIn / node.callsIn)} err`
                    : `${formatRate(node.callsOut / seconds)} out`}
                </text>
              </g>
            );
          })}
        </svg>
      </div>
      <table class="panel edges">
        <thead>
          <tr>
            <th>Caller</th>
            <th>Callee</th>
            <th>Type</th>
            <th>Rate</th>
            <th>Errors</th>
            <th>p50</th>
            <th>p99</th>
          </tr>
        </thead>
        <tbody>
          {edges.map((edge) => (
            <tr key={`${edge.client}->${edge.server}`} class="edge-row">
              <td>{edge.client}</td>
              <td>{edge.server}</td>
              <td>{edge.connectionType}</td>
              <td>{formatRate(edge.calls / seconds)}</td>
              <td>{formatPercent(edge.errorRate)}</td>
              <td>{formatMillis(edge.p50Millis)}</td>
              <td>{formatMillis(edge.p99Millis)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}
