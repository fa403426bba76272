#!/bin/sh
# Makes sure a Docker engine answers, for CI tests on a machine without an init
# system: installs Debian's docker.io and docker-compose when missing and starts
# dockerd in the background. `stop` ends dockerd only if `start` started it.
#   usage: sh scripts/ci/docker-daemon.sh start|stop
#
# A dockerd started here keeps its own bridges inside 198.19.0.0/16 (part of
# the 198.18.0.0/15 test range), so it adds no other address to the machine.
set -eu
state_dir=/run/starling-ci
marker="$state_dir/dockerd.pid"
log=/var/log/starling-ci-dockerd.log

engine_answers() {
	docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}

start() {
	missing=""
	command -v dockerd >/dev/null 2>&1 || missing="$missing docker.io"
	command -v docker-compose >/dev/null 2>&1 || missing="$missing docker-compose"
	if [ -n "$missing" ]; then
		echo "docker-daemon: installing$missing" >&2
		apt-get update -qq >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >&2
	fi
	if engine_answers; then
		echo "docker-daemon: dockerd already running" >&2
		return 0
	fi
	mkdir -p "$state_dir"
	# setsid: dockerd must not die with this shell or receive the caller's signals.
	setsid dockerd \
		--bip 198.19.250.1/24 \
		--default-address-pool base=198.19.0.0/17,size=24 \
		>>"$log" 2>&1 </dev/null &
	echo $! >"$marker"
	i=0
	while ! engine_answers; do
		i=$((i + 1))
		if [ "$i" -gt 120 ] || ! kill -0 "$(cat "$marker")" 2>/dev/null; then
			echo "docker-daemon: dockerd did not start; last lines of $log:" >&2
			tail -n 20 "$log" >&2
			exit 1
		fi
		sleep 0.5
	done
	echo "docker-daemon: started dockerd (pid $(cat "$marker"), log $log)" >&2
}

stop() {
	[ -f "$marker" ] || return 0
	pid="$(cat "$marker")"
	rm -f "$marker"
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid"
	i=0
	while kill -0 "$pid" 2>/dev/null; do
		i=$((i + 1))
		if [ "$i" -gt 60 ]; then
			kill -KILL "$pid" 2>/dev/null || true
			break
		fi
		sleep 0.5
	done
	echo "docker-daemon: stopped dockerd (pid $pid)" >&2
}

case "${1:-}" in
start) start ;;
stop) stop ;;
*)
	echo "usage: $0 start|stop" >&2
	exit 2
	;;
esac
