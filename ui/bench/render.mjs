// Rendering benchmark of the trace page: starts a sextant (the binary given as the first
// argument) on loopback ports of its own with an empty data directory, sends one trace of
// each size (10,000 and 100,000 spans by default, OTLP/HTTP JSON in batches), opens each in
// Debian's chromium and measures:
//
// - fetch: the trace API request, from its start to its last byte (Resource Timing), and
//   JSON.parse of that answer alone (the browser's share of the load that is not the UI's);
// - first rows: navigation start to the first waterfall rows on screen (fetch, JSON parse,
//   tree, critical path, first paint);
// - rows in DOM: how many rows exist while the whole trace is "shown" (virtualization);
// - scroll frames: the time of each of 60 animation frames while jumping through the whole
//   waterfall (p50 and max; 16.7 ms is a frame at 60 Hz), and collapse of the root (click to
//   repaint).
//
// Usage: node bench/render.mjs path/to/sextant [sizes...]   (e.g. 10000 100000)
// Writes the results as JSON to stdout and a Markdown table to stderr.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launch } from '../test/browser.mjs';

const [binary, ...sizeArgs] = process.argv.slice(2);
if (!binary) {
  console.error('usage: node bench/render.mjs path/to/sextant [sizes...]');
  process.exit(2);
}
const sizes = sizeArgs.length > 0 ? sizeArgs.map(Number) : [10_000, 100_000];
const QUERY = '127.0.0.1:26886';
const OTLP = '127.0.0.1:24518';
const BATCH_SPANS = 2_000;
const SERVICES = Array.from({ length: 12 }, (_, i) => `service-${i}`);

/** A random tree of `count` spans: each span's children fit inside it. */
function generateTrace(count) {
  const traceId = randomBytes(16).toString('hex');
  const base = BigInt(Date.now() - 60_000) * 1_000_000n;
  const spans = [];
  const queue = [];
  const add = (parent, startNanos, durationNanos, depth) => {
    const span = {
      traceId,
      spanId: randomBytes(8).toString('hex'),
      parentSpanId: parent?.spanId,
      name: `operation-${spans.length % 50}`,
      kind: 2,
      startTimeUnixNano: String(base + BigInt(startNanos)),
      endTimeUnixNano: String(base + BigInt(startNanos + durationNanos)),
      attributes: [{ key: 'bench.index', value: { intValue: String(spans.length) } }],
      service: SERVICES[(depth * 7 + spans.length) % SERVICES.length],
      ...(spans.length % 97 === 0 ? { status: { code: 2 } } : {}),
      start: startNanos,
      duration: durationNanos,
    };
    spans.push(span);
    queue.push(span);
  };
  add(null, 0, 10_000_000_000, 0);
  for (let head = 0; spans.length < count; head++) {
    const parent = queue[head];
    const children = Math.min(8, count - spans.length);
    const slot = parent.duration / children;
    for (let i = 0; i < children; i++) {
      add(parent, Math.round(parent.start + i * slot + slot * 0.05), Math.max(1000, Math.round(slot * 0.9)), head + 1);
    }
  }
  return { traceId, spans };
}

async function send(spans) {
  for (let i = 0; i < spans.length; i += BATCH_SPANS) {
    const byService = new Map();
    for (const { service, start, duration, ...span } of spans.slice(i, i + BATCH_SPANS)) {
      if (!byService.has(service)) byService.set(service, []);
      byService.get(service).push(span);
    }
    const body = {
      resourceSpans: [...byService].map(([service, list]) => ({
        resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] },
        scopeSpans: [{ spans: list }],
      })),
    };
    const response = await fetch(`http://${OTLP}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (!response.ok) throw new Error(`OTLP export failed: ${response.status} ${await response.text()}`);
  }
}

async function waitForServer(server) {
  for (let i = 0; i < 200; i++) {
    if (server.exitCode !== null) throw new Error(`sextant exited with ${server.exitCode}`);
    try {
      if ((await fetch(`http://${QUERY}/api/v1/services`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('sextant did not start');
}

const percentile = (values, p) =>
  [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * p))];

async function measure(page, traceId, spanCount) {
  const started = Date.now();
  await page.goto(`http://${QUERY}/trace/${traceId}`);
  await page.locator('.span-row').first().waitFor({ timeout: 120_000 });
  const firstRowsMs = Date.now() - started;
  const fetchMs = await page.evaluate(() => {
    const entry = performance.getEntriesByType('resource').find((e) => e.name.includes('/api/v1/traces/'));
    return entry ? entry.responseEnd - entry.startTime : null;
  });
  // JSON.parse of the same answer alone: the part of "first rows" that is not the UI's code.
  const parseMs = await page.evaluate(async (id) => {
    const text = await (await fetch(`/api/v1/traces/${id}`)).text();
    const started = performance.now();
    JSON.parse(text);
    return { ms: performance.now() - started, bytes: text.length };
  }, traceId);
  const shown = Number(await page.getByTestId('span-count').textContent());
  if (shown !== spanCount) throw new Error(`the page shows ${shown} spans, expected ${spanCount}`);
  const rowsInDom = await page.locator('.span-row').count();
  const frames = await page.evaluate(async () => {
    const body = document.querySelector('.waterfall-body');
    const steps = 60;
    const times = [];
    let last = performance.now();
    for (let i = 1; i <= steps; i++) {
      body.scrollTop = (body.scrollHeight * i) / steps;
      await new Promise((resolve) => requestAnimationFrame(resolve));
      const now = performance.now();
      times.push(now - last);
      last = now;
    }
    return times;
  });
  await page.locator('.waterfall-body').evaluate((body) => (body.scrollTop = 0));
  const collapseMs = await page.evaluate(async () => {
    const started = performance.now();
    document.querySelector('.span-row .toggle').click();
    await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
    return performance.now() - started;
  });
  return {
    spans: spanCount,
    fetchMs: fetchMs === null ? null : Math.round(fetchMs),
    answerMiB: Math.round((parseMs.bytes / 1048576) * 10) / 10,
    jsonParseMs: Math.round(parseMs.ms),
    firstRowsMs,
    rowsInDom,
    scrollFrameP50Ms: Math.round(percentile(frames, 0.5) * 10) / 10,
    scrollFrameMaxMs: Math.round(Math.max(...frames) * 10) / 10,
    collapseRootMs: Math.round(collapseMs),
  };
}

const dataDir = mkdtempSync(join(tmpdir(), 'sextant-render-bench-'));
const server = spawn(binary, ['serve', '--data-dir', join(dataDir, 'data'), '--log-level', 'warn'], {
  stdio: ['ignore', 'ignore', 'inherit'],
  env: {
    ...process.env,
    SEXTANT_QUERY_ADDRESS: QUERY,
    SEXTANT_QUERY_TEMPO_ADDRESS: '127.0.0.1:23400',
    SEXTANT_RECEIVERS_OTLP_GRPC_ADDRESS: '127.0.0.1:24517',
    SEXTANT_RECEIVERS_OTLP_HTTP_ADDRESS: OTLP,
    SEXTANT_RECEIVERS_ZIPKIN_ADDRESS: '127.0.0.1:29611',
    SEXTANT_METRICS_ENABLED: 'false',
  },
});
let browser;
try {
  await waitForServer(server);
  browser = await launch();
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const results = [];
  for (const size of sizes) {
    const { traceId, spans } = generateTrace(size);
    await send(spans);
    // One warm-up load (the server's caches, the browser's code), then the measured one.
    await measure(page, traceId, size);
    results.push(await measure(page, traceId, size));
  }
  console.log(JSON.stringify(results, null, 2));
  console.error(
    '| spans | answer (MiB) | trace fetch (ms) | JSON.parse (ms) | first rows (ms) | rows in DOM | scroll frame p50 / max (ms) | collapse root (ms) |',
  );
  console.error('|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of results) {
    console.error(
      `| ${r.spans.toLocaleString('en')} | ${r.answerMiB} | ${r.fetchMs} | ${r.jsonParseMs} | ${r.firstRowsMs} | ${r.rowsInDom} | ${r.scrollFrameP50Ms} / ${r.scrollFrameMaxMs} | ${r.collapseRootMs} |`,
    );
  }
} finally {
  await browser?.close();
  server.kill('SIGTERM');
  await new Promise((resolve) => server.once('exit', resolve));
  rmSync(dataDir, { recursive: true, force: true });
}
