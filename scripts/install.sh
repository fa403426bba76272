#!/bin/sh
# Installs the Starling agent on a Linux x86-64 server (Debian, Ubuntu, or any
# systemd distribution that already has wg, ip and nft).
#
#   install.sh [options] [ARTIFACT]       install or upgrade
#   install.sh --uninstall [--purge]      remove it
#
# ARTIFACT is a release tarball (starling-agent-<version>-linux-x64.tar.gz),
# given as a local path or an http(s) URL. Without it, the extracted release
# folder this script sits in is installed.
#
# options:
#   --prefix DIR     where the agent goes (default /opt/starling)
#   --bin-dir DIR    where the `starling` command is linked (default /usr/local/bin)
#   --no-deps        do not install Debian packages; fail if a tool is missing
#   --uninstall      stop and remove the service, its interface and nftables
#                    tables, the installed files and the CLI's compile cache
#                    (/var/cache/starling); keep /var/lib/starling
#   --purge          with --uninstall: also delete the state (the peer's key)
#
# Running it again is safe; an upgrade keeps the state in /var/lib/starling and
# restarts a running service.
set -eu

prefix=/opt/starling
bin_dir=/usr/local/bin
artifact=""
mode=install
purge=""
install_deps=yes

die() {
	echo "install.sh: $*" >&2
	exit 1
}
say() {
	echo "install.sh: $*"
}

while [ $# -gt 0 ]; do
	case "$1" in
	--prefix)
		[ $# -ge 2 ] || die "--prefix needs a folder"
		prefix=$2
		shift 2
		;;
	--bin-dir)
		[ $# -ge 2 ] || die "--bin-dir needs a folder"
		bin_dir=$2
		shift 2
		;;
	--no-deps)
		install_deps=""
		shift
		;;
	--uninstall)
		mode=uninstall
		shift
		;;
	--purge)
		purge=--purge
		shift
		;;
	-h | --help)
		# The comment block at the top of this file.
		awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
		exit 0
		;;
	-*) die "unknown option '$1' (see --help)" ;;
	*)
		[ -z "$artifact" ] || die "more than one artifact given: '$artifact' and '$1'"
		artifact=$1
		shift
		;;
	esac
done
[ -z "$purge" ] || [ "$mode" = uninstall ] || die "--purge only goes with --uninstall"
case "$prefix" in
/?*) ;;
*) die "--prefix must be an absolute path, got '$prefix'" ;;
esac
prefix=${prefix%/}
[ "$prefix" != /usr ] && [ "$prefix" != /opt ] || die "--prefix must be a folder of its own, not '$prefix'"

[ "$(id -u)" = 0 ] || die "must run as root (try: sudo sh $0 ...)"
[ "$(uname -s)" = Linux ] || die "the agent runs on Linux only, this is $(uname -s)"
[ "$(uname -m)" = x86_64 ] || die "this release is for x86-64 (linux-x64), this machine is $(uname -m)"

uninstall() {
	if [ -x "$prefix/bin/starling" ]; then
		# shellcheck disable=SC2086 # $purge is empty or one word
		"$prefix/bin/starling" service uninstall $purge || die "uninstall failed (see the line above)"
	else
		say "no agent in $prefix; removing only the unit, if any"
		if command -v systemctl >/dev/null 2>&1; then
			systemctl disable --now starling.service >/dev/null 2>&1 || true
		fi
		rm -f /etc/systemd/system/starling.service
		[ -z "$purge" ] || rm -rf /var/lib/starling
	fi
	if [ -L "$bin_dir/starling" ] && [ "$(readlink "$bin_dir/starling")" = "$prefix/bin/starling" ]; then
		rm -f "$bin_dir/starling"
	fi
	rm -rf "$prefix"
	# The CLI's Node compile cache (cli/compile-cache.ts): written by root's runs,
	# after `service uninstall` above has exited, so nothing writes it again.
	rm -rf /var/cache/starling
	say "removed $prefix, $bin_dir/starling and /var/cache/starling"
}

if [ "$mode" = uninstall ]; then
	uninstall
	exit 0
fi

work=$(mktemp -d)
staged=""
cleanup() {
	rm -rf "$work"
	if [ -n "$staged" ]; then rm -rf "$staged"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 1. The release folder: from the tarball (path or URL), or the one this script is in.
if [ -z "$artifact" ]; then
	here=$(cd "$(dirname "$0")" && pwd)
	[ -x "$here/bin/node" ] && [ -f "$here/lib/starling.js" ] ||
		die "no artifact given and $here is not an extracted release (give the path or URL of starling-agent-<version>-linux-x64.tar.gz)"
	release=$here
else
	case "$artifact" in
	http://* | https://*)
		tarball="$work/starling-agent.tar.gz"
		say "downloading $artifact"
		if command -v curl >/dev/null 2>&1; then
			error=$(curl -fsSL -o "$tarball" "$artifact" 2>&1) ||
				die "download failed: $artifact ($(echo "$error" | head -n 1))"
		elif command -v wget >/dev/null 2>&1; then
			wget -q -O "$tarball" "$artifact" || die "download failed: $artifact"
		else
			die "neither curl nor wget is installed to download $artifact; download it yourself and give its path"
		fi
		;;
	*)
		[ -f "$artifact" ] || die "no such file: $artifact"
		tarball=$artifact
		;;
	esac
	mkdir "$work/x"
	tar -C "$work/x" -xzf "$tarball" 2>/dev/null || die "$artifact is not a gzip tarball"
	release=$(find "$work/x" -mindepth 1 -maxdepth 1 -type d -name 'starling-agent-*' | head -n 1)
	[ -n "$release" ] && [ -x "$release/bin/node" ] && [ -f "$release/lib/starling.js" ] ||
		die "$artifact is not a starling agent release (no starling-agent-*/bin/node inside)"
fi
version=$("$release/bin/starling" version 2>/dev/null) ||
	die "the release does not run here ($release/bin/node needs glibc and libstdc++ 6)"

# 2. System tools: wg (wireguard-tools), ip (iproute2), nft (nftables), and
# wireguard-go where the kernel has no WireGuard.
kernel_has_wireguard() {
	[ -d /sys/module/wireguard ] && return 0
	if command -v modprobe >/dev/null 2>&1 && modprobe -q wireguard 2>/dev/null; then
		[ -d /sys/module/wireguard ] && return 0
	fi
	# Built in without a /sys/module entry: try to create one in a throwaway
	# network namespace, so nothing on the host's own network changes.
	if command -v ip >/dev/null 2>&1 && command -v unshare >/dev/null 2>&1; then
		unshare --net ip link add starling-probe type wireguard >/dev/null 2>&1 && return 0
	fi
	return 1
}

apt_updated=""
apt_install() { # package...
	command -v apt-get >/dev/null 2>&1 ||
		die "missing packages: $*, and there is no apt-get to install them: install them with your package manager and run again"
	say "installing Debian packages: $*"
	export DEBIAN_FRONTEND=noninteractive
	if [ -z "$apt_updated" ]; then
		apt-get update -qq || die "apt-get update failed"
		apt_updated=yes
	fi
	apt-get install -y -qq --no-install-recommends "$@" >/dev/null || die "apt-get install $* failed"
}

missing_packages=""
need() { # command package
	command -v "$1" >/dev/null 2>&1 || missing_packages="$missing_packages $2"
}
need ip iproute2
need wg wireguard-tools
need nft nftables
if [ -n "$missing_packages" ]; then
	[ -n "$install_deps" ] ||
		die "missing packages:$missing_packages (--no-deps was given; install them and run again)"
	# shellcheck disable=SC2086 # a list of package names
	apt_install $missing_packages
fi
# After iproute2 is there: the last probe needs `ip`.
if kernel_has_wireguard; then
	say "the kernel has WireGuard"
elif command -v wireguard-go >/dev/null 2>&1; then
	say "the kernel has no WireGuard; wireguard-go is installed"
else
	[ -n "$install_deps" ] ||
		die "the kernel has no WireGuard and wireguard-go is missing (--no-deps was given; install wireguard-go and run again)"
	say "the kernel has no WireGuard: wireguard-go will run it in userspace"
	apt_install wireguard-go
fi

# 3. The files: staged beside the prefix, then swapped in, so a running daemon
# keeps its files until it restarts and a failed copy leaves the old install.
parent=$(dirname "$prefix")
mkdir -p "$parent"
staged=$(mktemp -d "$prefix.new.XXXXXX")
cp -a "$release/." "$staged/"
chmod 755 "$staged"
was_installed=""
[ -d "$prefix" ] && was_installed=yes
if [ -n "$was_installed" ]; then
	rm -rf "$prefix.old"
	mv "$prefix" "$prefix.old"
fi
mv "$staged" "$prefix"
staged=""
rm -rf "$prefix.old"
mkdir -p "$bin_dir"
ln -sfn "$prefix/bin/starling" "$bin_dir/starling"
say "installed starling $version in $prefix ($bin_dir/starling)"

# 4. The systemd unit, written by the agent itself (it knows its own paths).
if ! command -v systemctl >/dev/null 2>&1; then
	say "systemctl not found: no service installed; run 'starling service run' under your init system"
	cat <<EOF
install.sh: next steps:
  starling service run &
  starling up --setup-key <SETUP-KEY> --management-url <https://management.example:33073>
EOF
	exit 0
fi
"$prefix/bin/starling" service install || die "installing the systemd unit failed (see the line above)"
if [ ! -d /run/systemd/system ]; then
	# A chroot, a container or an image being built: it starts on the next boot.
	cat <<EOF
install.sh: next step, once the machine runs systemd:
  starling up --setup-key <SETUP-KEY> --management-url <https://management.example:33073>
EOF
	exit 0
fi
if [ -n "$was_installed" ]; then
	# An upgrade: a running daemon switches to the new files and comes back up
	# as it was; a stopped one stays stopped.
	systemctl try-restart starling.service || die "restarting starling.service failed"
	say "upgraded to $version; 'starling status' shows the connection"
	exit 0
fi
systemctl start starling.service || die "starting starling.service failed (see 'journalctl -u starling')"
cat <<EOF
install.sh: starling.service is running. Next step, to join the network:
  starling up --setup-key <SETUP-KEY> --management-url <https://management.example:33073>
EOF
