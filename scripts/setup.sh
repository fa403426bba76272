#!/bin/sh
# Installs everything Starling needs on a fresh Debian 12 machine with Node 20,
# then builds the workspace. Safe to run again: it skips what is already there.
set -eu
cd "$(dirname "$0")/.."

PNPM_VERSION=$(sed -n 's/.*"packageManager": *"pnpm@\([^"]*\)".*/\1/p' package.json)

# Debian packages for the data plane and the network lab (WireGuard in
# userspace where the kernel has no module, nftables for policy and NAT).
DEBIAN_PACKAGES="wireguard-tools wireguard-go iproute2 nftables iperf3 conntrack iputils-ping coturn"
missing=""
for pkg in $DEBIAN_PACKAGES; do
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
	if [ "$(id -u)" = 0 ]; then
		echo "setup: installing Debian packages:$missing"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
	else
		echo "setup: not root, so not installing Debian packages:$missing (the network-lab tests will fail unless STARLING_SKIP_LAB=1)"
	fi
fi

# pnpm, pinned by package.json. corepack's signature check fails against some
# registries, so install it with npm.
if [ "$(pnpm --version 2>/dev/null || true)" != "$PNPM_VERSION" ]; then
	echo "setup: installing pnpm $PNPM_VERSION"
	npm install -g --silent "pnpm@$PNPM_VERSION"
fi

# Native addons (better-sqlite3) compile from source when no prebuilt binary
# can be downloaded; Debian's nodejs ships its headers in /usr/include/node.
if [ -f /usr/include/node/node.h ] && [ -z "${npm_config_nodedir:-}" ]; then
	export npm_config_nodedir=/usr
fi

pnpm install --frozen-lockfile
pnpm build
