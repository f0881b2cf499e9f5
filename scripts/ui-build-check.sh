#!/usr/bin/env bash
# Checks the web UI's formatting and types, rebuilds it (ui/, after `npm ci`) into a
# temporary directory and fails when the committed ui/dist differs from it: the sextant
# binary embeds ui/dist, so it must be the build of the sources. The build is deterministic
# (content-hashed names, no timestamps).
set -euo pipefail
shopt -s inherit_errexit 2>/dev/null || true
cd "$(dirname "$0")/../ui"

fresh="$(mktemp -d)"
trap 'rm -rf "$fresh"' EXIT
npm run lint --silent
npx vite build --outDir "$fresh/dist" --emptyOutDir --logLevel warn
if ! diff -r "$fresh/dist" dist; then
  echo "ui/dist is not the build of ui/src: run 'cd ui && npm ci && npm run build' and commit ui/dist" >&2
  exit 1
fi
echo "ui/dist is current"
