#!/bin/sh
# Assembles the root filesystem the service images run on: node and the shared
# libraries it and the native addons under TREES need (found with ldd), /bin/sh
# and env for scripts, an unprivileged user, /tmp and /data. No package manager,
# compiler or npm: those stay in the build stage.
#   usage: sh docker/runtime-root.sh TREES ROOT
set -eu
trees="$1"
root="$2"
uid=10001

node_bin="$(readlink -f "$(command -v node)")"
mkdir -p "$root/usr/local/bin" "$root/usr/bin" "$root/bin" "$root/etc" "$root/tmp" \
	"$root/data" "$root/app"
cp "$node_bin" "$root/usr/local/bin/node"
cp "$(readlink -f "$(command -v dash)")" "$root/bin/sh"
cp "$(readlink -f "$(command -v env)")" "$root/usr/bin/env"

# Each library as ldd resolves it, at the same path (including the dynamic
# loader, whose path is written into every executable).
{
	ldd "$node_bin"
	ldd "$root/bin/sh"
	ldd "$root/usr/bin/env"
	find "$trees" -name '*.node' -type f -exec ldd {} \;
} | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u |
	while read -r lib; do
		cp -L --parents "$lib" "$root"
	done

printf 'root:x:0:0:root:/root:/bin/sh\nstarling:x:%s:%s:starling:/data:/bin/sh\n' "$uid" "$uid" \
	>"$root/etc/passwd"
printf 'root:x:0:\nstarling:x:%s:\n' "$uid" >"$root/etc/group"
chmod 1777 "$root/tmp"
chown "$uid:$uid" "$root/data"
chmod 0750 "$root/data"

# The image must run: node and its libraries, from this root alone.
chroot "$root" /usr/local/bin/node -e 'process.exit(0)'
