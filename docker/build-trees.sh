#!/bin/sh
# Builds the production trees of management, signal and relay: for each,
# OUT/<service> holds its compiled dist/ and production dependencies only
# (`pnpm deploy --prod`), pruned of sources, maps, type declarations and
# native build leftovers. Runs from the repository root, in the image build
# (with --install) or on a host that has run `pnpm install` already.
#   usage: sh docker/build-trees.sh OUT [--install]
set -eu
out="$1"
services="management signal relay"

if [ "${2:-}" = "--install" ]; then
	filters=""
	for service in $services; do filters="$filters --filter @starling/$service..."; done
	# Native addons (better-sqlite3) compile against the headers next to node
	# when no prebuilt binary can be downloaded.
	node_prefix="$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")"
	if [ -f "$node_prefix/include/node/node.h" ] && [ -z "${npm_config_nodedir:-}" ]; then
		export npm_config_nodedir="$node_prefix"
	fi
	# shellcheck disable=SC2086 # one word per filter
	pnpm install --frozen-lockfile $filters
fi

pnpm exec tsc -b apps/management apps/signal apps/relay
rm -rf "$out"
mkdir -p "$out"
for service in $services; do
	tree="$out/$service"
	pnpm --filter "@starling/$service" deploy --prod "$tree" >/dev/null
	# Only what runs: the service's dist and package.json, and in node_modules
	# no source maps, type declarations, TypeScript sources of our own packages,
	# or the object files and sources a native addon was compiled from.
	rm -rf "$tree/src" "$tree/test" "$tree"/tsconfig*.json "$tree"/*.tsbuildinfo \
		"$tree/pnpm-lock.yaml" "$tree/pnpm-workspace.yaml" "$tree"/README.md
	find "$tree" \( -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' \
		-o -name '*.tsbuildinfo' \) -type f -delete
	find "$tree/node_modules/.pnpm" -path '*/node_modules/@starling/*/src' -prune -type d \
		-exec rm -rf {} +
	for addon_dir in "$tree"/node_modules/.pnpm/*/node_modules/*/build/Release; do
		[ -d "$addon_dir" ] || continue
		package_dir="$(dirname "$(dirname "$addon_dir")")"
		find "$addon_dir" -mindepth 1 -maxdepth 1 ! -name '*.node' -exec rm -rf {} +
		find "$addon_dir" -maxdepth 1 -name 'test_*.node' -delete
		rm -rf "$package_dir/deps" "$package_dir/src" "$package_dir/build/deps" \
			"$package_dir/build/node_gyp_bins"
	done
	broken="$(find "$tree" -xtype l | head -n 5)"
	if [ -n "$broken" ]; then
		echo "build-trees: $service has dangling links (a failed deploy?):" >&2
		echo "$broken" >&2
		exit 1
	fi
	chmod -R a+rX,go-w "$tree"
done
