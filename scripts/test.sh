#!/usr/bin/env bash
# Runs every check and test of the project: formatting, lints, unit and integration tests,
# a build of the fuzz targets, and the web UI's build check and browser tests. Installs what
# the tests need first (pyarrow, used to prove blocks are readable by a third-party Parquet
# reader; chromium and the UI's npm packages, by scripts/ui-test.sh).
set -euo pipefail
shopt -s inherit_errexit 2>/dev/null || true
cd "$(dirname "$0")/.."

# A target directory outside the clone is reused across clones on the same machine.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sextant-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n==> %s\n' "$*"; }

step "test dependencies"
if ! python3 -c "import pyarrow" 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check pyarrow
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "fuzz targets build"
scripts/fuzz-build.sh

step "cargo test"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked 2>&1 | tee "$log"
awk '/^test result:/ { passed += $4; failed += $6 } END { printf "%d passed, %d failed\n", passed, failed }' "$log"

step "web UI (browser tests)"
cargo build -p sextant --locked
scripts/ui-test.sh "$CARGO_TARGET_DIR/debug/sextant"
