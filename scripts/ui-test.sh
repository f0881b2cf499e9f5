#!/usr/bin/env bash
# Tests the web UI in a real browser: installs Debian's chromium when missing, installs the
# UI's npm packages from package-lock.json, checks that the committed build (ui/dist) is what
# the sources build to, starts an already built sextant on loopback ports of its own with an
# empty data directory, checks how the query port serves the UI, and runs the Playwright
# tests (ui/test/*.test.mjs), which send their traces over OTLP/HTTP JSON, after `sextant
# demo` traffic dated two days back (its ground truth in $SEXTANT_DEMO_TRUTH): the
# `replication-lag` scenario, whose stale reads, conflicts and replication lag the
# consistency tests look for. The server judges reads 1 s after they arrive and keeps two
# days and a bit of lag intervals, so the demo's lag series are still in memory.
#
# Usage: scripts/ui-test.sh [path/to/sextant]   (default: $CARGO_TARGET_DIR/debug/sextant)
set -euo pipefail
shopt -s inherit_errexit 2>/dev/null || true
cd "$(dirname "$0")/.."

target_dir="${CARGO_TARGET_DIR:-$HOME/.cache/sextant-target}"
binary="${1:-$target_dir/debug/sextant}"
if [[ ! -x "$binary" ]]; then
  echo "ui-test: no sextant binary at $binary (build it first: cargo build -p sextant)" >&2
  exit 1
fi

missing=()
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
command -v curl >/dev/null || missing+=(curl)
if ((${#missing[@]} > 0)); then
  echo "==> installing ${missing[*]}"
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
fi
# Vite 8's native packages do not install with npm 10.
if (($(npm --version | cut -d. -f1) < 11)); then
  echo "==> updating npm"
  npm install --global npm@11
fi

echo "==> npm ci"
(cd ui && npm ci --no-audit --no-fund)

echo "==> ui/dist is the build of the sources"
bash scripts/ui-build-check.sh

work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# Ports of its own, so a sextant already running on the defaults is left alone.
export SEXTANT_QUERY_ADDRESS=127.0.0.1:26786
export SEXTANT_QUERY_TEMPO_ADDRESS=127.0.0.1:23300
export SEXTANT_RECEIVERS_OTLP_GRPC_ADDRESS=127.0.0.1:24417
export SEXTANT_RECEIVERS_OTLP_HTTP_ADDRESS=127.0.0.1:24418
export SEXTANT_RECEIVERS_ZIPKIN_ADDRESS=127.0.0.1:29511
# Reads judged 1 s after arrival; 12,000 lag intervals of 15 s (50 h) reach the demo's.
export SEXTANT_METRICS_CONSISTENCY_WAIT_SECONDS=1
export SEXTANT_METRICS_CONSISTENCY_MAX_INTERVALS=12000
ui="http://$SEXTANT_QUERY_ADDRESS"

echo "==> starting sextant"
"$binary" serve --data-dir "$work/data" --log-level warn >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
  if curl -sf "$ui/api/v1/services" >/dev/null; then break; fi
  if ! kill -0 "$server_pid" 2>/dev/null; then
    cat "$work/server.log" >&2
    exit 1
  fi
  sleep 0.1
done

echo "==> serving: index, deep links, hashed assets, API 404s"
fail() {
  echo "ui-test: $*" >&2
  exit 1
}
headers="$(curl -sfI "$ui/")"
grep -qi '^content-type: text/html' <<<"$headers" || fail "/ is not HTML"
grep -qi '^cache-control: no-cache' <<<"$headers" || fail "/ may be cached without revalidation"
curl -sf "$ui/trace/0123456789abcdef0123456789abcdef?span=1" | grep -q '<div id="app">' || fail "a deep link does not answer index.html"
asset="$(grep -o '/assets/[^"]*\.js' ui/dist/index.html | head -1)"
curl -sfI "$ui$asset" | grep -qi '^cache-control: public, max-age=31536000, immutable' || fail "$asset is not cached as immutable"
status="$(curl -s -o "$work/404.json" -w '%{http_code}' "$ui/api/v1/no-such-endpoint")"
[[ "$status" == 404 ]] || fail "an unknown /api path answered $status"
grep -q '"code":"not_found"' "$work/404.json" || fail "an unknown /api path did not answer the JSON error"

echo "==> demo traffic two days back (business processes, message hops, stale reads, conflicts; outside the default ranges)"
# 400 traces at 3 a second: 133 s of simulated traffic, nine lag intervals.
"$binary" demo --endpoint "$SEXTANT_RECEIVERS_OTLP_GRPC_ADDRESS" --traces 400 --rate 3 --seed 42 \
  --scenario replication-lag --start-unix-nanos "$((($(date +%s) - 2 * 86400) * 1000000000))" \
  --ground-truth "$work/demo-truth.jsonl" >"$work/demo.log" 2>&1 || {
  cat "$work/demo.log" >&2
  fail "sextant demo failed"
}
export SEXTANT_DEMO_TRUTH="$work/demo-truth.jsonl"
# The tests count the findings: wait until every read and apply has been judged.
for _ in $(seq 100); do
  if curl -sf "$ui/api/v1/consistency/levels" | grep -q '"pending":0[,}]'; then break; fi
  sleep 0.1
done

echo "==> browser tests"
export SEXTANT_UI_URL="$ui"
export SEXTANT_OTLP_URL="http://$SEXTANT_RECEIVERS_OTLP_HTTP_ADDRESS"
(cd ui && node --test --test-concurrency=1 test/ui.test.mjs)
