#!/usr/bin/env bash
# The SQL connector's full-import rate from PostgreSQL next to COPY ... TO
# STDOUT of the same table, on a PostgreSQL this script starts on 127.0.0.1
# (and stops) in a temporary folder.
#
#   cargo build --release -p mvsync
#   bench/sql-import.sh [ROWS]          # default 1000000
#
# Prints the wall time and peak RSS of each, and of the same rows imported
# from a CSV file (the engine's share of the time). Needs Debian's postgresql
# package; run as root it runs the server as the postgres user.
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-1000000}
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
mvsync=$PWD/target/release/mvsync
work=$(mktemp -d /tmp/mvsync-sql-bench-XXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export PGPASSWORD=bench-only-password
as_pg() { if [ "$(id -u)" = 0 ]; then setpriv --reuid=postgres --regid=postgres --clear-groups "$@"; else "$@"; fi; }
echo "$PGPASSWORD" > "$work/pw"
if [ "$(id -u)" = 0 ]; then chown -R postgres:postgres "$work"; fi
as_pg "$bin/initdb" -D "$work/data" -U mvsync --auth=scram-sha-256 --pwfile="$work/pw" -E UTF8 --locale=C.UTF-8 --no-sync >/dev/null
pg_args=(-D "$work/data" -p "$port" -c listen_addresses=127.0.0.1 -c unix_socket_directories="$work" -c fsync=off)
if [ "$(id -u)" = 0 ]; then
    setpriv --reuid=postgres --regid=postgres --clear-groups "$bin/postgres" "${pg_args[@]}" >"$work/server.log" 2>&1 &
else
    "$bin/postgres" "${pg_args[@]}" >"$work/server.log" 2>&1 &
fi
server=$!   # postgres itself: setpriv execs it
trap 'kill -INT $server; wait $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" && break; sleep 0.1; done
psql=(psql -q -h 127.0.0.1 -p "$port" -U mvsync -d postgres -v ON_ERROR_STOP=1)
"${psql[@]}" -c "CREATE TABLE workers (
    employee_id TEXT PRIMARY KEY, first_name TEXT, last_name TEXT, preferred_name TEXT,
    department TEXT, city TEXT, worker_type TEXT, status TEXT, manager_id TEXT,
    email TEXT, hire_date DATE, updated_at TIMESTAMPTZ NOT NULL)"
"${psql[@]}" -c "INSERT INTO workers SELECT 'E' || lpad(i::text, 7, '0'), 'First' || i, 'Last' || (i % 5000),
    CASE WHEN i % 7 = 0 THEN 'Pref' || i END, 'Department ' || (i % 40), 'City ' || (i % 300),
    CASE WHEN i % 10 = 0 THEN 'Contractor' ELSE 'Employee' END, 'Active',
    CASE WHEN i > 1 THEN 'E' || lpad((i / 10)::text, 7, '0') END,
    'first' || i || '@example.com', DATE '2020-01-01' + (i % 2000), now()
  FROM generate_series(1, $rows) AS i"
"${psql[@]}" -c "VACUUM ANALYZE workers"

cat > "$work/mvsync.toml" <<TOML
[store]
path = "state/mvsync.db"
[engine]
deletion_threshold = 2000000
[connectors.hr]
type = "sql"
url = "postgres://mvsync@127.0.0.1:$port/postgres"
password = { env = "PGPASSWORD" }
object_type = "worker"
table = "workers"
anchor = "employee_id"
references = { manager_id = "employee_id" }
delta = { strategy = "watermark", column = "updated_at" }
TOML

# The same rows as a CSV file, for the same import through the CSV connector.
"${psql[@]}" -c "\\copy workers TO '$work/workers.csv' CSV HEADER"
cat > "$work/csv.toml" <<TOML
[store]
path = "state/csv.db"
[connectors.hr]
type = "csv"
path = "workers.csv"
object_type = "worker"
anchor = "employee_id"
references = { manager_id = "employee_id" }
TOML

measure() { /usr/bin/time -f "%e s wall, %M KB peak RSS" "$@"; }
echo "== COPY workers TO STDOUT ($rows rows)"
measure "${psql[@]}" -c "COPY workers TO STDOUT" >/dev/null
echo "== mvsync import hr --full ($rows rows)"
measure "$mvsync" -c "$work/mvsync.toml" import hr --full
echo "== mvsync import hr --delta (nothing changed)"
measure "$mvsync" -c "$work/mvsync.toml" import hr --delta
echo "== the same rows from a CSV file: mvsync import hr --full (csv connector)"
measure "$mvsync" -c "$work/csv.toml" import hr --full
