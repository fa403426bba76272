#!/bin/sh
# Prints the path of a minimal Debian bookworm root filesystem tarball, built
# once with debootstrap from Debian's mirror and cached. No image registry is
# reachable on our CI machines, so the docker base image and the install test's
# clean root both start from this tarball.
#   usage: sh scripts/ci/debian-rootfs.sh        -> prints /var/cache/starling-ci/bookworm-minbase.tar
set -eu
cache_dir="${STARLING_CI_CACHE:-/var/cache/starling-ci}"
tarball="$cache_dir/bookworm-minbase.tar"
mirror="${STARLING_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if [ -s "$tarball" ]; then
	echo "$tarball"
	exit 0
fi
if ! command -v debootstrap >/dev/null 2>&1; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends debootstrap >&2
fi
mkdir -p "$cache_dir"
work="$(mktemp -d "$cache_dir/rootfs.XXXXXX")"
trap 'rm -rf "$work"' EXIT
debootstrap --variant=minbase bookworm "$work/root" "$mirror" >&2
# Same apt sources as the host, so packages install inside it the same way.
printf 'deb %s bookworm main\ndeb %s bookworm-updates main\n' "$mirror" "$mirror" >"$work/root/etc/apt/sources.list"
tar -C "$work/root" -cf "$work/rootfs.tar" .
mv "$work/rootfs.tar" "$tarball"
echo "$tarball"
