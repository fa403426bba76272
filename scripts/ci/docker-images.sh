#!/bin/sh
# Builds the compose stack's images for CI without any image registry: a local
# Node 20 base (docker-base-image.sh) and, because containers here cannot reach
# the npm registry through this machine's TLS-inspecting egress, production
# trees built on the host (docker/build-trees.sh, after `pnpm install`) that
# docker/Dockerfile takes with PREBUILT=1. The Dockerfile's stages after that
# (runtime root, service images) are the ones users build.
#   usage: sh scripts/ci/docker-images.sh     (needs dockerd: docker-daemon.sh start)
set -eu
cd "$(dirname "$0")/../.."

base="$(sh scripts/ci/docker-base-image.sh)"
work="$(mktemp -d)"
trap 'rm -rf "$work" docker/prebuilt.tar' EXIT INT TERM
sh docker/build-trees.sh "$work/trees"
tar -C "$work/trees" -cf docker/prebuilt.tar .

# Its own settings file, so a docker/.env of a real deployment plays no part.
cat >"$work/build.env" <<ENV
STARLING_NODE_IMAGE=$base
STARLING_DEBIAN_IMAGE=starling-ci/debian:bookworm-minbase
STARLING_PREBUILT=1
STARLING_IMAGE_PREFIX=${STARLING_IMAGE_PREFIX:-starling-ci}
STARLING_PUBLIC_HOST=build.invalid
STARLING_RELAY_SECRET=unused-at-build-time
ENV
docker-compose -f docker/docker-compose.yml --env-file "$work/build.env" build
