#!/usr/bin/env bash
# install-deps.sh - install the Debian packages gridgate builds and tests with.
# Idempotent: does nothing when everything is present. Needs root to install.
set -euo pipefail

pkgs=(build-essential cmake pkg-config python3 openssl
      libssl-dev libsqlite3-dev sqlite3 libevent-dev libjansson-dev libcmocka-dev
      iproute2 nftables rabbitmq-server librabbitmq-dev postgresql libpq-dev
      clang libclang-rt-dev)   # clang + libFuzzer runtime: the fuzz build

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -ne 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: need root to install: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# PostgreSQL for the marketing adapter's tests: start the Debian cluster and
# create the test role (login gridgate/gridgate over 127.0.0.1, may create
# databases). Tests reach it through GG_TEST_PG (see tests/integration/pg.py).
if [ "$(id -u)" -eq 0 ] && command -v pg_lsclusters >/dev/null 2>&1; then
  bash "$(dirname "$0")/pg-setup.sh" || echo "install-deps: PostgreSQL setup failed" >&2
fi
