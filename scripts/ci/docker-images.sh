#!/bin/sh
# Builds the compose stack's images for CI the way users build them (from
# source: `docker-compose build`), with two stand-ins for what our CI machines
# lack: a local Node 24 base image, since no image registry is reachable
# (docker-base-image.sh), and this machine's extra CA certificates in
# docker/ca-certificates/, since its outgoing TLS is intercepted and the build
# stage must trust the interceptor to reach the npm registry.
#   usage: sh scripts/ci/docker-images.sh     (needs dockerd: docker-daemon.sh start)
set -eu
cd "$(dirname "$0")/../.."

base="$(sh scripts/ci/docker-base-image.sh)"
work="$(mktemp -d)"
copied=""
cleanup() {
	rm -rf "$work"
	# Only the copies made here; certificates a user put there stay.
	for cert in $copied; do rm -f "$cert"; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The local CAs Debian's trust store adds (update-ca-certificates' folder).
for cert in $(find /usr/local/share/ca-certificates -type f -name '*.crt' 2>/dev/null | sort); do
	copy="docker/ca-certificates/ci-host-$(basename "$cert")"
	cp -f "$cert" "$copy"
	copied="$copied $copy"
done

# Its own settings file, so a docker/.env of a real deployment plays no part.
cat >"$work/build.env" <<ENV
STARLING_NODE_IMAGE=$base
STARLING_DEBIAN_IMAGE=starling-ci/debian:bookworm-minbase
STARLING_IMAGE_PREFIX=${STARLING_IMAGE_PREFIX:-starling-ci}
STARLING_PUBLIC_HOST=build.invalid
STARLING_RELAY_SECRET=unused-at-build-time
STARLING_POSTGRES_PASSWORD=unused-at-build-time
ENV
docker-compose -f docker/docker-compose.yml --env-file "$work/build.env" build
# The `ha` deployment shares management, signal, relay and coturn with the one
# above (same image names); its own images are PostgreSQL, NATS and HAProxy.
docker-compose -f docker/docker-compose.ha.yml --env-file "$work/build.env" build postgres nats haproxy
