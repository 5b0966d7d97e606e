#!/usr/bin/env bash
# Start a throwaway PostgreSQL server on loopback for tests and benchmarks; print its URL.
#
#   scripts/services/postgres.sh DIR [PORT]   -> postgresql+psycopg://tuigen@127.0.0.1:PORT/postgres
#   scripts/services/postgres.sh --stop DIR
#
# Uses Debian's postgresql binaries (apt-get install postgresql). initdb refuses to run as root,
# so as root the cluster belongs to the `postgres` user. Trust auth: loopback only, data in DIR.
set -euo pipefail

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [[ -z "$bindir" ]]; then
  echo "postgres.sh: no PostgreSQL server binaries (apt-get install postgresql)" >&2
  exit 3
fi

as_owner() {
  if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if [[ "${1:-}" == "--stop" ]]; then
  as_owner "$bindir/pg_ctl" -D "$2/data" -m immediate stop >/dev/null 2>&1 || true
  exit 0
fi

dir=$1
port=${2:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
mkdir -p "$dir"
[[ $(id -u) == 0 ]] && chown postgres "$dir"
if [[ ! -f "$dir/data/PG_VERSION" ]]; then
  # (the owner must be able to reach DIR: not under a root-only folder such as pytest's tmp)
  as_owner "$bindir/initdb" -D "$dir/data" -U tuigen --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1 \
    || { echo "postgres.sh: initdb failed:" >&2; tail -5 "$dir/initdb.log" >&2; exit 4; }
fi
# fsync off: a test server that dies loses nothing anybody wants; it makes DDL ~10x faster.
as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
  -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
  start >/dev/null || { echo "postgres.sh: the server did not start:" >&2; tail -5 "$dir/server.log" >&2; exit 5; }
echo "postgresql+psycopg://tuigen@127.0.0.1:$port/postgres"
