#!/usr/bin/env bash
# install-deps.sh - install the Debian packages gridgate builds and tests with.
# Idempotent: does nothing when everything is present. Needs root to install.
set -euo pipefail

pkgs=(build-essential cmake pkg-config python3 openssl
      libssl-dev libsqlite3-dev sqlite3 libevent-dev libjansson-dev libcmocka-dev
      iproute2 nftables)

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: need root to install: ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
