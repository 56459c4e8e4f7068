"""test_bill_query_e2e - a bill query end to end across both sites.

Starts `gridgate demo init` sites as two real processes linked by the
channel, binds an account, queries its bills and compares every field with
the marketing database read directly; then sends bad input to every
endpoint and checks each stable error while both processes stay up; then
measures 1,000 sequential bill queries (reported, not asserted); finally
checks the logs hold no unmasked personal data and that SIGTERM stops both
roles cleanly.
"""
import json
import socket
import statistics
import subprocess
import sys
import time

from harness import Checker, Demo, parse_args

BILL_FIELDS = ["bill_id", "period", "kwh", "kwh_peak", "kwh_valley", "amount_fen", "due_date", "status"]


def error_code(body):
    return body.get("error", {}).get("code") if isinstance(body, dict) else None


def raw_http(port, head, body_len, chunk=65536):
    """Send a request whose body is body_len bytes; return (status line, body) or None."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    resp = b""
    try:
        s.sendall(head)
        sent = 0
        buf = b"x" * chunk
        s.settimeout(0.5)
        while sent < body_len:
            try:
                n = s.send(buf[: min(chunk, body_len - sent)])
                sent += n
            except socket.timeout:
                break
            except OSError:
                break
        s.settimeout(10)
        while True:
            try:
                d = s.recv(65536)
            except OSError:
                break
            if not d:
                break
            resp += d
    finally:
        s.close()
    return resp


def main():
    args = parse_args()
    c = Checker()
    d = Demo(args.gridgate, accounts=300, months=6, suite=args.suite)
    try:
        d.start_both()
        st, body = d.get("/healthz")
        c.check(st == 200 and body.get("status") == "ok", "healthz is 200 ok: %s" % body)

        with d.db() as con:
            acct = con.execute("SELECT a.* FROM accounts a WHERE EXISTS (SELECT 1 FROM bills b WHERE "
                               "b.account_no=a.account_no) AND a.status='active' ORDER BY account_no "
                               "LIMIT 1").fetchone()
            other = con.execute("SELECT * FROM accounts WHERE account_no<>? AND status='active' "
                                "ORDER BY account_no LIMIT 1", (acct["account_no"],)).fetchone()
            bills = [dict(r) for r in con.execute(
                "SELECT * FROM bills WHERE account_no=? ORDER BY period", (acct["account_no"],))]
        acct_no = acct["account_no"]

        # --- binding -------------------------------------------------------
        st, body = d.bind(acct_no)
        c.check(st == 201, "bind returns 201: %s %s" % (st, body))
        token = body.get("binding_token", "")
        c.check(len(token) > 20, "bind returns a binding token")
        a = body.get("account", {})
        c.check(a.get("account_no") == acct_no, "bound account number matches")
        name = acct["holder_name"]
        c.check(a.get("holder_name") == name[0] + "*" * (len(name) - 1),
                "holder name masked as first character and stars: %r" % a.get("holder_name"))
        c.check(a.get("address") != acct["address"] and acct["district"] in a.get("address", "")
                and not any(ch.isdigit() for ch in a.get("address", "")),
                "address masked, district kept, no street number: %r" % a.get("address"))

        wrong = [
            {"portal_user_id": "u1", "account_no": acct_no, "holder_name": name + "X",
             "phone_last4": acct["phone"][-4:]},
            {"portal_user_id": "u1", "account_no": acct_no, "holder_name": name,
             "phone_last4": "%04d" % ((int(acct["phone"][-4:]) + 1) % 10000)},
            {"portal_user_id": "u1", "account_no": "3299999999", "holder_name": name,
             "phone_last4": acct["phone"][-4:]},
        ]
        for w in wrong:
            st, body = d.post("/api/v1/bindings", w)
            c.check(st == 403 and error_code(body) == "ownership_not_proven",
                    "wrong proof refused with 403 ownership_not_proven: %s %s" % (st, body))

        # --- bill query, every field against the database ------------------
        hdr = {"X-Binding-Token": token}
        first, last = bills[0]["period"], bills[-1]["period"]
        st, body = d.get("/api/v1/accounts/%s/bills?from=%s&to=%s" % (acct_no, first, last), hdr)
        c.check(st == 200, "bill query 200: %s" % st)
        c.check(body.get("account_no") == acct_no, "bill reply names the account")
        got = body.get("bills", [])
        # Read the bills again now: the utility's first bill sweep runs at its
        # start and may have marked some overdue after the read above.
        with d.db() as con:
            bills = [dict(r) for r in con.execute(
                "SELECT * FROM bills WHERE account_no=? ORDER BY period", (acct_no,))]
        c.check(len(got) == len(bills), "bill count %d == db %d" % (len(got), len(bills)))
        for g, b in zip(got, bills):
            for f in BILL_FIELDS:
                c.check(g.get(f) == b[f], "bill %s field %s: api %r db %r" % (b["bill_id"], f, g.get(f), b[f]))
        st, body = d.get("/api/v1/accounts/%s/bills?from=%s&to=%s" % (acct_no, last, last), hdr)
        c.check(st == 200 and len(body.get("bills", [])) == 1, "a one-month range gives one bill")

        # --- bad input on every endpoint -----------------------------------
        base = "/api/v1/accounts/%s/bills" % acct_no
        cases = [
            ("POST", "/api/v1/bindings", b"{not json", {}, 400, "invalid_parameter"),
            ("POST", "/api/v1/bindings", b"[1,2]", {}, 400, "invalid_parameter"),
            ("POST", "/api/v1/bindings", json.dumps({"portal_user_id": "u", "account_no": 3201,
                                                     "holder_name": "x", "phone_last4": "1234"}).encode(),
             {}, 400, "invalid_parameter"),
            ("POST", "/api/v1/bindings", json.dumps({"portal_user_id": "u", "account_no": acct_no,
                                                     "holder_name": "x"}).encode(), {}, 400, "invalid_parameter"),
            ("POST", "/api/v1/bindings", json.dumps({"portal_user_id": "u", "account_no": acct_no,
                                                     "holder_name": "x", "phone_last4": "12a4"}).encode(),
             {}, 400, "invalid_parameter"),
            ("GET", base + "?from=2024-13&to=2025-01", hdr, None, 400, "invalid_parameter"),
            ("GET", base + "?from=2025-05&to=2025-01", hdr, None, 400, "invalid_parameter"),
            ("GET", base + "?from=abc&to=2025-01", hdr, None, 400, "invalid_parameter"),
            ("GET", base + "?from=2025-01&to=2025-1", hdr, None, 400, "invalid_parameter"),
            ("GET", base + "?from=%s&to=%s" % (first, last), {}, None, 401, "missing_token"),
            ("GET", base + "?from=%s&to=%s" % (first, last),
             {"X-Binding-Token": token[:-3] + ("AAA" if token[-3:] != "AAA" else "BBB")}, None, 401, "invalid_token"),
            ("GET", base + "?from=%s&to=%s" % (first, last), {"X-Binding-Token": "garbage"}, None, 401,
             "invalid_token"),
            ("GET", base + "?from=%s&to=%s" % (first, last), {"X-Binding-Token": "x" * 5000}, None, 401,
             "invalid_token"),
            ("GET", "/api/v1/accounts/%s/bills?from=%s&to=%s" % (other["account_no"], first, last), hdr, None,
             403, "not_bound"),
            ("GET", "/api/v1/accounts/3299999999/bills?from=%s&to=%s" % (first, last), hdr, None, 403,
             "not_bound"),
            ("GET", "/api/v1/nothing-here", {}, None, 404, "not_found"),
            ("GET", "/api/v1/accounts/../../../etc/passwd", {}, None, 404, "not_found"),
            ("GET", "/api/v1/accounts/%2e%2e/bills", hdr, None, None, None),
            ("GET", "/../../../../etc/passwd", {}, None, 404, "not_found"),
            ("GET", "/%2e%2e/%2e%2e/etc/passwd", {}, None, None, None),
        ]
        for method, path, a3, a4, want_st, want_code in cases:
            if method == "POST":
                st, payload, _ = d.request("POST", path, raw=a3, headers={"Content-Type": "application/json"})
            else:
                st, payload, _ = d.request("GET", path, headers=a3)
            try:
                body = json.loads(payload)
            except ValueError:
                body = None
            what = "%s %s -> %s %s" % (method, path[:60], st, payload[:120])
            c.check(body is not None and error_code(body) is not None and "message" in body["error"],
                    "error body has code and message: " + what)
            if want_st is not None:
                c.check(st == want_st and error_code(body) == want_code,
                        "expected %s %s: %s" % (want_st, want_code, what))
            else:
                c.check(400 <= st < 500 and b"root:" not in payload, "traversal refused: " + what)
            if want_code == "invalid_parameter":
                msg = body["error"]["message"] if body else ""
                c.check(any(f in msg for f in ("account_no", "phone_last4", "holder_name", "from", "to", "JSON",
                                               "json", "object")),
                        "invalid_parameter says which: %r" % msg)

        big = 100 * 1024
        st, payload, _ = d.request("POST", "/api/v1/bindings", raw=b"{" + b" " * big + b"}",
                                   headers={"Content-Type": "application/json"})
        c.check(st == 413 and error_code(json.loads(payload or b"{}")) == "too_large",
                "a 100 KiB body gets 413 too_large: %s %s" % (st, payload[:100]))
        resp = raw_http(d.port, ("POST /api/v1/bindings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                                 "\r\nContent-Length: %d\r\n\r\n" % (10 << 20)).encode(), 10 << 20)
        c.check(resp.startswith(b"HTTP/1.1 413"), "a 10 MB body gets 413: %r" % resp[:60])
        c.check(d.alive("portal") and d.alive("utility"), "both processes up after bad input")
        st, body = d.get("/healthz")
        c.check(st == 200, "portal still answers after bad input")

        # --- latency of 1,000 sequential queries ---------------------------
        lat = []
        path = "/api/v1/accounts/%s/bills?from=%s&to=%s" % (acct_no, first, last)
        errors = 0
        for _ in range(1000):
            t0 = time.perf_counter()
            st, _, _ = d.request("GET", path, headers=hdr)
            lat.append((time.perf_counter() - t0) * 1000)
            errors += st != 200
        lat.sort()
        c.check(errors == 0, "1,000 sequential queries all 200 (%d errors)" % errors)
        print("latency sequential_bill_queries=1000 p50_ms=%.2f p99_ms=%.2f max_ms=%.2f" %
              (statistics.median(lat), lat[989], lat[-1]), flush=True)

        # --- clean stop and logs -------------------------------------------
        rcs = d.stop_all()
        c.check(rcs.get("portal") == 0 and rcs.get("utility") == 0, "SIGTERM stops both with 0: %s" % rcs)
        logs = d.read_log("portal") + d.read_log("utility")
        c.check("binding_token" not in logs and token not in logs, "no binding token in logs")
        with d.db() as con:
            rows = con.execute("SELECT holder_name, phone, id_no, address FROM accounts").fetchall()
        leaks = [v for r in rows for v in (r["phone"], r["id_no"], r["address"]) if v and v in logs]
        leaks += [r["holder_name"] for r in rows if len(r["holder_name"]) >= 2 and r["holder_name"] in logs]
        c.check(not leaks, "no unmasked personal data in logs (%d found, e.g. %r)" % (len(leaks), leaks[:1]))

        # --- bench http says why bindings failed (here: nobody answers) --
        out = subprocess.run([d.gridgate, "bench", "http", "--url", "http://127.0.0.1:%d" % d.port,
                              "--db", d.db_path, "--concurrency", "2", "--duration", "1",
                              "--population", "2"], capture_output=True, text=True, timeout=60)
        c.check("0 of 2 bound" in out.stderr and
                "failed bindings by status: 0=2; the first: 0 no answer" in out.stderr,
                "bench http reports failed bindings by status: %r" % out.stderr[-300:])
    finally:
        d.cleanup(keep=args.keep or bool(c.failed))
        if c.failed:
            print("kept", d.dir)
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
