#!/bin/sh
# CI: the docker compose deployment end to end (docker/test/compose.test.ts).
# Installs and starts Docker when needed (and stops a dockerd it started),
# builds the images from source as users do (docker-images.sh), then runs the
# tests: compose.test.ts brings the default stack up, joins two lab agents and
# one installed by install.sh on a container booting systemd, restarts the
# stack and tears it all down; compose-ha.test.ts does the same with the `ha`
# deployment (PostgreSQL, NATS, two of each service behind HAProxy with TLS)
# and kills a management instance. About 6 minutes from cold, most of it the
# image build, plus the `ha` test's own time (see docker/README.md).
#   usage: sh scripts/ci/docker-test.sh [test files]     (root; after `pnpm install` and `pnpm build`)
set -eu
cd "$(dirname "$0")/../.."
# On the project's Node 24, however it was called.
[ -n "${STARLING_NODE24:-}" ] || exec sh scripts/node24.sh sh scripts/ci/docker-test.sh "$@"
started="$(date +%s)"

release_dir="$(mktemp -d)"
sh scripts/ci/docker-daemon.sh start
trap 'rm -rf "$release_dir"; sh scripts/ci/docker-daemon.sh stop' EXIT
trap 'exit 130' INT TERM

sh scripts/ci/docker-images.sh
# A Debian server booting systemd, and the agent's release tarball, for the
# install.sh-under-systemd part of the test.
docker build -q -t starling-ci/systemd-host:local \
	--build-arg BASE=starling-ci/debian:bookworm-minbase docker/test/systemd-host >/dev/null
STARLING_CI_AGENT_TARBALL="$(node scripts/release/build-agent.mjs --out "$release_dir" | tail -n 1)"
export STARLING_CI_AGENT_TARBALL
echo "docker-test: images and release ready after $(($(date +%s) - started)) s" >&2
# Arguments pick test files, e.g. docker/test/compose-ha.test.ts.
pnpm exec vitest run --config docker/test/vitest.config.ts "$@"
echo "docker-test: done in $(($(date +%s) - started)) s" >&2
