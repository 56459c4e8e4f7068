"""test_chaos_payments - every payment exactly once while both roles are killed -9.

Both roles and a webhook receiver run. N concurrent citizens (default 500)
each pay one unpaid bill with their own payment_ref, retrying with the same
payment_ref whenever they get an error or no answer. Meanwhile K times
(default 20), at random moments, the utility, the portal or both are killed
with SIGKILL and restarted. At the end: every bill is paid exactly once, one
payment row per payment_ref with the exact amount, every citizen holds a
final "posted" answer that matches the database, and the receiver has a
payment.posted event for every payment (at least once). Prints the figures:
payments, kills, lost, duplicated, retries, time to drain.

Size: GG_CHAOS_PAYMENTS and GG_CHAOS_KILLS (the `slow` variant,
test_chaos_payments_slow.py, runs 5,000 payments with 200 kills); about 25 s
at the default size, also under ASan. GG_CHAOS_SEED fixes the random choices.
A role that fails to come up after a restart, or dies on its own afterwards,
fails the test (with the tail of its log).
"""
import json
import os
import random
import signal
import sqlite3
import sys
import threading
import time
import http.client

from harness import Checker, Demo, parse_args
from webhook import Receiver, push_config

SECRET = b"chaos-secret-0123456789abcdef"


def env_int(name, default):
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


class Citizen(threading.Thread):
    def __init__(self, port, acct, token, bill, amount, ref, start_at, deadline):
        super().__init__(daemon=True)
        self.port, self.acct, self.token = port, acct, token
        self.bill, self.amount, self.ref = bill, amount, ref
        self.start_at, self.deadline = start_at, deadline
        self.answer = None
        self.attempts = 0
        self.refusal = None
        self.answered_at = None

    def attempt(self):
        body = json.dumps({"bill_id": self.bill, "amount_fen": self.amount,
                           "payment_ref": self.ref}).encode()
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            c.request("POST", "/api/v1/accounts/%s/payments" % self.acct, body=body,
                      headers={"X-Binding-Token": self.token,
                               "Content-Type": "application/json"})
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def run(self):
        time.sleep(max(0.0, self.start_at - time.time()))
        while time.time() < self.deadline:
            self.attempts += 1
            try:
                st, raw = self.attempt()
            except (OSError, http.client.HTTPException):
                st, raw = None, b""
            if st == 200:
                self.answer = json.loads(raw)
                self.answered_at = time.time()
                return
            if st is not None and 400 <= st < 500:
                self.refusal = (st, raw[:200])       # never expected: recorded as lost
                return
            time.sleep(random.uniform(0.1, 0.4))      # 5xx, 504 or no answer: same ref again


def bind_all(d, accts):
    tokens = {}
    lock = threading.Lock()
    todo = list(accts)

    def worker():
        while True:
            with lock:
                if not todo:
                    return
                a = todo.pop()
            for _ in range(20):
                try:
                    st, body = d.bind(a, user="citizen-" + a)
                except (OSError, ValueError, http.client.HTTPException):
                    st, body = None, {}
                if st == 201:
                    with lock:
                        tokens[a] = body["binding_token"]
                    break
                time.sleep(0.2)

    ts = [threading.Thread(target=worker) for _ in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return tokens


def portal_up(d, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            st, _ = d.get("/healthz")
            if st == 200:
                return True
        except (OSError, ValueError, http.client.HTTPException):
            pass
        time.sleep(0.05)
    return False


def log_tail(d, role, n=600):
    return d.read_log(role)[-n:].replace("\n", " | ")


class Supervisor(threading.Thread):
    """Restart a role that died on its own (as systemd's Restart=always would), noting why."""

    def __init__(self, d):
        super().__init__(daemon=True)
        self.d = d
        self.stop = threading.Event()
        self.deaths = []

    def run(self):
        while not self.stop.wait(0.5):
            for role in ("utility", "portal"):
                if not self.d.alive(role):
                    self.deaths.append((role, self.d.procs[role].returncode, log_tail(self.d, role)))
                    print("supervisor: %s exited %s; restarting. log: %s"
                          % (role, self.d.procs[role].returncode, log_tail(self.d, role)),
                          flush=True)
                    self.d.start(role)


def chaos(d, kills, window_s, stats):
    """Kill -9 the utility, the portal or both, `kills` times over about window_s."""
    gap = window_s / max(1, kills)
    for _ in range(kills):
        time.sleep(random.uniform(0.3 * gap, 1.2 * gap))
        target = random.choice(["utility", "portal", "both"])
        roles = ["utility", "portal"] if target == "both" else [target]
        for r in roles:
            d.kill(r, signal.SIGKILL)
        stats[target] += 1
        time.sleep(random.uniform(0.05, 0.4))
        for r in roles:
            d.start(r)
        if "portal" in roles:
            portal_up(d)
        for r in roles:
            if not d.alive(r):
                stats["failed_starts"].append((r, log_tail(d, r)))
                print("chaos: %s did not start: %s" % (r, log_tail(d, r)), flush=True)
                d.start(r)


def run(args, payments, kills):
    c = Checker()
    accounts = payments * 2 + 100
    d = Demo(args.gridgate, accounts=accounts, months=3)
    rcv = Receiver(SECRET)
    try:
        with open(os.path.join(d.dir, "push.secret"), "wb") as f:
            f.write(SECRET)
        with open(os.path.join(d.dir, "portal.conf"), "a") as f:
            f.write(push_config(rcv.url, "push.secret", max_attempts=1000, backoff_ms=50,
                                backoff_max_ms=1000, timeout_ms=2000, concurrency=8))
        with open(os.path.join(d.dir, "utility.conf"), "a") as f:
            f.write("\n[utility]\nbill_sweep_s = 0\n")
        con = d.db()
        rows = con.execute("SELECT b.bill_id, b.account_no, b.amount_fen FROM bills b JOIN "
                           "accounts a USING(account_no) WHERE b.status <> 'paid' AND "
                           "a.status = 'active' ORDER BY b.bill_id").fetchall()
        con.close()
        c.check(len(rows) >= payments, "the seed has %d unpaid bills for %d payments"
                % (len(rows), payments))
        bills = rows[:payments]
        d.start_both()
        t0 = time.time()
        tokens = bind_all(d, sorted({r["account_no"] for r in bills}))
        c.check(len(tokens) == len({r["account_no"] for r in bills}), "bound every account")
        print("setup: %d accounts bound in %.1fs" % (len(tokens), time.time() - t0), flush=True)

        window = max(10.0, kills * 1.0)
        start = time.time()
        deadline = start + window + 300
        citizens = [Citizen(d.port, r["account_no"], tokens.get(r["account_no"], "x"),
                            r["bill_id"], r["amount_fen"], "chaos-%06d" % i,
                            start + random.uniform(0, window * 0.9), deadline)
                    for i, r in enumerate(bills)]
        for t in citizens:
            t.start()
        stats = {"utility": 0, "portal": 0, "both": 0, "failed_starts": []}
        chaos(d, kills, window, stats)
        chaos_end = time.time()
        sup = Supervisor(d)
        sup.start()
        for t in citizens:
            t.join(max(1.0, deadline - time.time()))
        answered_at = max([t.answered_at or 0 for t in citizens] + [chaos_end])
        refs = {t.ref for t in citizens}
        drained = rcv.wait_for(lambda r: refs <= {e["data"]["payment_ref"]
                                                  for e in r.of_type("payment.posted")},
                               timeout=180)
        drain_s = time.time() - max(chaos_end, answered_at)

        con = d.db()
        pays = {}
        for row in con.execute("SELECT payment_id, bill_id, amount_fen, payment_ref FROM payments"):
            pays.setdefault(row["payment_ref"], []).append(dict(row))
        per_bill = dict(con.execute("SELECT bill_id, count(*) FROM payments GROUP BY bill_id")
                        .fetchall())
        status = dict(con.execute("SELECT bill_id, status FROM bills").fetchall())
        con.close()
        got = {e["data"]["payment_ref"] for e in rcv.of_type("payment.posted")}
        with rcv.lock:
            deliveries = sum(1 for x in rcv.posts if x["type"] == "payment.posted"
                             and x["mode"] == "ok")
        lost = [t.ref for t in citizens if t.ref not in pays or t.answer is None]
        duplicated = sum(len(v) - 1 for v in pays.values()) + \
            sum(n - 1 for n in per_bill.values() if n > 1)
        wrong_amount = [t.ref for t in citizens if t.ref in pays and
                        any(p["amount_fen"] != t.amount or p["bill_id"] != t.bill
                            for p in pays[t.ref])]
        bad_answer = [t.ref for t in citizens if t.answer is not None and
                      (t.answer.get("status") != "posted" or t.ref not in pays or
                       t.answer.get("payment_id") != pays[t.ref][0]["payment_id"] or
                       t.answer.get("amount_fen") != t.amount)]
        unpaid = [t.bill for t in citizens if status.get(t.bill) != "paid"]
        refused = [(t.ref, t.refusal) for t in citizens if t.refusal]
        retries = sum(t.attempts - 1 for t in citizens)

        c.check(stats["utility"] + stats["portal"] + stats["both"] == kills,
                "killed %d times: %s" % (kills, stats))
        c.check(not stats["failed_starts"], "every restart after a kill -9 came up: %s"
                % stats["failed_starts"][:2])
        c.check(not refused, "no citizen was refused: %s" % refused[:3])
        c.check(not lost, "no payment lost: %d (%s)" % (len(lost), lost[:5]))
        c.check(duplicated == 0, "no payment posted twice: %d" % duplicated)
        c.check(not wrong_amount, "every amount exact: %s" % wrong_amount[:5])
        c.check(not unpaid, "every bill paid: %d unpaid (%s)" % (len(unpaid), unpaid[:5]))
        c.check(len(pays) == payments and all(len(v) == 1 for v in pays.values()),
                "one payment row per payment_ref: %d rows for %d refs"
                % (sum(len(v) for v in pays.values()), payments))
        c.check(not bad_answer, "every citizen holds a final posted answer matching the "
                "database: %s" % bad_answer[:5])
        c.check(drained and refs <= got, "the receiver has every payment.posted event: missing %d"
                % len(refs - got))
        print("chaos figures: payments=%d kills=%d (utility=%d portal=%d both=%d) lost=%d "
              "duplicated=%d retries=%d event_deliveries=%d duplicate_event_deliveries=%d "
              "time_to_drain_s=%.1f total_s=%.1f"
              % (payments, kills, stats["utility"], stats["portal"], stats["both"], len(lost),
                 duplicated, retries, deliveries, max(0, deliveries - len(got)), drain_s,
                 time.time() - start), flush=True)
        sup.stop.set()
        sup.join()
        c.check(not sup.deaths, "no role died on its own after the chaos: %s" % sup.deaths[:2])
        # A role restarted by the last kill may still be starting; a stop
        # then must be just as clean, but give it the chance to come up
        # first so that the check is about stopping, not starting.
        try:
            d.wait_running(timeout=30)
        except RuntimeError as err:
            c.check(False, "both roles up again after the chaos: %s" % err)
        rcs = d.stop_all()
        c.check(rcs.get("portal") == 0 and rcs.get("utility") == 0, "both stop cleanly: %s" % rcs)
    finally:
        rcv.close()
        d.cleanup(keep=args.keep)
    return c.finish()


def main(default_payments=500, default_kills=20):
    args = parse_args()
    payments = env_int("GG_CHAOS_PAYMENTS", default_payments)
    kills = env_int("GG_CHAOS_KILLS", default_kills)
    random.seed(env_int("GG_CHAOS_SEED", int(time.time())))
    return run(args, payments, kills)


if __name__ == "__main__":
    sys.exit(main())
