"""test_payments_e2e - payments exactly once, transaction status and webhook push.

Both roles run as real processes with a webhook receiver (webhook.py) in this
process. Checks, in order: every payment validation error with nothing
written; a payment posts once and a repeated payment_ref gets the same answer
(also after kill -9 of the portal and of the utility); the same payment_ref
with another body is 409; partial payments; GET /api/v1/transactions/{id} for
completed, pending-then-completed (the call timed out while the utility was
down) and expired transactions; payment.posted, bill.issued, bill.overdue,
binding.revoked and outage.planned events reach the receiver signed (a wrong secret is
detectable); a receiver that answers 500, times out or drops connections for
a while gets every event once it recovers; one that never recovers sends the
events to the dead-letter queue.
"""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

from harness import Checker, Demo, parse_args
from webhook import Receiver, push_config, sign

SECRET = b"test-secret-0123456789abcdef"


def code(body):
    try:
        return json.loads(body).get("error", {}).get("code")
    except (ValueError, AttributeError):
        return None


class Pay:
    def __init__(self, d):
        self.d = d

    def pay(self, acct, token, bill, amount, ref, extra=None):
        body = {"bill_id": bill, "amount_fen": amount, "payment_ref": ref}
        body.update(extra or {})
        h = {"X-Binding-Token": token} if token is not None else {}
        st, raw, hdrs = self.d.request("POST", "/api/v1/accounts/%s/payments" % acct, body=body,
                                       headers=h)
        return st, raw, hdrs

    def pay_ok(self, acct, token, bill, amount, ref):
        """Pay as a citizen does: the same payment_ref again after a 5xx or no answer."""
        for _ in range(10):
            try:
                st, raw, hdrs = self.pay(acct, token, bill, amount, ref)
            except OSError:
                st, raw, hdrs = None, b"", {}
            if st is not None and st < 500:
                return st, raw, hdrs
            time.sleep(0.5)
        return st, raw, hdrs


def snapshot(d):
    con = sqlite3.connect("file:%s?mode=ro" % d.db_path, uri=True)
    try:
        pays = con.execute("SELECT count(*), coalesce(sum(amount_fen),0) FROM payments").fetchone()
        bills = con.execute("SELECT group_concat(bill_id || status) FROM "
                            "(SELECT bill_id, status FROM bills ORDER BY bill_id)").fetchone()[0]
        inbox = con.execute("SELECT count(*) FROM gg_inbox").fetchone()[0]
        outbox = con.execute("SELECT count(*) FROM gg_outbox").fetchone()[0]
    finally:
        con.close()
    return (pays, bills, inbox, outbox)


def write_portal_conf(d, base_conf, url, **kw):
    with open(os.path.join(d.dir, "portal.conf"), "w") as f:
        f.write(base_conf + push_config(url, "push.secret", **kw))


def dead_letters(d):
    con = sqlite3.connect("file:%s?mode=ro" % os.path.join(d.dir, "portal", "store.db"), uri=True)
    try:
        return [r[0] for r in con.execute("SELECT reason FROM dead_letters WHERE queue='events'")]
    finally:
        con.close()


def main():
    args = parse_args()
    c = Checker()
    d = Demo(args.gridgate, accounts=200, months=6)
    rcv = Receiver(SECRET)
    try:
        with open(os.path.join(d.dir, "push.secret"), "wb") as f:
            f.write(SECRET + b"\n")
        with open(os.path.join(d.dir, "portal.conf")) as f:
            base_conf = f.read().replace("request_timeout_ms = 5000", "request_timeout_ms = 3000")
        # A short message lifetime so that the expiry case takes seconds.
        base_conf = base_conf.replace("[security]\n", "[security]\nmessage_ttl_ms = 8000\n", 1)
        base_conf = base_conf.replace("[channel]\n", "[channel]\nbackoff_max_ms = 1000\n", 1)
        write_portal_conf(d, base_conf, rcv.url, max_attempts=100, backoff_ms=50,
                          backoff_max_ms=300, timeout_ms=500)
        with open(os.path.join(d.dir, "utility.conf"), "a") as f:
            # A cache TTL far longer than the test: a new bill can only show
            # if the sweep that announces it drops the cached answer.
            f.write("\n[utility]\nbill_sweep_s = 1\n[cache]\nttl_ms = 600000\n")
        d.start_both()
        p = Pay(d)

        con = d.db()
        rows = con.execute("SELECT b.bill_id, b.account_no, b.amount_fen, b.status FROM bills b "
                           "JOIN accounts a USING(account_no) WHERE b.status <> 'paid' AND "
                           "a.status='active' ORDER BY b.bill_id").fetchall()
        paid = con.execute("SELECT b.bill_id, b.account_no FROM bills b JOIN accounts a "
                           "USING(account_no) WHERE b.status='paid' AND a.status='active' "
                           "ORDER BY b.bill_id LIMIT 1").fetchone()
        con.close()
        by_acct = {}
        for r in rows:
            by_acct.setdefault(r["account_no"], []).append(dict(r))
        accts = sorted(by_acct)
        c.check(len(accts) >= 6, "the seed has unpaid bills on several accounts: %d" % len(accts))
        a1, a2, a3, a4, a5 = accts[:5]
        bill1 = by_acct[a1][0]
        tokens = {}
        for a in accts[:6] + [paid["account_no"]]:
            st, body = d.bind(a)
            tokens[a] = body.get("binding_token")
        c.check(all(tokens.values()), "bound every test account")

        # bill.overdue: the utility's sweep marked the seed's unpaid bills past due
        c.check(rcv.wait_for(lambda r: len(r.of_type("bill.overdue")) > 0, 20),
                "bill.overdue events arrive from the overdue sweep")

        # bill.issued: the marketing system issues a new bill; the sweep announces it
        time.sleep(1.5)                     # the first sweep has set the mark
        bills_path = "/api/v1/accounts/%s/bills?from=2098-01&to=2099-12" % a1
        st, before_issue = d.get(bills_path, {"X-Binding-Token": tokens[a1]})
        c.check(st == 200 and before_issue.get("bills") == [],
                "no 2099 bill yet (this answer is now cached): %s %s" % (st, before_issue))
        rw = sqlite3.connect(d.db_path, timeout=10)
        with rw:
            rw.execute("INSERT INTO bills SELECT bill_id || 'N', account_no, '2099-01', kwh, "
                       "kwh_peak, kwh_valley, ytd_kwh, tariff_code, amount_fen, '2099-02-03', "
                       "'2099-02-15', 'unpaid' FROM bills WHERE bill_id = ?", (bill1["bill_id"],))
        rw.close()
        c.check(rcv.wait_for(lambda r: [e for e in r.of_type("bill.issued")
                                        if e["data"]["bill_id"] == bill1["bill_id"] + "N"], 20),
                "a newly issued bill is announced by bill.issued")
        st, after_issue = d.get(bills_path, {"X-Binding-Token": tokens[a1]})
        c.check(st == 200 and [b["bill_id"] for b in after_issue.get("bills", [])]
                == [bill1["bill_id"] + "N"],
                "the sweep dropped the cached answer: the new bill shows at once: %s %s"
                % (st, after_issue))
        c.check(len(rcv.of_type("bill.issued")) == 1, "history is not announced: %d bill.issued"
                % len(rcv.of_type("bill.issued")))

        # --- validation: each refusal writes nothing ----------------------
        for _ in range(100):                # the publisher drains the outbox first
            if snapshot(d)[3] == 0:
                break
            time.sleep(0.1)
        before = snapshot(d)
        t1 = tokens[a1]
        cases = [
            ("zero amount", a1, t1, bill1["bill_id"], 0, "v-1", 400, "invalid_amount"),
            ("negative amount", a1, t1, bill1["bill_id"], -100, "v-2", 400, "invalid_amount"),
            ("more than due", a1, t1, bill1["bill_id"], bill1["amount_fen"] + 1, "v-3", 422,
             "amount_exceeds_due"),
            ("a paid bill", paid["account_no"], tokens[paid["account_no"]], paid["bill_id"], 100,
             "v-4", 409, "bill_already_paid"),
            ("another account's bill", a1, t1, by_acct[a2][0]["bill_id"], 100, "v-5", 403,
             "bill_not_on_account"),
            ("no such bill", a1, t1, "NOPE-0001", 100, "v-6", 404, "bill_not_found"),
            ("no token", a1, None, bill1["bill_id"], 100, "v-7", 401, "missing_token"),
            ("token of another account", a2, t1, by_acct[a2][0]["bill_id"], 100, "v-8", 403,
             "not_bound"),
            ("bad payment_ref", a1, t1, bill1["bill_id"], 100, "bad ref!", 400,
             "invalid_parameter"),
            ("amount as a string", a1, t1, bill1["bill_id"], "100", "v-9", 400,
             "invalid_parameter"),
            ("amount as a fraction", a1, t1, bill1["bill_id"], 1.5, "v-10", 400,
             "invalid_parameter"),
        ]
        for what, acct, tok, bill, amount, ref, want_st, want_code in cases:
            st, raw, _ = p.pay(acct, tok, bill, amount, ref)
            c.check(st == want_st and code(raw) == want_code,
                    "%s: %d %s (got %d %s)" % (what, want_st, want_code, st, raw[:120]))
        st, raw, _ = p.pay(a1, t1, bill1["bill_id"], 100, "v-11", extra={"note": "x"})
        c.check(st == 400 and code(raw) == "invalid_parameter", "unknown field: 400")
        after = snapshot(d)
        c.check(after == before, "no refusal wrote anything (payments, bills, inbox, outbox): "
                "%s %s" % (before[0::2], after[0::2]))

        # --- a payment, posted once ----------------------------------------
        st, raw1, h = p.pay(a1, t1, bill1["bill_id"], bill1["amount_fen"], "pay-1")
        b1 = json.loads(raw1)
        c.check(st == 200 and b1.get("status") == "posted" and b1.get("bill_status") == "paid",
                "payment posted and bill paid: %d %s" % (st, raw1))
        c.check(b1.get("transaction_id") == h.get("x-transaction-id"),
                "transaction_id is the X-Transaction-Id of the call")
        c.check(b1.get("amount_fen") == bill1["amount_fen"] and b1.get("amount_due_fen") == 0,
                "amounts exact")
        st, raw2, _ = p.pay(a1, t1, bill1["bill_id"], bill1["amount_fen"], "pay-1")
        c.check(st == 200 and raw2 == raw1, "the same payment_ref again: the same answer, byte for "
                "byte")
        st, raw3, _ = p.pay(a1, t1, bill1["bill_id"], bill1["amount_fen"] - 1, "pay-1")
        c.check(st == 409 and code(raw3) == "idempotency_conflict",
                "the same payment_ref with another amount: 409 idempotency_conflict")
        with d.db() as con:
            n = con.execute("SELECT count(*) FROM payments WHERE payment_ref='pay-1'").fetchone()[0]
            bs = con.execute("SELECT status FROM bills WHERE bill_id=?",
                             (bill1["bill_id"],)).fetchone()[0]
        c.check(n == 1 and bs == "paid", "one payment row, bill paid in the marketing database")

        # --- transaction status ---------------------------------------------
        st, tx = d.get("/api/v1/transactions/" + b1["transaction_id"])
        c.check(st == 200 and tx.get("status") == "completed" and tx.get("result") == b1,
                "transaction status: completed with the payment's answer")
        st, tx = d.get("/api/v1/transactions/" + "0" * 32)
        c.check(st == 404, "unknown transaction id: 404")
        st, tx = d.get("/api/v1/transactions/xyz")
        c.check(st == 400, "malformed transaction id: 400")

        # --- partial payments ----------------------------------------------
        bill3 = by_acct[a3][0]
        half = bill3["amount_fen"] // 2
        st, raw, _ = p.pay(a3, tokens[a3], bill3["bill_id"], half, "part-1")
        bp = json.loads(raw)
        c.check(st == 200 and bp.get("bill_status") != "paid" and
                bp.get("amount_due_fen") == bill3["amount_fen"] - half,
                "a partial payment leaves the bill unpaid with the rest due: %s" % raw)
        st, raw, _ = p.pay(a3, tokens[a3], bill3["bill_id"], bill3["amount_fen"] - half + 1,
                           "part-2")
        c.check(st == 422 and code(raw) == "amount_exceeds_due", "paying past the rest: 422")
        st, raw, _ = p.pay(a3, tokens[a3], bill3["bill_id"], bill3["amount_fen"] - half, "part-2")
        c.check(st == 200 and json.loads(raw).get("bill_status") == "paid",
                "paying the rest: bill paid")

        # --- restarts: same answer from the inbox --------------------------
        d.kill("portal")
        d.start("portal")
        d.wait_running()
        st, raw, _ = p.pay(a1, t1, bill1["bill_id"], bill1["amount_fen"], "pay-1")
        c.check(st == 200 and raw == raw1, "same answer after kill -9 of the portal")
        d.kill("utility")
        d.start("utility")
        d.wait_running()
        st, raw, _ = p.pay(a1, t1, bill1["bill_id"], bill1["amount_fen"], "pay-1")
        c.check(st == 200 and raw == raw1, "same answer after kill -9 of the utility")

        # --- a call that times out: pending, then completed -----------------
        bill4 = by_acct[a4][0]
        d.kill("utility", signal.SIGTERM)
        st, raw, _ = p.pay(a4, tokens[a4], bill4["bill_id"], bill4["amount_fen"], "late-1")
        txid = json.loads(raw).get("error", {}).get("transaction_id")
        c.check(st == 504 and code(raw) == "timeout" and txid, "utility down: 504 timeout with "
                "transaction_id")
        st, tx = d.get("/api/v1/transactions/%s" % txid)
        c.check(st == 200 and tx.get("status") == "pending", "its status: pending (%s)" % tx)
        d.start("utility")
        d.wait_running()
        ok = False
        for _ in range(300):
            st, tx = d.get("/api/v1/transactions/%s" % txid)
            if tx.get("status") != "pending":
                ok = True
                break
            time.sleep(0.1)
        c.check(ok and tx.get("status") == "completed" and
                tx.get("result", {}).get("status") == "posted",
                "after the utility is back: completed, posted (%s)" % tx)
        st, raw, _ = p.pay(a4, tokens[a4], bill4["bill_id"], bill4["amount_fen"], "late-1")
        c.check(st == 200 and json.loads(raw).get("transaction_id") == txid,
                "the citizen's retry gets the late posting's answer")

        # --- a request past its expiry: expired, never executed -------------
        bill5 = by_acct[a5][0]
        d.kill("utility", signal.SIGTERM)
        st, raw, _ = p.pay(a5, tokens[a5], bill5["bill_id"], bill5["amount_fen"], "exp-1")
        txid = json.loads(raw).get("error", {}).get("transaction_id")
        time.sleep(8.5)     # past security.message_ttl_ms of the portal (8000)
        d.start("utility")
        d.wait_running()
        ok = False
        for _ in range(100):
            st, tx = d.get("/api/v1/transactions/%s" % txid)
            if tx.get("status") == "expired":
                ok = True
                break
            time.sleep(0.1)
        c.check(ok, "a request that reached the utility too late: status expired (%s)" % tx)
        with d.db() as con:
            n = con.execute("SELECT count(*) FROM payments WHERE payment_ref='exp-1'").fetchone()[0]
        c.check(n == 0, "the expired payment was never posted")

        # --- events: signed, every payment.posted at least once ------------
        posted_refs = {"pay-1", "part-1", "part-2", "late-1"}
        c.check(rcv.wait_for(lambda r: posted_refs <= {e["data"]["payment_ref"]
                                                      for e in r.of_type("payment.posted")}, 20),
                "a payment.posted event for every posting")
        with rcv.lock:
            ev = [x for x in rcv.posts if x["type"] == "payment.posted"][0]
            c.check(all(x["sig_ok"] for x in rcv.posts), "every delivery verifies under the secret")
        c.check(ev["sig"] != sign(b"wrong-secret-0123456789", ev["raw"]),
                "a receiver with the wrong secret sees the signature fail")
        c.check(ev["header_id"] == ev["event_id"], "X-Gridgate-Event-Id equals the body's event_id")
        with rcv.lock:
            dup = sum(1 for e in rcv.of_type("payment.posted") if e["data"]["payment_ref"] == "pay-1")
        c.check(dup == 1, "the repeated payment_ref produced no second event")

        # --- outage.planned through the admin command -----------------------
        out = subprocess.run([d.gridgate, "admin", "publish-outage", "-c",
                              os.path.join(d.dir, "utility.conf"), "--district", "玄武区",
                              "--start", "2026-12-01T08:00Z", "--end", "2026-12-01T12:00Z",
                              "--reason", "transformer maintenance"],
                             capture_output=True, text=True, timeout=30)
        c.check(out.returncode == 0, "admin publish-outage succeeds: %s %s" % (out.stdout, out.stderr))
        c.check(rcv.wait_for(lambda r: any(e["data"].get("district") == "玄武区"
                                           for e in r.of_type("outage.planned")), 20),
                "the outage.planned event reaches the receiver")

        # --- binding.revoked when a citizen unbinds ---------------------------
        pa = paid["account_no"]
        st, raw, _ = d.request("DELETE", "/api/v1/bindings", headers={"X-Binding-Token": tokens[pa]})
        c.check(st == 200, "unbind: 200 (%d %s)" % (st, raw[:100]))
        c.check(rcv.wait_for(lambda r: any(e["data"].get("account_no") == pa
                                           for e in r.of_type("binding.revoked")), 20),
                "the binding.revoked event reaches the receiver")

        # --- a receiver that fails for a while, then recovers ---------------
        n_before = len(rcv.of_type("payment.posted"))
        bill6 = by_acct[accts[5]][0]
        rcv.slow_s = 1.0
        rcv.mode = "fail"
        st, raw, _ = p.pay_ok(accts[5], tokens[accts[5]], bill6["bill_id"], bill6["amount_fen"],
                              "r-1")
        c.check(st == 200, "payment while the receiver fails: posted")
        time.sleep(1.0)
        rcv.mode = "slow"
        time.sleep(1.5)
        rcv.mode = "drop"
        time.sleep(1.0)
        with rcv.lock:
            modes = {x["mode"] for x in rcv.posts if x["event_id"] and x["type"] == "payment.posted"}
        c.check({"fail", "slow", "drop"} <= modes, "the event was retried through 500s, timeouts "
                "and dropped connections: %s" % modes)
        c.check(len(rcv.of_type("payment.posted")) == n_before, "nothing delivered while failing")
        rcv.mode = "ok"
        c.check(rcv.wait_for(lambda r: any(e["data"]["payment_ref"] == "r-1"
                                           for e in r.of_type("payment.posted")), 20),
                "the event arrives once the receiver recovers")

        # --- a receiver that never recovers: dead letters -------------------
        d.kill("portal", signal.SIGTERM)
        write_portal_conf(d, base_conf, rcv.url, max_attempts=3, backoff_ms=20,
                          backoff_max_ms=50, timeout_ms=500)
        rcv.mode = "fail"
        d.start("portal")
        d.wait_running()
        refs = []
        for i in range(2):                  # two partial payments of 1 fen
            st, raw, _ = p.pay_ok(a2, tokens[a2], by_acct[a2][0]["bill_id"], 1, "dl-%d" % i)
            refs.append(st)
        c.check(refs == [200, 200], "two more payments posted: %s" % refs)
        ok = False
        for _ in range(100):
            if len([x for x in dead_letters(d) if "webhook: 3 attempts" in x]) >= len(refs):
                ok = True
                break
            time.sleep(0.1)
        c.check(ok and refs, "events a receiver never accepts reach the dead-letter queue: %s"
                % dead_letters(d))
        out = subprocess.run([d.gridgate, "admin", "dlq", "list", "-c",
                              os.path.join(d.dir, "portal.conf")],
                             capture_output=True, text=True, timeout=30)
        if out.returncode == 0:
            c.check("webhook" in out.stdout, "gridgate admin dlq list shows them: %s" % out.stdout[:300])

        rcs = d.stop_all()
        c.check(rcs.get("portal") == 0 and rcs.get("utility") == 0, "both stop cleanly: %s" % rcs)
    finally:
        rcv.close()
        d.cleanup(keep=args.keep)
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
