#!/bin/sh
# Builds (once) a local stand-in for node:20-bookworm-slim, because no image
# registry is reachable on our CI machines: Debian bookworm from the cached
# debootstrap tarball plus this machine's own Node 20 (binary, headers and npm,
# laid out as in the official image). Prints the image name; the Dockerfiles
# in docker/ take it as --build-arg BASE=<name>. Needs a running dockerd.
#   usage: sh scripts/ci/docker-base-image.sh
set -eu
cd "$(dirname "$0")/../.."

node_bin="$(readlink -f "$(command -v node)")"
node_version="$("$node_bin" -p process.versions.node)"
case "$node_version" in
20.*) ;;
*)
	echo "docker-base-image: need Node 20 on the host, found $node_version" >&2
	exit 1
	;;
esac
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

# Where the host's Node keeps its headers (for native addons) and npm.
node_prefix="$(dirname "$(dirname "$node_bin")")"
headers="$node_prefix/include/node"
npm_dir="$node_prefix/lib/node_modules/npm"
for path in "$headers/node.h" "$npm_dir/bin/npm-cli.js"; do
	if [ ! -f "$path" ]; then
		echo "docker-base-image: $path not found (expected next to $node_bin)" >&2
		exit 1
	fi
done

context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
mkdir -p "$context/usr/local/bin" "$context/usr/local/include" "$context/usr/local/lib/node_modules"
cp "$node_bin" "$context/usr/local/bin/node"
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
