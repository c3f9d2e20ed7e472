#!/usr/bin/env bash
# The official postgres image's entrypoint contract, for the stand-in (docker/standin/postgres): as root,
# own PGDATA and drop to the postgres user; on an empty PGDATA, initdb with POSTGRES_USER and
# POSTGRES_PASSWORD (scram-sha-256 over TCP, trust on the local socket), then run
# /docker-entrypoint-initdb.d/*.sh and *.sql against a server on the socket only; then serve on all addresses.
set -euo pipefail

PGDATA="${PGDATA:-/var/lib/postgresql/data}"
export PGDATA

if [ "${1:-postgres}" != postgres ]; then
  exec "$@"
fi
shift || true

if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown -R postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" postgres "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  : "${POSTGRES_PASSWORD:?is required: the password of the superuser}"
  user="${POSTGRES_USER:-postgres}"
  pwfile="$(mktemp)"
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb --username="$user" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 \
    --locale=C.UTF-8 >/dev/null
  rm -f "$pwfile"
  printf 'host all all all scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
  pg_ctl -o "-c listen_addresses=''" -w start >/dev/null
  export POSTGRES_USER="$user"
  for file in /docker-entrypoint-initdb.d/*; do
    case "$file" in
      *.sh)
        echo "$0: running $file"
        bash "$file"
        ;;
      *.sql)
        echo "$0: running $file"
        psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$user" --dbname postgres -f "$file"
        ;;
      *) ;;
    esac
  done
  pg_ctl -m fast -w stop >/dev/null
  echo "$0: PostgreSQL init process complete; ready for start up."
fi

exec postgres -c listen_addresses='*' "$@"
