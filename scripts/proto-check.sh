#!/usr/bin/env bash
# Fails (exit 1) when the committed src/gen differs from what proto/ generates,
# or when proto/ is not buf-lint clean or not buf-formatted. Needs only
# node_modules (buf and protoc-gen-es run locally; no network).
#
#   bash scripts/proto-check.sh
set -euo pipefail

cd "$(dirname "$0")/.."
BUF=node_modules/.bin/buf
if [[ ! -x "$BUF" || ! -x node_modules/.bin/protoc-gen-es ]]; then
  echo "proto-check: buf or protoc-gen-es missing from node_modules; run npm ci" >&2
  exit 2
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

status=0

# buf resolves the plugin's `out: src/gen` under --output, so this writes $tmp/src/gen.
"$BUF" generate --output "$tmp"
if ! diff -ru src/gen "$tmp/src/gen"; then
  echo "proto-check: src/gen is stale; run 'npx buf generate' and commit the result" >&2
  status=1
fi

if ! "$BUF" lint; then
  echo "proto-check: buf lint failed" >&2
  status=1
fi

if ! "$BUF" format --diff --exit-code proto; then
  echo "proto-check: proto/ is not formatted; run 'npx buf format -w proto'" >&2
  status=1
fi

if [[ $status -eq 0 ]]; then
  echo "proto-check: src/gen is up to date; lint and format clean"
fi
exit $status
