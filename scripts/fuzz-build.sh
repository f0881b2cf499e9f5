#!/usr/bin/env bash
# Builds the fuzz targets (fuzz/, a separate cargo project) so a change that breaks them
# fails CI. This is a plain build; to fuzz, see fuzz/README.md (cargo fuzz, instrumented).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
base="${CARGO_TARGET_DIR:-$HOME/.cache/sextant-target}"
CARGO_TARGET_DIR="${base}-fuzz" cargo build --bins --locked
