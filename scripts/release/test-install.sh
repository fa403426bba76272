#!/bin/sh
# The agent's install path, for real: scripts/install.sh and the release
# tarball in a clean Debian bookworm root filesystem (debootstrap minbase, see
# scripts/ci/debian-rootfs.sh), in a chroot. Packages come from Debian's mirror.
#
#   usage (root): sh scripts/release/test-install.sh [TARBALL]
#   without TARBALL it builds one with scripts/release/build-agent.mjs (run `pnpm build` first)
#
# What it checks, in order:
#   1. errors: not root, a missing tarball, a file that is no release, a URL
#      without curl/wget: one line, exit 1
#   2. install from the tarball in a root without wg/nft/systemd: the Debian
#      packages get installed (and wireguard-go when the kernel has no WireGuard),
#      `starling version` works, no unit (no systemctl), the installed daemon
#      runs and creates the peer's key
#   3. with systemd present, install again from the extracted release folder
#      (idempotent upgrade): the unit is written and enabled, `systemd-analyze
#      verify` accepts it and rejects a broken copy, the key is unchanged
#   4. install.sh --uninstall: unit, files and command gone, state kept
#   5. install from an http URL (served on loopback, fetched with curl), then
#      install.sh --uninstall --purge: state gone
#
# The chroot shares the host's network (apt needs it) but nothing here
# creates interfaces: the WireGuard probe runs in a throwaway namespace, and
# interface/nftables removal is tested in a lab namespace by
# apps/agent/test/install-uninstall.test.ts.
set -eu
cd "$(dirname "$0")/../.."
# On the project's Node 24, however it was called.
[ -n "${STARLING_NODE24:-}" ] || exec sh scripts/node24.sh sh scripts/release/test-install.sh "$@"

say() { echo "test-install: $*"; }
fail() {
	echo "test-install: FAIL: $*" >&2
	exit 1
}

[ "$(id -u)" = 0 ] || fail "must run as root (chroot, mounts)"
started=$(date +%s)
checks=0
ok() {
	checks=$((checks + 1))
	say "ok $checks - $*"
}

# Every mount under a test root, deepest first.
mounts_under() {
	awk -v r="$1" '$2 == r || index($2, r "/") == 1 { print $2 }' /proc/self/mounts | sort -r
}
remove_root() {
	dir=$1
	for m in $(mounts_under "$dir"); do
		umount "$m" 2>/dev/null || umount -l "$m"
	done
	# Never delete through a mount that is still there.
	if [ -n "$(mounts_under "$dir")" ]; then
		echo "test-install: could not unmount everything under $dir; left it in place" >&2
		return 1
	fi
	rm -rf --one-file-system "$dir"
}

# Leftovers of a crashed run.
for old in /var/tmp/starling-install-test.*; do
	[ -d "$old" ] || continue
	say "removing leftover $old"
	remove_root "$old"
done

tarball=${1:-}
if [ -z "$tarball" ]; then
	tarball=$(node scripts/release/build-agent.mjs | tail -n 1)
fi
[ -f "$tarball" ] || fail "no tarball at $tarball"
version=$(node -p 'require("./apps/agent/package.json").version')
rootfs_tar=$(sh scripts/ci/debian-rootfs.sh | tail -n 1)

root=$(mktemp -d /var/tmp/starling-install-test.XXXXXX)
http_pid=""
cleanup() {
	status=$?
	if [ -n "$http_pid" ]; then kill "$http_pid" 2>/dev/null || true; fi
	remove_root "$root" || status=1
	say "$( [ $status = 0 ] && echo passed || echo FAILED ) in $(($(date +%s) - started)) s"
	exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

tar -C "$root" -xf "$rootfs_tar"
cp /etc/resolv.conf "$root/etc/resolv.conf"
mount -t proc proc "$root/proc"
mount -t sysfs -o ro sysfs "$root/sys"
# apt wants a pty for its log; a private devpts instance, not the host's.
mount -t devpts -o newinstance,ptmxmode=0666 devpts "$root/dev/pts"
cp "$tarball" "$root/tmp/"
cp scripts/install.sh "$root/tmp/install.sh"
artifact=/tmp/$(basename "$tarball")

# A command in the chroot, with a clean environment.
in_root() {
	env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
		chroot "$root" "$@"
}
# Expects failure with exactly one line on stderr that contains $1.
expect_error() {
	expected=$1
	shift
	if in_root "$@" >/dev/null 2>"$root/tmp/err"; then fail "'$*' succeeded; expected: $expected"; fi
	[ "$(wc -l <"$root/tmp/err")" -eq 1 ] || fail "'$*' printed more than one line: $(cat "$root/tmp/err")"
	grep -q -- "$expected" "$root/tmp/err" || fail "'$*' said '$(cat "$root/tmp/err")'; expected '$expected'"
	ok "'$*' fails with: $(cat "$root/tmp/err")"
}

# --- 1. errors
in_root sh -c 'command -v wg || command -v nft || command -v systemctl' >/dev/null &&
	fail "the root is not clean: wg, nft or systemctl is already there"
expect_error "must run as root" setpriv --reuid=65534 --regid=65534 --clear-groups sh /tmp/install.sh "$artifact"
expect_error "no such file: /tmp/nope.tar.gz" sh /tmp/install.sh /tmp/nope.tar.gz
echo "not a tarball" >"$root/tmp/bogus.tar.gz"
expect_error "is not a gzip tarball" sh /tmp/install.sh /tmp/bogus.tar.gz
expect_error "--purge only goes with --uninstall" sh /tmp/install.sh --purge "$artifact"
expect_error "neither curl nor wget is installed" sh /tmp/install.sh "http://127.0.0.1:9/$(basename "$tarball")"

# --- 2. install from the tarball into a root without wg, nft, systemd
in_root sh /tmp/install.sh "$artifact" | tee "$root/tmp/install-1.log"
for tool in wg ip nft; do
	in_root sh -c "command -v $tool" >/dev/null || fail "$tool is not installed after install.sh"
done
ok "install.sh installed wg, ip and nft from Debian's mirror"
if [ -d /sys/module/wireguard ]; then
	grep -q "the kernel has WireGuard" "$root/tmp/install-1.log" || fail "install.sh missed the kernel's WireGuard"
	ok "the kernel has WireGuard, install.sh saw it"
else
	in_root sh -c 'command -v wireguard-go' >/dev/null || fail "no kernel WireGuard, yet wireguard-go was not installed"
	ok "the kernel has no WireGuard: install.sh installed wireguard-go"
fi
[ "$(in_root starling version)" = "$version" ] || fail "'starling version' says '$(in_root starling version)', expected $version"
ok "starling version = $version (from /usr/local/bin/starling)"
in_root sh -c 'command -v npm || command -v node' >/dev/null && fail "npm or node is on the root's PATH; the test would prove nothing"
ok "no node or npm on the server; the artifact carries its own runtime"
grep -q "systemctl not found" "$root/tmp/install-1.log" || fail "install.sh did not say that systemd is missing"
[ ! -e "$root/etc/systemd/system/starling.service" ] || fail "a unit was written without systemd"
ok "without systemctl: no unit, and install.sh said so"

# The installed daemon runs on the clean root and creates the peer's key.
in_root sh -c 'starling service run >/tmp/daemon.log 2>&1 & echo $! >/tmp/daemon.pid
	for i in $(seq 50); do starling status >/tmp/status.txt 2>/dev/null && break; sleep 0.2; done
	kill $(cat /tmp/daemon.pid); wait $(cat /tmp/daemon.pid) || true'
grep -q "Daemon version: $version" "$root/tmp/status.txt" || fail "the installed daemon did not answer: $(cat "$root/tmp/daemon.log")"
key_before=$(cat "$root/var/lib/starling/private.key")
[ -n "$key_before" ] || fail "the daemon created no key"
ok "the installed daemon runs (status answered) and created /var/lib/starling/private.key"

# --- 3. systemd present; install again from the extracted release folder
in_root sh -c 'DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd >/dev/null'
in_root sh -c "mkdir /tmp/release && tar -C /tmp/release -xzf $artifact"
in_root sh -c 'sh /tmp/release/starling-agent-*/install.sh' | tee "$root/tmp/install-2.log"
grep -q "installing Debian packages" "$root/tmp/install-2.log" && fail "the second run installed packages again"
ok "second run (from the extracted release folder) installed no packages again"
unit=$root/etc/systemd/system/starling.service
[ -f "$unit" ] || fail "no unit at /etc/systemd/system/starling.service"
grep -qx "ExecStart=/opt/starling/bin/node --max-semi-space-size=1 /opt/starling/lib/starling.js service run" "$unit" ||
	fail "unexpected ExecStart: $(grep ExecStart "$unit")"
[ -L "$root/etc/systemd/system/multi-user.target.wants/starling.service" ] || fail "the unit is not enabled"
ok "unit written with the installed paths and enabled (multi-user.target.wants)"
in_root systemd-analyze verify /etc/systemd/system/starling.service 2>"$root/tmp/verify.err" ||
	fail "systemd-analyze verify rejects the unit: $(cat "$root/tmp/verify.err")"
ok "systemd-analyze verify accepts the unit"
# The check can fail: the same unit with an ExecStart that does not exist.
mkdir "$root/tmp/broken"
sed 's#^ExecStart=/opt/starling/bin/node#ExecStart=/opt/starling/bin/missing-node#' "$unit" >"$root/tmp/broken/starling.service"
if in_root systemd-analyze verify /tmp/broken/starling.service 2>"$root/tmp/verify-broken.err"; then
	fail "systemd-analyze verify accepted a unit whose ExecStart does not exist"
fi
ok "systemd-analyze verify rejects a broken copy: $(head -n 1 "$root/tmp/verify-broken.err")"
[ "$(cat "$root/var/lib/starling/private.key")" = "$key_before" ] || fail "the upgrade changed the peer's key"
[ ! -e "$root/opt/starling.old" ] && [ -z "$(ls -d "$root"/opt/starling.new.* 2>/dev/null)" ] || fail "the upgrade left staging folders in /opt"
ok "upgrade kept /var/lib/starling (same key) and left no staging folders"

# --- 4. uninstall keeps the state
# The documented way: the copy of install.sh in the installed release.
in_root sh /opt/starling/install.sh --uninstall | tee "$root/tmp/uninstall.log"
[ ! -e "$unit" ] || fail "the unit is still there after --uninstall"
[ ! -e "$root/etc/systemd/system/multi-user.target.wants/starling.service" ] || fail "the unit is still enabled"
[ ! -e "$root/opt/starling" ] && [ ! -e "$root/usr/local/bin/starling" ] || fail "files left after --uninstall"
[ ! -e "$root/var/cache/starling" ] || fail "the CLI's compile cache /var/cache/starling is left after --uninstall"
[ "$(cat "$root/var/lib/starling/private.key")" = "$key_before" ] || fail "--uninstall touched the state"
grep -q "Kept the state in /var/lib/starling" "$root/tmp/uninstall.log" || fail "--uninstall did not say it kept the state"
ok "--uninstall removed the unit, /opt/starling, the command and the compile cache, and kept the state"

# --- 5. install from a URL (the tarball served on loopback), then uninstall --purge deletes the state
in_root sh -c 'DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends curl >/dev/null'
node -e '
	const { createReadStream } = require("node:fs");
	const server = require("node:http").createServer((req, res) => {
		if (req.url !== "/" + require("node:path").basename(process.argv[1])) { res.writeHead(404).end(); return; }
		res.writeHead(200, { "content-type": "application/gzip" });
		createReadStream(process.argv[1]).pipe(res);
	});
	server.listen(0, "127.0.0.1", () => console.log(server.address().port));
' "$tarball" >"$root/tmp/http.port" &
http_pid=$!
for _ in $(seq 50); do [ -s "$root/tmp/http.port" ] && break; sleep 0.1; done
url=http://127.0.0.1:$(cat "$root/tmp/http.port")/$(basename "$tarball")
expect_error "download failed: http://127.0.0.1" sh /tmp/install.sh "$url.missing"
in_root sh /tmp/install.sh "$url" >"$root/tmp/install-url.log"
kill "$http_pid"
http_pid=""
grep -q "downloading $url" "$root/tmp/install-url.log" || fail "install.sh did not download from $url"
[ "$(in_root starling version)" = "$version" ] || fail "'starling version' fails after installing from $url"
ok "installed from $url (curl), starling version = $version"
[ -f "$unit" ] || fail "reinstall wrote no unit"
in_root sh /tmp/install.sh --uninstall --purge
[ ! -e "$root/var/lib/starling" ] || fail "--purge left /var/lib/starling"
[ ! -e "$unit" ] && [ ! -e "$root/opt/starling" ] || fail "--purge left the unit or files"
ok "--uninstall --purge removed the state too"

say "$checks passed, 0 failed"
