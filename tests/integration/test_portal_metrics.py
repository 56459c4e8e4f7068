"""test_portal_metrics - the portal's /metrics with the store read off the loop.

The admin listener writes the loop's counters at once and reads the store's
families on the offload thread, answering when they are in. Checks: a scrape
carries both parts (the HTTP counters and the store's queue gauges and
counters); scrapers that hang up before their answer leave the portal serving
(/healthz, /metrics, an API call); a burst of parallel scrapes is answered in
full; SIGTERM stops the portal cleanly with scrapes under way.
"""
import http.client
import re
import socket
import sys
import threading

from harness import Checker, Demo, parse_args


def scrape(port, timeout=10):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request("GET", "/metrics")
    r = c.getresponse()
    return r.status, r.read().decode("utf-8", "replace")


def hang_up(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    s.close()


def main():
    args = parse_args()
    c = Checker()
    d = Demo(args.gridgate, accounts=20, months=2, suite=args.suite)
    admin = d.port + 2
    try:
        d.start_both()
        with d.db() as con:
            acct = con.execute("SELECT account_no FROM accounts LIMIT 1").fetchone()[0]
        st, _ = d.bind(acct)
        c.check(st == 201, "binding works (%s)" % st)

        st, text = scrape(admin)
        c.check(st == 200, "/metrics answers 200 (%s)" % st)
        c.check('gridgate_http_requests_total{code="201"} 1' in text,
                "the loop's counters are there")
        c.check('gridgate_queue_depth{queue="xmit"}' in text, "the store's queue gauges are there")
        c.check("gridgate_store_puts_total" in text, "the store's counters are there")
        c.check(text.index("gridgate_http_requests_total") < text.index("gridgate_store_puts_total"),
                "the store's families come last, as before")

        for _ in range(50):
            hang_up(admin)
        st, _ = d.get("/healthz")
        c.check(st == 200, "/healthz answers after scrapers hung up (%s)" % st)
        st, text = scrape(admin)
        c.check(st == 200 and "gridgate_store_puts_total" in text,
                "/metrics answers after scrapers hung up (%s)" % st)
        c.check(d.alive("portal"), "the portal is still running")

        results = []
        lock = threading.Lock()

        def one():
            try:
                r = scrape(admin)
            except OSError as e:
                r = (0, str(e))
            with lock:
                results.append(r)

        threads = [threading.Thread(target=one) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        c.check(len(results) == 20 and all(r[0] == 200 and "gridgate_store_puts_total" in r[1]
                                           for r in results),
                "20 parallel scrapes are answered in full (%s)" % sorted(r[0] for r in results))

        for _ in range(10):  # the stop comes with scrapes in flight
            threading.Thread(target=one, daemon=True).start()
            hang_up(admin)
        rcs = d.stop_all()
        c.check(rcs.get("portal") == 0, "portal stops cleanly (%s)" % rcs.get("portal"))
        log = d.read_log("portal")
        c.check(re.search(r"AddressSanitizer|runtime error|LeakSanitizer", log) is None,
                "no sanitizer report")
    finally:
        d.cleanup()
    sys.exit(c.finish())


if __name__ == "__main__":
    main()
