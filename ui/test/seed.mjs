// Known traces for the browser tests, sent over OTLP/HTTP JSON like any SDK would: a
// two-service checkout (the service map's edge), a failing checkout (an error span), a
// worker trace whose span links to the first, and a trace whose callee's clock runs early.
import { randomBytes } from 'node:crypto';

const hex = (bytes) => randomBytes(bytes).toString('hex');
const str = (key, value) => ({ key, value: { stringValue: value } });
const int = (key, value) => ({ key, value: { intValue: String(value) } });

/** Nanoseconds as the decimal string OTLP/JSON uses, `ms` milliseconds after `base`. */
const at = (base, ms) => String(base + BigInt(Math.round(ms * 1e6)));

const SERVER = 2;
const CLIENT = 3;
const CONSUMER = 5;
const ERROR = 2;

function span(
  traceId,
  { id = hex(8), parent, name, kind = SERVER, start, end, base, attributes = [], status, links, events },
) {
  return {
    traceId,
    spanId: id,
    ...(parent ? { parentSpanId: parent } : {}),
    name,
    kind,
    startTimeUnixNano: at(base, start),
    endTimeUnixNano: at(base, end),
    attributes,
    ...(status ? { status } : {}),
    ...(links ? { links } : {}),
    ...(events ? { events } : {}),
  };
}

function resourceSpans(service, spans) {
  return {
    resource: { attributes: [str('service.name', service), str('cloud.region', 'eu-west-1')] },
    scopeSpans: [{ scope: { name: 'ui-test' }, spans }],
  };
}

/** A checkout: frontend GET /checkout calls cart POST /cart, which queries its database. */
function checkout(base, { cartMs, fail }) {
  const traceId = hex(16);
  const root = hex(8);
  const call = hex(8);
  const serve = hex(8);
  const frontend = [
    span(traceId, {
      id: root,
      name: 'GET /checkout',
      start: 0,
      end: cartMs + 20,
      base,
      attributes: [
        str('http.route', '/checkout'),
        str('customer.tier', 'gold'),
        int('http.response.status_code', fail ? 500 : 200),
      ],
      ...(fail ? { status: { code: ERROR, message: 'cart failed' } } : {}),
    }),
    span(traceId, {
      id: call,
      parent: root,
      name: 'POST /cart',
      kind: CLIENT,
      start: 5,
      end: cartMs + 15,
      base,
      attributes: [str('peer.service', 'cart')],
    }),
  ];
  const cart = [
    span(traceId, {
      id: serve,
      parent: call,
      name: 'POST /cart',
      start: 6,
      end: cartMs + 14,
      base,
      attributes: [str('http.route', '/cart')],
      ...(fail
        ? {
            status: { code: ERROR, message: 'cart unavailable' },
            events: [
              {
                timeUnixNano: at(base, 10),
                name: 'exception',
                attributes: [str('exception.message', 'connection refused')],
              },
            ],
          }
        : {}),
    }),
    span(traceId, {
      parent: serve,
      name: 'SELECT cart',
      kind: CLIENT,
      start: 8,
      end: cartMs + 10,
      base,
      attributes: [str('db.system.name', 'postgresql')],
    }),
  ];
  return {
    traceId,
    rootSpanId: root,
    body: { resourceSpans: [resourceSpans('frontend', frontend), resourceSpans('cart', cart)] },
  };
}

async function send(otlpUrl, body) {
  const response = await fetch(`${otlpUrl}/v1/traces`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`OTLP export failed: ${response.status} ${await response.text()}`);
}

export async function seed(otlpUrl) {
  const now = BigInt(Date.now()) * 1_000_000n;
  const ok = checkout(now - 30_000_000_000n, { cartMs: 40, fail: false });
  const failed = checkout(now - 20_000_000_000n, { cartMs: 250, fail: true });
  // A worker that picks up the first checkout's order: its span links to that trace.
  const workerTrace = hex(16);
  const workerBase = now - 10_000_000_000n;
  const worker = {
    resourceSpans: [
      resourceSpans('worker', [
        span(workerTrace, {
          name: 'process order',
          kind: CONSUMER,
          start: 0,
          end: 12,
          base: workerBase,
          attributes: [str('messaging.system', 'kafka')],
          links: [{ traceId: ok.traceId, spanId: ok.rootSpanId, attributes: [str('link.reason', 'order placed')] }],
        }),
      ]),
    ],
  };
  // The cart's clock runs 30 ms early: its server span starts before the frontend's call.
  const skewTrace = hex(16);
  const skewBase = now - 5_000_000_000n;
  const root = hex(8);
  const call = hex(8);
  const skewed = {
    resourceSpans: [
      resourceSpans('frontend', [
        span(skewTrace, { id: root, name: 'GET /skewed', start: 0, end: 100, base: skewBase }),
        span(skewTrace, {
          id: call,
          parent: root,
          name: 'GET /inventory',
          kind: CLIENT,
          start: 40,
          end: 90,
          base: skewBase,
        }),
      ]),
      resourceSpans('cart', [
        span(skewTrace, { parent: call, name: 'GET /inventory', start: 10, end: 50, base: skewBase }),
      ]),
    ],
  };
  // Broken parentage, as buggy instrumentation sends it: two spans naming each other as
  // parent, and one whose parent never arrived.
  const brokenTrace = hex(16);
  const [first, second] = [hex(8), hex(8)];
  const broken = {
    resourceSpans: [
      resourceSpans('worker', [
        span(brokenTrace, { id: first, parent: second, name: 'loop a', start: 0, end: 10, base: skewBase }),
        span(brokenTrace, { id: second, parent: first, name: 'loop b', start: 1, end: 9, base: skewBase }),
        span(brokenTrace, { parent: hex(8), name: 'orphan', start: 2, end: 4, base: skewBase }),
      ]),
    ],
  };
  for (const body of [ok.body, failed.body, worker, skewed, broken]) await send(otlpUrl, body);
  return {
    okTrace: ok.traceId,
    okRoot: ok.rootSpanId,
    failedTrace: failed.traceId,
    failedRoot: failed.rootSpanId,
    brokenTrace,
    workerTrace,
    skewTrace,
  };
}
