"""overload.py - the burst scenario shared by test_overload (short, in
make test) and test_overload_slow (the issue's 30 s burst, label slow).

A demo on PostgreSQL whose bills query sleeps (pg_sleep in a test queries
file), a governor of `limit` slots, no cache (so every query reaches the
backend), a short request budget so that a queue deeper than it can drain
shows. Then 50 x limit clients hammer bill queries for `seconds` while one
thread polls /healthz and, half way through, a payment is made. Checks:
gridgate_backend_inflight_max never above the limit, the excess answered
503 overloaded with Retry-After, every accepted request answered by the
utility (portal relayed == utility answered, nothing left queued), the
backlog drained quickly, /healthz p99 under 100 ms, the payment completed
in about its quiet-time latency.
"""
import http.client
import json
import os
import random
import re
import subprocess
import sys
import threading
import time

from harness import Demo
import pgutil

SLOW_QUERIES = """# test queries: the bills statement sleeps, a deliberately slow backend
[bills]
WITH slow AS MATERIALIZED (SELECT pg_sleep(%s))
SELECT bill_id, period, kwh, kwh_peak, kwh_valley, amount_fen, due_date, status
  FROM bills, slow
  WHERE account_no = $1 AND period >= $2 AND period <= $3
  ORDER BY period, bill_id LIMIT $4
"""


HEALTH_PROBE = """
import http.client, json, os, sys, time
try:
    os.nice(-5)  # measure the portal, not this prober's wait for a CPU
except OSError:
    pass
port, secs = int(sys.argv[1]), float(sys.argv[2])
out, end = [], time.time() + secs
while time.time() < end:
    t0 = time.time()
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/healthz")
        c.getresponse().read()
        c.close()
        out.append(time.time() - t0)
    except Exception:
        out.append(10.0)
    time.sleep(0.02)
print(json.dumps(out))
"""


def metrics(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    c.close()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            try:
                out[k] = float(v)
            except ValueError:
                pass
    return out


def total(m, prefix):
    return sum(v for k, v in m.items() if k.startswith(prefix))


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100.0))] if xs else 0.0


def append(path, text):
    with open(path, "a") as f:
        f.write(text)


def run(c, args, limit=2, seconds=8, sleep_s=0.05, workers=8, healthz_p99=0.100):
    db = pgutil.TempDB("overload")
    d = Demo(args.gridgate, accounts=80, months=6, pg=db.conninfo)
    try:
        qfile = os.path.join(d.dir, "slow-queries.ini")
        append(qfile, SLOW_QUERIES % sleep_s)
        ucfg = os.path.join(d.dir, "utility.conf")
        text = open(ucfg).read().replace("workers = 32", "workers = %d" % workers)
        text += "marketing_queries = %s\n\n[governor]\nmax_inflight = %d\n\n[cache]\nentries = 0\n" % (
            qfile, limit)
        open(ucfg, "w").write(text)
        pcfg = os.path.join(d.dir, "portal.conf")
        text = open(pcfg).read().replace("request_timeout_ms = 5000", "request_timeout_ms = 1000")
        open(pcfg, "w").write(text)
        d.start_both()
        padmin, uadmin = d.port + 2, d.port + 3

        with d.db() as con:
            accts = [r["account_no"] for r in con.execute(
                "SELECT account_no FROM accounts WHERE status='active' ORDER BY account_no LIMIT 20")]
            payee = con.execute("SELECT b.account_no, b.bill_id, b.amount_fen FROM bills b JOIN "
                                "accounts a USING(account_no) WHERE a.status='active' AND "
                                "b.status<>'paid' ORDER BY b.bill_id LIMIT 1").fetchone()
        tokens = {}
        for i, a in enumerate(accts + [payee["account_no"]]):
            # Binding is set-up, not what is measured: with the slow queries and a
            # 1 s call timeout a loaded machine can time a bind out, so retry those.
            for _ in range(10):
                st, body = d.bind(a, user="load-%d" % i)
                if st not in (503, 504):
                    break
                time.sleep(0.2)
            if st == 201:
                tokens[a] = body["binding_token"]
        if not c.check(len(tokens) >= len(accts), "bound the population (%d)" % len(tokens)):
            return

        # quiet-time latencies of a bill query and of a binding (a priority write)
        t0 = time.time()
        st, _ = d.get("/api/v1/accounts/%s/bills" % accts[0], {"X-Binding-Token": tokens[accts[0]]})
        quiet_query = time.time() - t0
        t0 = time.time()
        d.bind(accts[1], user="quiet-probe")
        quiet_write = time.time() - t0

        stop = threading.Event()
        lock = threading.Lock()
        res = {"codes": {}, "no_retry_after": 0, "conn_errors": 0, "retry_after": []}

        def client(k):
            rnd = random.Random(k)
            conn = None
            while not stop.is_set():
                a = rnd.choice(accts)
                m = rnd.randint(1, 12)
                path = "/api/v1/accounts/%s/bills?from=2019-%02d&to=2026-12" % (a, m)
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
                    conn.request("GET", path, headers={"X-Binding-Token": tokens[a]})
                    r = conn.getresponse()
                    r.read()
                    code = r.status
                    ra = r.getheader("Retry-After")
                    if r.getheader("Connection", "").lower() == "close":
                        conn.close()
                        conn = None
                except (OSError, http.client.HTTPException):
                    with lock:
                        res["conn_errors"] += 1
                    conn = None
                    time.sleep(0.05)
                    continue
                with lock:
                    res["codes"][code] = res["codes"].get(code, 0) + 1
                    if code == 503:
                        if ra is None:
                            res["no_retry_after"] += 1
                        else:
                            res["retry_after"].append(int(ra))
                if code == 503:
                    time.sleep(0.2)  # a flood, but not a busy loop on 2 cores

        # /healthz is probed from its own process: the client threads here
        # contend for the interpreter lock, which would add their delays
        probe = subprocess.Popen([sys.executable, "-c", HEALTH_PROBE, str(d.port), str(seconds)],
                                 stdout=subprocess.PIPE, text=True)

        pay = {}

        def payment():
            time.sleep(seconds / 2.0)
            body = {"bill_id": payee["bill_id"], "amount_fen": payee["amount_fen"],
                    "payment_ref": "overload-%d" % os.getpid()}
            t0 = time.time()
            try:
                st, payload, _ = d.request("POST", "/api/v1/accounts/%s/payments" % payee["account_no"],
                                           body=body, headers={"X-Binding-Token": tokens[payee["account_no"]]})
            except (OSError, http.client.HTTPException) as e:
                st, payload = 0, str(e).encode()
            pay["status"], pay["latency"], pay["body"] = st, time.time() - t0, payload[:200]

        n = 50 * limit
        threads = [threading.Thread(target=client, args=(k,)) for k in range(n)]
        threads.append(threading.Thread(target=payment))
        t_start = time.time()
        for t in threads:
            t.start()
        time.sleep(seconds)
        stop.set()
        for t in threads:
            t.join(timeout=60)
        burst_end = time.time()
        health = json.loads(probe.communicate(timeout=60)[0] or "[]")

        # backlog: the utility's request queues drain
        drained = None
        while time.time() - burst_end < 150:
            um = metrics(uadmin)
            depth = um.get('gridgate_queue_depth{queue="requests"}', 0) + \
                um.get('gridgate_queue_depth{queue="requests.priority"}', 0)
            if depth == 0:
                drained = time.time() - burst_end
                break
            time.sleep(0.2)
        time.sleep(1.5)  # replies in flight to the portal
        um, pm = metrics(uadmin), metrics(padmin)
        codes = res["codes"]
        ok, shed = codes.get(200, 0), codes.get(503, 0)
        print("burst: %d clients x %.0f s (limit %d, backend %.0f ms/query): %s, conn errors %d, "
              "rps %.1f" % (n, seconds, limit, sleep_s * 1000, sorted(codes.items()),
                            res["conn_errors"], ok / (burst_end - t_start)), flush=True)
        print("retry-after: min %s max %s; drained %s s after the burst; healthz p99 %.1f ms "
              "(n=%d); payment %s in %.0f ms (quiet bill query %.0f ms, quiet bind %.0f ms)"
              % (min(res["retry_after"] or [0]), max(res["retry_after"] or [0]),
                 "%.1f" % drained if drained is not None else "never", pct(health, 99) * 1000,
                 len(health), pay.get("status"), pay.get("latency", 0) * 1000, quiet_query * 1000,
                 quiet_write * 1000), flush=True)
        imax = um.get("gridgate_backend_inflight_max", -1)
        c.check(0 < imax <= limit, "backend inflight max %s never above the limit %d" % (imax, limit))
        c.check(um.get("gridgate_governor_limit") == limit, "governor limit exported: %s"
                % um.get("gridgate_governor_limit"))
        c.check(shed > 0, "the excess is shed with 503 (%d)" % shed)
        c.check(res["no_retry_after"] == 0, "every 503 carries Retry-After (%d without)"
                % res["no_retry_after"])
        c.check(pm.get("gridgate_shed_total", 0) > 0, "gridgate_shed_total counts the shed")
        c.check(ok > 0, "queries are answered during the burst (%d)" % ok)
        c.check(res["conn_errors"] == 0, "no connection errors (%d)" % res["conn_errors"])
        c.check(drained is not None and drained < 120, "backlog drained within 2 min (%s s)" % drained)
        answered = total(um, "gridgate_requests_total{") + total(um, "gridgate_rejects_total{")
        relayed = pm.get("gridgate_requests_relayed_total", -1)
        c.check(answered == relayed, "no accepted request lost: utility answered %d of %d relayed"
                % (answered, relayed))
        c.check(pct(health, 99) < healthz_p99, "/healthz p99 under %.0f ms (%.1f ms)"
                % (healthz_p99 * 1000, pct(health, 99) * 1000))
        c.check(pay.get("status") in (200, 201), "the payment in the flood completes: %s %s"
                % (pay.get("status"), pay.get("body")))
        c.check(pay.get("latency", 9) < max(1.0, 10 * quiet_write),
                "the payment's latency %.0f ms is about its quiet-time one (bind %.0f ms)"
                % (pay.get("latency", 9) * 1000, quiet_write * 1000))
        rcs = d.stop_all()
        c.check(rcs.get("utility") == 0 and rcs.get("portal") == 0, "both roles stop cleanly: %s" % rcs)
    finally:
        d.cleanup(keep=args.keep)
        db.drop()
