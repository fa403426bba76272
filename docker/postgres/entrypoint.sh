#!/bin/sh
# First start (empty $PGDATA): a cluster, then the role and database management
# uses, with the password from $POSTGRES_PASSWORD (fed on stdin, never on a
# command line). Every start: postgres in the foreground, listening on the container's
# network, clients authenticated by password (scram-sha-256).
set -eu
: "${POSTGRES_DB:=starling}"
: "${POSTGRES_USER:=starling}"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
	password="${POSTGRES_PASSWORD:-}"
	if [ -z "$password" ]; then
		echo "starling-postgres: POSTGRES_PASSWORD is not set" >&2
		exit 1
	fi
	initdb -D "$PGDATA" -U postgres -A peer --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
	printf 'host all all 0.0.0.0/0 scram-sha-256\nhost all all ::/0 scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
	# SQL string literal: single quotes doubled. Single-user mode: no listener yet.
	quoted="$(printf '%s' "$password" | sed "s/'/''/g")"
	printf "CREATE ROLE \"%s\" LOGIN PASSWORD '%s';\n" "$POSTGRES_USER" "$quoted" |
		postgres --single -D "$PGDATA" postgres >/dev/null
	printf 'CREATE DATABASE "%s" OWNER "%s";\n' "$POSTGRES_DB" "$POSTGRES_USER" |
		postgres --single -D "$PGDATA" postgres >/dev/null
	echo "starling-postgres: created database $POSTGRES_DB owned by $POSTGRES_USER" >&2
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/tmp
