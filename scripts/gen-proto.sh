#!/bin/sh
# Generates TypeScript from proto/ into packages/proto/src/gen with buf and
# ts-proto. With --check, fails if the committed output is out of date.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/proto"
if [ "${1:-}" = "--check" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  cp -r "$root/packages/proto/src/gen" "$tmp/before"
  "$root/node_modules/.bin/buf" lint
  rm -rf "$root/packages/proto/src/gen"
  "$root/node_modules/.bin/buf" generate
  if ! diff -r "$tmp/before" "$root/packages/proto/src/gen" >/dev/null; then
    echo "packages/proto/src/gen is out of date with proto/: run 'pnpm gen' and commit" >&2
    exit 1
  fi
  echo "proto: generated code is up to date"
else
  "$root/node_modules/.bin/buf" lint
  rm -rf "$root/packages/proto/src/gen"
  "$root/node_modules/.bin/buf" generate
fi
