"""test_portal_async_put - request puts off the portal's loop.

The portal puts each sealed request on its store from a pool of sender
threads and parks the call only once the put is durable. Checks, with the
utility stopped and the portal's queues limited to a few messages: the
requests that fit are accepted and recorded (they time out 504 with a
transaction id that GET /api/v1/transactions/{id} knows as pending: the
record is written when the put is durable); the next ones fail their put
(queue full) and are answered 503 unavailable with Retry-After, counted in
gridgate_requests_refused_total{reason="full"}; /healthz is answered at
once throughout, while calls wait; SIGTERM stops the portal cleanly.
"""
import json
import re
import sys
import threading
import time

from harness import Checker, Demo, parse_args

DEPTH = 20


def edit_conf(path, section, line):
    with open(path) as f:
        text = f.read()
    text = text.replace("[%s]\n" % section, "[%s]\n%s\n" % (section, line), 1)
    with open(path, "w") as f:
        f.write(text)


def main():
    args = parse_args()
    c = Checker()
    d = Demo(args.gridgate, accounts=20, months=2, suite=args.suite)
    try:
        conf = d.dir + "/portal.conf"
        edit_conf(conf, "store", "max_depth = %d" % DEPTH)
        edit_conf(conf, "http", "request_timeout_ms = 3000\nshed = false")
        d.start_both()
        with d.db() as con:
            acct = con.execute("SELECT account_no FROM accounts LIMIT 1").fetchone()[0]
        st, body = d.bind(acct)
        c.check(st == 201, "binding works with the sender threads (%s)" % st)
        token = body.get("binding_token", "")
        d.kill("utility")
        time.sleep(0.5)

        results = []
        lock = threading.Lock()

        def query(i):
            try:
                st, payload, hdrs = d.request("GET", "/api/v1/accounts/%s/bills" % acct,
                                              headers={"X-Binding-Token": token}, timeout=20)
                with lock:
                    results.append((st, json.loads(payload or b"{}"), hdrs))
            except Exception as e:  # noqa: BLE001 - reported as a failed check
                with lock:
                    results.append((0, {"error": {"code": str(e)}}, {}))

        threads = [threading.Thread(target=query, args=(i,)) for i in range(DEPTH + 5)]
        for t in threads:
            t.start()
            time.sleep(0.05)
        # the loop answers /healthz at once while calls wait and puts fail
        worst = 0.0
        for _ in range(20):
            t0 = time.perf_counter()
            st, _ = d.get("/healthz")
            worst = max(worst, time.perf_counter() - t0)
            c.check(st == 200, "/healthz answered while calls wait")
            time.sleep(0.05)
        c.check(worst < 0.5, "/healthz is quick while calls wait (worst %.0f ms)" % (worst * 1000))
        for t in threads:
            t.join(30)
        codes = sorted(r[0] for r in results)
        print("codes:", codes, flush=True)
        timed_out = [r for r in results if r[0] == 504]
        full = [r for r in results if r[0] == 503]
        c.check(len(results) == DEPTH + 5, "every call answered")
        c.check(len(timed_out) >= 1, "requests that fit are accepted (then time out: %d)"
                % len(timed_out))
        c.check(len(full) >= 1, "a put that fails is answered 503 (%d)" % len(full))
        c.check(len(timed_out) + len(full) == len(results), "only 504 and 503: %s" % codes)
        c.check(all(r[1].get("error", {}).get("code") == "unavailable" for r in full),
                "503 says unavailable")
        c.check(all("retry-after" in r[2] for r in full), "503 carries Retry-After")
        for r in timed_out:
            txid = r[2].get("x-transaction-id")
            c.check(bool(txid), "504 carries a transaction id")
            if txid:
                st, tx = d.get("/api/v1/transactions/%s" % txid)
                c.check(st == 200 and tx.get("status") == "pending",
                        "an accepted request is recorded as pending (%s %s)" % (st, tx))
        rcs = d.stop_all()
        c.check(rcs.get("portal") == 0, "portal stops cleanly (%s)" % rcs.get("portal"))
        log = d.read_log("portal")
        c.check("request queue full" in log, "the full queue is logged")
        c.check(re.search(r"AddressSanitizer|runtime error", log) is None, "no sanitizer report")
    finally:
        d.cleanup()
    sys.exit(c.finish())


if __name__ == "__main__":
    main()
