#!/usr/bin/env bash
# pg-setup.sh - start the local PostgreSQL cluster (Debian's postgresql
# package) and create the role the tests and benches use: gridgate, password
# gridgate, CREATEDB, reached over 127.0.0.1:5432. Idempotent; needs root.
set -euo pipefail

cluster=$(pg_lsclusters -h | awk 'NR==1 {print $1" "$2}')
if [ -z "$cluster" ]; then
  ver=$(ls /usr/lib/postgresql | sort -n | tail -1)
  pg_createcluster "$ver" main >/dev/null
  cluster="$ver main"
fi
set -- $cluster
if ! pg_lsclusters -h | awk -v v="$1" -v n="$2" '$1==v && $2==n {print $4}' | grep -q online; then
  pg_ctlcluster "$1" "$2" start || service postgresql start
fi
for _ in $(seq 1 50); do
  su postgres -c "psql -qAt -c 'SELECT 1'" >/dev/null 2>&1 && break
  sleep 0.2
done
if ! su postgres -c "psql -qAt -c \"SELECT 1 FROM pg_roles WHERE rolname='gridgate'\"" | grep -q 1; then
  su postgres -c "psql -q -c \"CREATE ROLE gridgate LOGIN CREATEDB PASSWORD 'gridgate'\""
fi
if ! su postgres -c "psql -qAt -c \"SELECT 1 FROM pg_database WHERE datname='gridgate'\"" | grep -q 1; then
  su postgres -c "psql -q -c 'CREATE DATABASE gridgate OWNER gridgate'"
fi
echo "pg-setup: PostgreSQL $1/$2 online; role gridgate ready"
