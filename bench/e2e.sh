#!/usr/bin/env bash
# bench/e2e.sh - `make bench-e2e`: what crossing the gap costs.
#
# Seeds a marketing database of E2E_ACCOUNTS (200,000) accounts x E2E_MONTHS
# (24) months (kept in $BUILD/e2e-data and reused by later runs; indexes a
# newer seed has are added to it), starts both
# roles with security on (a demo config on loopback), binds a population and
# drives bill queries with `gridgate bench http` at E2E_CLIENTS (64) clients
# for E2E_SECONDS (30) s. Then, in the same run, serves the same queries
# straight from the same database behind the same HTTP front with
# `gridgate bench baseline` (no queue, no channel, no crypto) and drives it
# the same way. While the gateway runs, /healthz is probed every 10 ms (its
# latency printed before the result), and after it the utility's cache,
# governor and backend metrics and its workers' time per request by phase
# (gridgate_request_phase_seconds_total) are printed. Last line:
#   e2e rps=... p50_ms=... p99_ms=... baseline_rps=... ratio=...
set -euo pipefail

BUILD=${BUILD:-build}
GG=$(readlink -f "$BUILD/gridgate")
ACCOUNTS=${E2E_ACCOUNTS:-200000}
MONTHS=${E2E_MONTHS:-24}
CLIENTS=${E2E_CLIENTS:-64}
SECONDS_RUN=${E2E_SECONDS:-30}
POP=${E2E_POPULATION:-2000}
DATA=$(readlink -f "$BUILD")/e2e-data
DB="$DATA/marketing-$ACCOUNTS-$MONTHS.db"
WORK=$(mktemp -d /tmp/gg-e2e-XXXXXX)
PIDS=()

cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_base() {
  python3 -c 'import socket
for _ in range(200):
    s=socket.socket(); s.bind(("127.0.0.1",0)); b=s.getsockname()[1]; s.close()
    ok=True
    for p in range(b,b+5):
        t=socket.socket()
        try: t.bind(("127.0.0.1",p))
        except OSError: ok=False
        t.close()
    if ok and b+5<65535: print(b); break'
}

wait_http() {  # wait_http PORT: until /healthz answers (and the channel runs, for the portal)
  for _ in $(seq 1 300); do
    if python3 - "$1" <<'PY' 2>/dev/null; then return 0; fi
import http.client, json, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=2)
c.request("GET", "/healthz")
b = json.loads(c.getresponse().read() or b"{}")
sys.exit(0 if b.get("status") == "ok" and b.get("channel", "running") == "running" else 1)
PY
    sleep 0.2
  done
  echo "bench-e2e: port $1 never became ready" >&2
  exit 1
}

mkdir -p "$DATA"
if [ ! -f "$DB" ]; then
  echo "bench-e2e: seeding $ACCOUNTS accounts x $MONTHS months (once; kept in $DATA) ..."
  "$GG" seed --db "$DB.tmp" --accounts "$ACCOUNTS" --months "$MONTHS"
  mv "$DB.tmp" "$DB"
  [ -f "$DB.tmp-wal" ] && mv "$DB.tmp-wal" "$DB-wal" || true
  [ -f "$DB.tmp-shm" ] && rm -f "$DB.tmp-shm" || true
fi
# A file cached by an older build lacks the indexes the bill sweeps read
# through (docs/marketing-schema.md): add what is missing. Once: 67 s on the
# 8 GB file (a reseed takes several minutes: 39 s for 20,000 accounts);
# a no-op taking 0.0 s after.
"$GG" seed --db "$DB" --indexes-only

PORT=$(free_base)
"$GG" demo init "$WORK/demo" --port-base "$PORT" --accounts 1 --months 1 >/dev/null 2>&1
rm -f "$WORK/demo/marketing.db"*
ln -s "$DB" "$WORK/demo/marketing.db"
sed -i 's/^level = .*//' "$WORK/demo/utility.conf"
printf '\n[log]\nlevel = warn\n' >> "$WORK/demo/utility.conf"
printf '\n[log]\nlevel = warn\n' >> "$WORK/demo/portal.conf"
[ -n "${E2E_STORE_DURABILITY:-}" ] && for r in utility portal; do sed -i "s/^\[store\]/[store]\ndurability = $E2E_STORE_DURABILITY/" "$WORK/demo/$r.conf"; done

echo "bench-e2e: both roles on 127.0.0.1:$PORT (security on), $CLIENTS clients x $SECONDS_RUN s"
"$GG" run -c "$WORK/demo/utility.conf" 2>"$WORK/utility.log" & PIDS+=($!)
"$GG" run -c "$WORK/demo/portal.conf" 2>"$WORK/portal.log" & PIDS+=($!)
wait_http "$PORT"
# /healthz every 10 ms from a separate process while the queries run (the
# portal's loop answers it itself: its latency is the loop's responsiveness)
python3 - "$PORT" "$SECONDS_RUN" "$WORK/e2e.err" >"$WORK/healthz.out" <<'PY' &
import http.client, os, sys, time
port, secs, out = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
while not (os.path.exists(out) and "t= 1s" in open(out).read()):  # the queries are on
    time.sleep(0.05)
lat, end = [], time.time() + secs - 1
c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
while time.time() < end:
    t = time.perf_counter()
    try:
        c.request("GET", "/healthz"); c.getresponse().read()
        lat.append((time.perf_counter() - t) * 1000)
    except (OSError, http.client.HTTPException):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    time.sleep(0.01)
lat.sort()
if lat:
    print("bench-e2e: /healthz during the run n=%d p50_ms=%.2f p99_ms=%.2f max_ms=%.2f"
          % (len(lat), lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))], lat[-1]))
PY
PROBE=$!
"$GG" bench http --url "http://127.0.0.1:$PORT" --db "$DB" --concurrency "$CLIENTS" \
  --duration "$SECONDS_RUN" --mix query=100 --population "$POP" \
  2> >(tee "$WORK/e2e.err" >&2) | tee "$WORK/e2e.out"
wait "$PROBE" || true
cat "$WORK/healthz.out"
# What the utility saw: cache hits and misses, the governor, the backend,
# and where its workers' time per answered request went (binding included).
python3 - "$((PORT + 3))" <<'PY' || true
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=5)
c.request("GET", "/metrics")
keep = ("gridgate_cache_", "gridgate_backend_inflight_max", "gridgate_governor_limit",
        "gridgate_shed_total")
phases, n = [], 0
for line in c.getresponse().read().decode().splitlines():
    if line.startswith(keep):
        print("bench-e2e: utility " + line)
    elif line.startswith("gridgate_request_phase_seconds_total{phase="):
        phases.append((line.split('"')[1], float(line.split()[-1])))
    elif line.startswith("gridgate_request_duration_seconds_count"):
        n += int(line.split()[-1])
if phases and n:
    print("bench-e2e: utility ms per request (%d): " % n
          + " ".join("%s=%.2f" % (p, s * 1000 / n) for p, s in phases))
PY
for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
wait 2>/dev/null || true
PIDS=()

BPORT=$(free_base)
echo "bench-e2e: baseline on 127.0.0.1:$BPORT (same database, same HTTP front, no gateway)"
"$GG" bench baseline -c "$WORK/demo/utility.conf" --listen "127.0.0.1:$BPORT" \
  2>"$WORK/baseline.log" & PIDS+=($!)
wait_http "$BPORT"
"$GG" bench http --url "http://127.0.0.1:$BPORT" --db "$DB" --concurrency "$CLIENTS" \
  --duration "$SECONDS_RUN" --mix query=100 --population "$POP" | tee "$WORK/base.out"

python3 - "$WORK/e2e.out" "$WORK/base.out" <<'PY'
import re, sys
def res(path):
    for line in open(path):
        if line.startswith("result "):
            return dict(kv.split("=") for kv in line.split()[1:])
    raise SystemExit("bench-e2e: no result line in " + path)
e, b = res(sys.argv[1]), res(sys.argv[2])
ratio = float(e["rps"]) / max(float(b["rps"]), 1.0)
print("e2e rps=%s p50_ms=%s p99_ms=%s baseline_rps=%s ratio=%.2f"
      % (e["rps"], e["p50_ms"], e["p99_ms"], b["rps"], ratio))
PY
