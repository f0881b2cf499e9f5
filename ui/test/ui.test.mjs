// Browser tests of the web UI against a running sextant: `SEXTANT_UI_URL` (its query port)
// and `SEXTANT_OTLP_URL` (its OTLP/HTTP receiver). scripts/ui-test.sh starts both.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { launch } from './browser.mjs';
import { seed } from './seed.mjs';

const UI = process.env.SEXTANT_UI_URL ?? 'http://127.0.0.1:16686';
const OTLP = process.env.SEXTANT_OTLP_URL ?? 'http://127.0.0.1:4318';
const SCREENSHOTS = process.env.SEXTANT_SCREENSHOTS;
// The ground truth of the `sextant demo` run scripts/ui-test.sh sends first (JSON lines).
const DEMO_TRUTH = process.env.SEXTANT_DEMO_TRUTH;
const NO_DEMO = DEMO_TRUTH ? false : 'no demo traffic (SEXTANT_DEMO_TRUTH unset)';

/** An order of the demo that was paid and consumed: its checkout and two consumer traces. */
function demoOrder() {
  const records = readFileSync(DEMO_TRUTH, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line));
  const order = records.find((r) => r.type === 'process' && r.id.startsWith('order-') && r.trace_ids.length === 3);
  assert.ok(order, 'the demo consumed an order');
  return order;
}

/** The demo's ground-truth records of `type`; versions and times (integers beyond 2^53) as strings. */
function demoRecords(type) {
  return readFileSync(DEMO_TRUTH, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line.replace(/(:|,|\[)(\d{16,})(?=[,\]}])/g, '$1"$2"')))
    .filter((r) => r.type === type);
}

/** Unix milliseconds as the local date-time the time range picker writes (`start`, `end`). */
function localDateTime(ms) {
  const d = new Date(ms);
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** `start=…&end=…`: an absolute range around the demo's replications, a minute either side. */
function demoRange() {
  return demoWindow().query;
}

/** The demo's replications, a minute either side, in unix milliseconds (whole seconds). */
function demoWindow() {
  const times = demoRecords('replication').flatMap((r) => [r.acknowledged_unix_nanos, r.applied_unix_nanos]);
  const millis = times.map((nanos) => Number(BigInt(nanos) / 1_000_000n));
  const start = Math.floor((Math.min(...millis) - 60_000) / 1000) * 1000;
  const end = Math.ceil((Math.max(...millis) + 60_000) / 1000) * 1000;
  const query = `start=${encodeURIComponent(localDateTime(start))}&end=${encodeURIComponent(localDateTime(end))}`;
  return { start, end, query };
}

/** A duration as the UI formats it (`994ms`, `1.03s`) in milliseconds. */
function parseMillis(text) {
  const match = /^([\d.]+)(μs|ms|s)$/.exec(text.trim());
  assert.ok(match, `a duration: ${text}`);
  return Number(match[1]) * { μs: 1e-3, ms: 1, s: 1000 }[match[2]];
}

let browser;
let page;
let ids;
const pageErrors = [];

before(async () => {
  ids = await seed(OTLP);
  browser = await launch();
  page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.setDefaultTimeout(10_000);
  page.on('pageerror', (error) => pageErrors.push(error.message));
});

after(async () => {
  await browser?.close();
  assert.deepEqual(pageErrors, [], 'no uncaught errors in the page');
});

async function shot(name) {
  if (SCREENSHOTS) await page.screenshot({ path: `${SCREENSHOTS}/${name}.png` });
}

test('search by service lists its traces with counts, and the scatter plot', async () => {
  await page.goto(`${UI}/`);
  await page.getByLabel('Service', { exact: true }).selectOption('frontend');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.locator(`.trace-row[data-trace-id="${ids.failedTrace}"]`).waitFor();
  assert.match(page.url(), /service=frontend/);
  const failed = page.locator(`.trace-row[data-trace-id="${ids.failedTrace}"]`);
  assert.match(await failed.textContent(), /4 spans/);
  assert.match(await failed.textContent(), /2 errors/);
  assert.equal(
    await page.locator(`.trace-row[data-trace-id="${ids.workerTrace}"]`).count(),
    0,
    'worker is another service',
  );
  assert.equal(await page.locator('.scatter .point.error').count(), 1);
  await shot('search');
  await page.locator('.scatter .point.error').click();
  await page.waitForURL(`**/trace/${ids.failedTrace}`);
});

test('search by operation and attribute filter', async () => {
  await page.goto(`${UI}/search?service=cart&operation=POST%20%2Fcart&attr=http.route%3D%2Fcart`);
  await page.locator('.trace-row').first().waitFor();
  assert.equal(await page.locator('.trace-row').count(), 2);
  assert.equal(await page.getByLabel('Operation').inputValue(), 'POST /cart');
});

test('a page of results, then the next', async () => {
  await page.goto(`${UI}/search?service=frontend&limit=2`);
  await page.locator('.trace-row').first().waitFor();
  assert.equal(await page.locator('.trace-row').count(), 2);
  await page.getByRole('button', { name: 'Load more' }).click();
  await page.locator('.trace-row').nth(2).waitFor();
  assert.equal(await page.locator('.trace-row').count(), 3);
});

test('search by TraceQL finds the trace with the attribute', async () => {
  await page.goto(`${UI}/search?mode=traceql`);
  const editor = page.getByLabel('TraceQL query');
  await editor.fill('{ span.customer.tier = "gold" && status = error }');
  await editor.press('Enter');
  await page.locator('.trace-row').first().waitFor();
  assert.equal(await page.locator('.trace-row').count(), 1);
  assert.equal(await page.locator('.trace-row').getAttribute('data-trace-id'), ids.failedTrace);
  assert.equal(new URL(page.url()).searchParams.get('q'), '{ span.customer.tier = "gold" && status = error }');
  assert.ok((await page.locator('.traceql-highlight .tq-attribute').count()) >= 1, 'attributes are highlighted');
  await shot('search-traceql');
});

test('a TraceQL error is shown inline at its position', async () => {
  await page.goto(`${UI}/search?mode=traceql`);
  assert.match(await page.locator('.state.empty').textContent(), /TraceQL query/, 'no search without a query');
  await page.getByLabel('TraceQL query').fill('{ .customer.tier = }');
  const error = page.locator('.traceql-error');
  await error.waitFor();
  assert.match(await error.textContent(), /line 1, column 20/);
  assert.equal(await page.locator('.traceql-highlight .tq-error').textContent(), '}');
  await shot('traceql-error');
});

test('TraceQL autocompletes attribute names from the tags API', async () => {
  await page.goto(`${UI}/search?mode=traceql`);
  const editor = page.getByLabel('TraceQL query');
  await editor.fill('');
  await editor.pressSequentially('{ span.custo');
  await page.getByRole('option', { name: 'span.customer.tier' }).waitFor();
  await editor.press('Tab');
  assert.equal(await editor.inputValue(), '{ span.customer.tier');
  await editor.pressSequentially(' = "g');
  await page.getByRole('option', { name: '"gold"' }).waitFor();
  await editor.press('Tab');
  assert.equal(await editor.inputValue(), '{ span.customer.tier = "gold"');
});

test('open a trace from the results, collapse and expand, open a span', async () => {
  await page.goto(`${UI}/search?service=frontend`);
  await page.locator(`.trace-row[data-trace-id="${ids.failedTrace}"] a`).click();
  await page.waitForURL(`**/trace/${ids.failedTrace}`);
  await page.locator('.span-row').first().waitFor();
  assert.equal(await page.getByTestId('span-count').textContent(), '4');
  assert.equal(await page.locator('.span-row').count(), 4);
  assert.ok((await page.locator('.span-bar.critical').count()) >= 2, 'critical path marked');
  await page.locator('.span-row').first().getByRole('button', { name: 'Collapse' }).click();
  assert.equal(await page.locator('.span-row').count(), 1);
  await page.locator('.span-row').first().getByRole('button', { name: 'Expand' }).click();
  assert.equal(await page.locator('.span-row').count(), 4);
  await page.locator('.span-row', { hasText: 'cart' }).filter({ hasText: 'POST /cart' }).last().click();
  const panel = page.getByRole('complementary', { name: 'Span details' });
  await panel.waitFor();
  assert.match(await panel.textContent(), /cart unavailable/);
  assert.match(await panel.textContent(), /exception/);
  assert.match(await panel.textContent(), /server/);
  assert.match(page.url(), /span=[0-9a-f]{16}/);
  await shot('trace');
});

test('keyboard moves the selection and collapses', async () => {
  await page.goto(`${UI}/trace/${ids.okTrace}`);
  await page.locator('.span-row').first().click();
  await page.keyboard.press('ArrowDown');
  assert.equal(await page.locator('.span-row.selected').getAttribute('aria-level'), '2');
  await page.keyboard.press('ArrowLeft');
  assert.equal(await page.locator('.span-row').count(), 2, 'the client span collapsed');
});

test('the minimap zooms, the JSON downloads', async () => {
  await page.goto(`${UI}/trace/${ids.okTrace}`);
  const minimap = page.getByLabel('Minimap: drag to zoom, double-click to reset');
  const box = await minimap.boundingBox();
  await page.mouse.move(box.x + box.width * 0.5, box.y + 10);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.9, box.y + 10, { steps: 4 });
  await page.mouse.up();
  await page.getByRole('button', { name: 'Reset zoom' }).waitFor();
  const firstTick = await page.locator('.waterfall-head .tick').first().textContent();
  assert.notEqual(firstTick, '0', 'the time axis starts inside the trace');
  await page.getByRole('button', { name: 'Reset zoom' }).click();
  assert.equal(await page.locator('.waterfall-head .tick').first().textContent(), '0');
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: 'Download JSON' }).click(),
  ]);
  assert.equal(download.suggestedFilename(), `trace-${ids.okTrace}.json`);
});

test('find within a trace highlights the matches', async () => {
  await page.goto(`${UI}/trace/${ids.okTrace}`);
  await page.getByLabel('Find in trace').fill('SELECT');
  assert.equal(await page.getByTestId('match-count').textContent(), '1 matches');
  assert.equal(await page.locator('.span-row.match').count(), 1);
});

test('a span link opens the linked trace at its span', async () => {
  await page.goto(`${UI}/trace/${ids.workerTrace}`);
  await page.locator('.span-row').first().click();
  await page.locator('a.span-link').click();
  await page.waitForURL(`**/trace/${ids.okTrace}?span=${ids.okRoot}`);
  await page.locator('.span-row.selected').waitFor();
  assert.equal(await page.locator('.span-row.selected').getAttribute('data-span-id'), ids.okRoot);
});

test('a deep link survives a reload', async () => {
  await page.goto(`${UI}/trace/${ids.failedTrace}?view=flame`);
  await page.getByLabel('Flame graph').waitFor();
  await page.reload();
  await page.getByLabel('Flame graph').waitFor();
  assert.equal(await page.getByRole('tab', { name: 'Flame graph' }).getAttribute('aria-selected'), 'true');
  await shot('flame-graph');
  await page.goto(`${UI}/search?service=cart&lookback=15m`);
  await page.reload();
  await page.locator('.trace-row').first().waitFor();
  assert.equal(await page.getByLabel('Service', { exact: true }).inputValue(), 'cart');
  assert.equal(await page.getByLabel('Time range').inputValue(), '15m');
});

test('clock skew is detected and adjusted', async () => {
  await page.goto(`${UI}/trace/${ids.skewTrace}`);
  const warning = page.locator('.warning');
  await warning.waitFor();
  assert.match(await warning.textContent(), /Clock skew: 1 span/);
  assert.match(await warning.textContent(), /shifted/);
  await page.getByRole('button', { name: 'Show as received' }).click();
  await page.waitForURL(/skew=raw/);
  assert.match(await page.locator('.warning').textContent(), /as received/);
});

test('a trace with a parent cycle and an orphan still shows every span', async () => {
  await page.goto(`${UI}/trace/${ids.brokenTrace}`);
  await page.locator('.span-row').first().waitFor();
  assert.equal(await page.getByTestId('span-count').textContent(), '3');
  assert.equal(await page.locator('.span-row').count(), 3);
  assert.equal(await page.locator('.span-row[aria-level="1"]').count(), 2, 'the cut cycle and the orphan are roots');
});

test('an unknown trace shows an error state', async () => {
  await page.goto(`${UI}/trace/0123456789abcdef0123456789abcdef`);
  assert.match(await page.getByRole('alert').textContent(), /not found/);
});

test('compare shows the structural difference', async () => {
  await page.goto(`${UI}/compare?a=${ids.okTrace}&b=${ids.failedTrace}`);
  await page.locator('.diff').waitFor();
  assert.match(await page.locator('[data-change="slower"]').textContent(), /^[1-9]\d* slower/);
  assert.ok((await page.locator('.diff-row.slower').count()) >= 1);
  await shot('compare');
  await page.goto(`${UI}/compare?a=${ids.okTrace}&b=${ids.workerTrace}`);
  await page.locator('.diff').waitFor();
  assert.equal(await page.locator('[data-change="missing"]').textContent(), '4 missing in B');
  assert.equal(await page.locator('[data-change="added"]').textContent(), '1 added in B');
});

test('the service map shows the edge from real span metrics', async () => {
  await page.goto(`${UI}/map`);
  await page.locator('.service-map').waitFor();
  // A longer range, kept in the URL and across a reload, still holds the seeded calls.
  await page.getByLabel('Time range').selectOption('6h');
  await page.waitForURL(/range=6h/);
  await page.reload();
  await page.locator('.service-map').waitFor();
  assert.equal(await page.getByLabel('Time range').inputValue(), '6h');
  const edge = page.locator('.edge-row', { hasText: 'frontend' }).filter({ hasText: 'cart' });
  assert.equal(await edge.count(), 1);
  assert.match(await edge.textContent(), /33%/, 'one of three calls failed');
  await shot('service-map');
  await page.locator('.node[data-service="cart"]').click();
  await page.waitForURL('**/service/cart?range=6h');
  await page.locator('.operation-row').first().waitFor();
});

test('an absolute range before the seeded traffic shows the empty state', async () => {
  await page.goto(`${UI}/map`);
  await page.getByLabel('Time range').selectOption('custom');
  await page.getByLabel('From', { exact: true }).fill('2020-01-01T00:00:00');
  await page.getByLabel('To', { exact: true }).fill('2020-01-01T01:00:00');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.waitForURL((url) => url.searchParams.get('start')?.startsWith('2020-01-01T00:00'));
  assert.match(await page.locator('.state.empty').textContent(), /No calls between services in this range/);
  await page.goto(`${UI}/service/cart?start=2020-01-01T00:00:00&end=2020-01-01T01:00:00`);
  assert.match(await page.locator('.state.empty').textContent(), /No spans of cart ended in this range/);
  assert.equal(await page.getByLabel('Time range').inputValue(), 'custom');
});

test('the service page shows operations and exemplars that open traces', async () => {
  await page.goto(`${UI}/service/cart`);
  await page.locator('.operation-row').first().waitFor();
  const row = page.locator('.operation-row', { hasText: 'POST /cart' });
  assert.equal(await row.count(), 1);
  assert.match(await row.textContent(), /50(\.0)?%/);
  const exemplar = page.locator('.exemplar').first();
  const traceId = await exemplar.getAttribute('data-trace-id');
  assert.match(traceId, /^[0-9a-f]{32}$/);
  await shot('service');
  await exemplar.click();
  await page.waitForURL(`**/trace/${traceId}`);
  await page.locator('.span-row').first().waitFor();
});

test('the process timeline shows every step of a demo order, its gaps and hops', { skip: NO_DEMO }, async () => {
  const order = demoOrder();
  await page.goto(`${UI}/processes/${order.id}`);
  await page.locator('.step-row').first().waitFor();
  const steps = await page.locator('.step-row').evaluateAll((rows) => rows.map((row) => row.dataset.traceId));
  assert.deepEqual(steps, order.trace_ids, 'every trace of the order, in the order they ran');
  assert.equal(await page.getByTestId('step-count').textContent(), '3');
  assert.equal(await page.locator('.gap-row').count(), 2);
  assert.equal(await page.locator('.hop-line').count(), 2, 'producer → consumer hops drawn');
  assert.equal(await page.locator('.hop-row').count(), 2);
  assert.match(await page.getByTestId('queue-wait').first().textContent(), /^\d+(\.\d+)?(μs|ms)$/);
  await shot('process');
  // Keyboard: arrows move between steps, Enter opens the trace.
  await page.locator('.step-row').first().focus();
  await page.keyboard.press('ArrowDown');
  assert.equal(await page.evaluate(() => document.activeElement?.dataset.traceId), order.trace_ids[1]);
  await page.keyboard.press('Enter');
  await page.waitForURL(`**/trace/${order.trace_ids[1]}`);
  // The consumer trace links to the checkout's producer span, with the queue wait.
  const outgoing = page.getByTestId('links-outgoing');
  await outgoing.waitFor();
  assert.equal(await outgoing.locator(`[data-trace-id="${order.trace_ids[0]}"]`).count(), 1);
  assert.match(await outgoing.textContent(), /send orders.*queue wait/);
});

test('the producer trace lists its backlinks; a span opens its process', { skip: NO_DEMO }, async () => {
  const order = demoOrder();
  const process = await (await fetch(`${UI}/api/v1/processes/${order.id}`)).json();
  const producer = process.hops[0].producer;
  await page.goto(`${UI}/trace/${order.trace_ids[0]}?span=${producer.spanId}`);
  const incoming = page.getByTestId('links-incoming');
  await incoming.waitFor();
  const linked = await incoming.locator('li').evaluateAll((items) => items.map((item) => item.dataset.traceId));
  assert.deepEqual(linked.sort(), order.trace_ids.slice(1).sort(), 'both consumer traces link back');
  // The checkout belongs to the cart session and to the order: both open their timelines.
  assert.ok((await page.locator('.process-chips .process-link').count()) >= 2);
  const panel = page.getByRole('complementary', { name: 'Span details' });
  await panel.waitFor();
  await shot('trace-links');
  await panel.getByRole('link', { name: order.id }).click();
  await page.waitForURL(`**/processes/${order.id}`);
  await page.locator('.step-row').first().waitFor();
  assert.equal(await page.locator('.step-row').count(), 3);
});

test('the process search finds the order over the last 7 days', { skip: NO_DEMO }, async () => {
  const order = demoOrder();
  await page.goto(`${UI}/processes`);
  await page.getByText(/No trace carrying a process ID/).waitFor(); // the demo ran two days ago
  await page.getByLabel('Time range').selectOption('7d');
  await page.waitForURL(/range=7d/);
  await page.locator('.process-row').first().waitFor();
  await page.getByLabel('Attribute filter').fill(`business_process.id=${order.id}`);
  await page.getByRole('button', { name: 'Find' }).click();
  await page.waitForURL((url) => url.searchParams.get('attr') === `business_process.id=${order.id}`);
  const row = page.locator(`.process-row[data-process-id="${order.id}"]`);
  await row.waitFor();
  // Its three traces; the checkout trace also carries the cart session's ID, listed too.
  assert.equal(await row.locator('td').nth(3).textContent(), '3');
  assert.match(await row.textContent(), /payment/);
  assert.ok((await page.locator('.process-row').count()) <= 2);
  await shot('processes');
  await row.getByRole('link').click();
  await page.waitForURL(`**/processes/${order.id}`);
  await page.locator('.step-row').first().waitFor();
});

test('the consistency page shows the replication lag of the demo per region pair', { skip: NO_DEMO }, async () => {
  const replications = demoRecords('replication');
  const pairs = [...new Set(replications.map((r) => `${r.source_region} → ${r.replica_region}`))].sort();
  await page.goto(`${UI}/`);
  await page.getByRole('navigation').getByRole('link', { name: 'Consistency' }).click();
  await page.waitForURL('**/consistency');
  await page.goto(`${UI}/consistency?${demoRange()}`);
  await page.locator('.lag-pair').first().waitFor();
  assert.equal(await page.getByLabel('Time range').inputValue(), 'custom', 'the absolute range is kept in the URL');
  const shown = await page.locator('.lag-pair').evaluateAll((charts) => charts.map((c) => c.dataset.pair));
  assert.deepEqual(shown.sort(), pairs, 'one chart per region pair the demo replicated between');
  for (const pair of pairs) {
    const chart = page.locator(`.lag-pair[data-pair="${pair}"]`);
    assert.ok((await chart.locator('.c-p50').count()) >= 1, `${pair}: a p50 line`);
    assert.ok((await chart.locator('.c-p99').count()) >= 1, `${pair}: a p99 line`);
  }
  assert.equal(await page.getByTestId('apply-count').textContent(), String(replications.length));
  const rows = page.locator('.lag-row');
  assert.equal(await rows.count(), pairs.length);
  for (const pair of pairs) {
    const applies = replications.filter((r) => `${r.source_region} → ${r.replica_region}` === pair).length;
    const row = rows.filter({ hasText: pair });
    assert.equal(await row.locator('td').nth(1).textContent(), String(applies), `${pair}: applies`);
    // The slowest apply of the pair, as the ground truth delayed it.
    const max = Math.max(
      ...replications
        .filter((r) => `${r.source_region} → ${r.replica_region}` === pair)
        .map((r) => Number(r.delay_nanos) / 1e6),
    );
    const shownMax = parseMillis(await row.locator('td').nth(4).textContent());
    assert.ok(Math.abs(shownMax - max) <= max * 0.01, `${pair}: max ${shownMax} ≈ ${max}`);
  }
  await shot('consistency');
  // An exemplar opens its replica apply span.
  const exemplar = rows.first().locator('a.exemplar-link').first();
  const url = new URL(await exemplar.getAttribute('href'), UI);
  await exemplar.click();
  await page.waitForURL(`**${url.pathname}${url.search}`);
  const selected = page.locator('.span-row.selected');
  await selected.waitFor();
  assert.equal(await selected.getAttribute('data-span-id'), url.searchParams.get('span'));
  assert.match(await selected.textContent(), /db\.replication\.apply/);
});

test(
  'the consistency page lists exactly the stale reads of the demo, by region pair and over time',
  { skip: NO_DEMO },
  async () => {
    const truth = demoRecords('stale_read');
    assert.ok(truth.length > 0, 'the demo injected stale reads');
    await page.goto(`${UI}/consistency?${demoRange()}`);
    await page.locator('.stale-row').first().waitFor();
    assert.equal(await page.getByTestId('stale-count').textContent(), String(truth.length));
    assert.equal(await page.locator('.stale-row').count(), truth.length);
    const rows = await page
      .locator('.stale-row')
      .evaluateAll((rows) => rows.map((row) => [row.dataset.readSpan, row.dataset.writeSpan]));
    assert.deepEqual(
      rows.sort(),
      truth.map((r) => [r.span_id, r.write_span_id]).sort(),
      'each stale read with the write it missed',
    );
    // Per (write region → read region) pair.
    const byPair = new Map();
    for (const r of truth)
      byPair.set(`${r.write_region} → ${r.region}`, (byPair.get(`${r.write_region} → ${r.region}`) ?? 0) + 1);
    const pairRows = page.locator('.stale-pair-row');
    assert.equal(await pairRows.count(), byPair.size);
    for (const [pair, count] of byPair) {
      const cells = await pairRows.filter({ hasText: pair }).locator('td.num').allTextContents();
      assert.equal(
        cells.reduce((sum, cell) => sum + Number(cell), 0),
        count,
        `${pair}: stale reads`,
      );
    }
    // Over time: one line per classification present, summing to every stale read.
    const chart = page.getByRole('img', { name: /^Stale reads per/ });
    assert.ok((await chart.locator('polyline.line, circle.dot').count()) >= 1);
    // The classification filter is kept in the URL (across a reload) and lists what the API finds.
    const { start, end } = demoWindow();
    for (const classification of ['expected', 'violation']) {
      await page.getByLabel('Classification', { exact: true }).selectOption(classification);
      await page.waitForURL((url) => url.searchParams.get('classification') === classification);
      await page.reload();
      assert.equal(await page.getByLabel('Classification', { exact: true }).inputValue(), classification);
      const query = new URLSearchParams({ classification, start: `${start}000000`, end: `${end}000000` });
      const answer = await (await fetch(`${UI}/api/v1/consistency/stale-reads?${query}`)).json();
      await page.getByTestId('stale-count').waitFor();
      assert.equal(await page.getByTestId('stale-count').textContent(), String(answer.matched));
      assert.equal(await page.locator('.stale-row').count(), answer.matched);
      const classes = await page.locator('.stale-row .badge').allTextContents();
      assert.ok(
        classes.every((c) => c === classification),
        `only ${classification} stale reads`,
      );
      if (answer.matched === 0) {
        const empty = page.locator('section[aria-label="Stale reads"] .state.empty');
        assert.match(await empty.textContent(), /matches the filters/);
      }
    }
    const all = await (
      await fetch(`${UI}/api/v1/consistency/stale-reads?start=${start}000000&end=${end}000000`)
    ).json();
    assert.equal(all.matched, truth.length, 'the analysis found every injected stale read, and no other');
  },
);

test(
  'a stale read opens the read trace at its span, annotated with the write it missed',
  { skip: NO_DEMO },
  async () => {
    const stale = demoRecords('stale_read')[0];
    const sameKey = demoRecords('stale_read').filter((r) => r.key === stale.key);
    await page.goto(`${UI}/consistency?${demoRange()}&key=${encodeURIComponent(stale.key)}`);
    await page.locator('.stale-row').first().waitFor();
    assert.equal(await page.getByLabel('Key filter').inputValue(), stale.key);
    assert.equal(await page.locator('.stale-row').count(), sameKey.length, `the stale reads of ${stale.key}`);
    await page.locator(`.stale-row[data-read-span="${stale.span_id}"] a.read-link`).click();
    await page.waitForURL(`**/trace/${stale.trace_id}?span=${stale.span_id}`);
    const selected = page.locator('.span-row.selected');
    await selected.waitFor();
    assert.equal(await selected.getAttribute('data-span-id'), stale.span_id);
    await selected.locator('.badge.stale-read').waitFor();
    assert.equal(await selected.locator('.badge.stale-read').textContent(), 'stale read');
    const section = page
      .getByRole('complementary', { name: 'Span details' })
      .getByRole('region', { name: 'Consistency' });
    await section.waitFor();
    const missed = section.locator('a.missed-write-link');
    assert.equal(await missed.getAttribute('href'), `/trace/${stale.write_trace_id}?span=${stale.write_span_id}`);
    assert.match(await missed.textContent(), new RegExp(`${stale.write_region} at ${stale.write_level}`));
    const text = await section.textContent();
    assert.ok(text.includes(stale.key), 'names the key');
    assert.ok(text.includes(stale.newer_version), 'names the version it missed');
    assert.match(text, new RegExp(`${stale.region} at ${stale.level}`), 'the region and level of the read');
    assert.match(text, /expected|violation|unknown/);
    const staleness = parseMillis(await section.getByTestId('staleness').textContent());
    const truthMillis = Number(stale.staleness_nanos) / 1e6;
    assert.ok(Math.abs(staleness - truthMillis) <= truthMillis * 0.01, `staleness ${staleness} ≈ ${truthMillis}`);
    assert.match(await page.getByTestId('trace-consistency').textContent(), new RegExp(`stale read of ${stale.key}`));
    await shot('consistency-trace');
    // The missed write opens its trace at its span, marked as missed.
    await missed.click();
    await page.waitForURL(`**/trace/${stale.write_trace_id}?span=${stale.write_span_id}`);
    const write = page.locator(`.span-row[data-span-id="${stale.write_span_id}"]`);
    await write.locator('.badge.missed-write').waitFor();
    assert.equal(await page.locator('.span-row.selected').getAttribute('data-span-id'), stale.write_span_id);
  },
);

test('a conflict shows the winner, the losers and why; its apply span is annotated', { skip: NO_DEMO }, async () => {
  const truth = demoRecords('conflict');
  assert.ok(truth.length > 0, 'the demo injected conflicts');
  await page.goto(`${UI}/consistency?${demoRange()}`);
  await page.locator('.conflict-row').first().waitFor();
  assert.equal(await page.locator('.conflict-row').count(), truth.length);
  assert.equal(await page.getByTestId('conflict-count').textContent(), String(truth.length));
  const conflict = truth[0];
  const row = page.locator(`.conflict-row[data-apply-span="${conflict.apply_span_id}"]`);
  assert.match(await row.locator('.winner').textContent(), new RegExp(conflict.winner_version));
  const losers = await row.locator('.loser .mono').allTextContents();
  assert.deepEqual(losers.sort(), [...conflict.loser_versions].sort());
  const explanation = await row.locator('.explanation').textContent();
  assert.match(explanation, /last write wins/);
  assert.ok(explanation.includes(conflict.winner_version), 'the explanation names the winner');
  assert.match(await row.textContent(), new RegExp(`in ${conflict.region}`));
  await row.locator('a.apply-link').click();
  await page.waitForURL(`**/trace/${conflict.apply_trace_id}?span=${conflict.apply_span_id}`);
  const selected = page.locator('.span-row.selected');
  await selected.locator('.badge.conflict').waitFor();
  assert.match(await selected.textContent(), /db\.replication\.apply/);
  const section = page
    .getByRole('complementary', { name: 'Span details' })
    .getByRole('region', { name: 'Consistency' });
  assert.match(await section.locator('.winner').textContent(), new RegExp(conflict.winner_version));
  assert.deepEqual(
    (await section.locator('.loser .mono').allTextContents()).sort(),
    [...conflict.loser_versions].sort(),
  );
  assert.match(
    await section.locator('.loser a.write-link').first().getAttribute('href'),
    /^\/trace\/[0-9a-f]{32}\?span=[0-9a-f]{16}$/,
  );
  assert.match(await section.locator('.explanation').textContent(), /last write wins/);
  await shot('consistency-conflict');
});

test(
  'the consistency levels count the reads and writes of each service per level; risky patterns',
  { skip: NO_DEMO },
  async () => {
    const levels = await (await fetch(`${UI}/api/v1/consistency/levels`)).json();
    await page.goto(`${UI}/consistency?${demoRange()}`);
    await page.locator('.level-row').first().waitFor();
    for (const usage of levels.usage) {
      const row = page
        .locator(`.level-row[data-service="${usage.service}"][data-access="${usage.access}"]`)
        .filter({ hasText: usage.collection })
        .filter({ hasText: usage.operation });
      assert.equal(
        await row.locator(`td[data-level="${usage.level}"]`).textContent(),
        String(usage.spans),
        `${usage.service} ${usage.operation} ${usage.collection} at ${usage.level}`,
      );
    }
    // The demo's carts are read at ONE after LOCAL_QUORUM writes: the risky pattern behind its stale reads.
    const risky = page.locator('.risky-row', { hasText: 'carts' }).filter({ hasText: 'ONE' });
    assert.equal(await risky.count(), 1);
    assert.equal(
      await risky.locator('td').nth(5).textContent(),
      String(demoRecords('stale_read').filter((r) => r.key.startsWith('carts:')).length),
    );
    assert.match(
      await risky.locator('a.example-link').getAttribute('href'),
      /^\/trace\/[0-9a-f]{32}\?span=[0-9a-f]{16}$/,
    );
  },
);

test('the consistency page shows when the analysis is disabled and when a range is empty', async () => {
  await page.route('**/api/v1/consistency/**', (route) =>
    route.fulfill({
      status: 501,
      contentType: 'application/json',
      body: JSON.stringify({
        error: { code: 'consistency_disabled', message: 'the consistency analysis is disabled' },
      }),
    }),
  );
  await page.goto(`${UI}/consistency`);
  assert.match(await page.getByRole('alert').textContent(), /consistency analysis is disabled/);
  await page.unroute('**/api/v1/consistency/**');
  await page.goto(`${UI}/consistency?start=2020-01-01T00:00:00&end=2020-01-01T01:00:00`);
  await page.locator('.state.empty').first().waitFor();
  assert.match(
    await page.locator('.state.empty').first().textContent(),
    /No replication, stale read or conflict in this range|No database spans with db\.record\.key/,
  );
});

test('an unknown process shows an error state', async () => {
  await page.goto(`${UI}/processes/order-does-not-exist`);
  assert.match(await page.getByRole('alert').textContent(), /Process order-does-not-exist not found/);
});

test('the theme switches and is remembered', async () => {
  await page.goto(`${UI}/`);
  const before = await page.evaluate(() => document.documentElement.dataset.theme);
  await page.getByRole('button', { name: /Switch to/ }).click();
  await page.waitForFunction((old) => document.documentElement.dataset.theme !== old, before);
  const afterClick = await page.evaluate(() => document.documentElement.dataset.theme);
  assert.ok(['light', 'dark'].includes(afterClick));
  await page.reload();
  assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), afterClick);
  if (afterClick === 'dark') {
    await page.goto(`${UI}/trace/${ids.failedTrace}?span=${ids.failedRoot}`);
    await page.locator('.span-row.selected').waitFor();
    await shot('trace-dark');
    if (DEMO_TRUTH) {
      await page.goto(`${UI}/processes/${demoOrder().id}`);
      await page.locator('.step-row').first().waitFor();
      await shot('process-dark');
    }
  }
});
