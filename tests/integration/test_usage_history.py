"""test_usage_history - GET /api/v1/accounts/{no}/usage on both adapters.

For the SQLite adapter and then the PostgreSQL one (a demo seeded into a
throw-away database): binds an account, asks for its usage per day and per
month and compares every period with the readings in the marketing
database read directly; checks the token rules (as for bills), every
parameter error, the range limits, that monthly answers come from the
summaries `gridgate prepare` builds, that bills read the same on PostgreSQL,
and that the PostgreSQL adapter survives its connections being killed and
(as root, with Debian's cluster tools) a server restart: the next requests
reconnect and are answered normally.
"""
import os
import shutil
import sqlite3
import subprocess
import sys
import time

from harness import Checker, Demo, parse_args
import pgutil


def error_code(body):
    return body.get("error", {}).get("code") if isinstance(body, dict) else None


def centi(x):
    return int(round(x * 100))


def check_backend(c, args, pg=None):
    tag = "pg" if pg else "sqlite"
    d = Demo(args.gridgate, accounts=120, months=4, pg=pg)
    try:
        # data preparation first: every monthly answer below reads summaries
        out = subprocess.run([d.gridgate, "prepare", "-c", os.path.join(d.dir, "utility.conf")],
                             capture_output=True, text=True, timeout=120)
        c.check(out.returncode == 0 and "prepared" in out.stdout,
                "%s: gridgate prepare: %s %s" % (tag, out.stdout.strip(), out.stderr[-300:]))
        d.start_both()
        with d.db() as con:
            acct = con.execute("SELECT account_no FROM accounts WHERE status='active' ORDER BY "
                               "account_no LIMIT 1").fetchone()["account_no"]
            other = con.execute("SELECT account_no FROM accounts WHERE account_no<>? ORDER BY "
                                "account_no LIMIT 1", (acct,)).fetchone()["account_no"]
            days = [dict(r) for r in con.execute(
                "SELECT day, kwh_peak, kwh_valley FROM readings WHERE account_no=? ORDER BY day",
                (acct,))]
            bills = [dict(r) for r in con.execute(
                "SELECT bill_id, period, kwh, amount_fen, status FROM bills WHERE account_no=? "
                "ORDER BY period", (acct,))]
        st, body = d.bind(acct)
        c.check(st == 201, "%s: bind 201: %s" % (tag, st))
        tok = {"X-Binding-Token": body.get("binding_token", "")}
        first, last = days[0]["day"], days[-1]["day"]
        base = "/api/v1/accounts/%s/usage" % acct

        # per day, the whole seeded range in chunks of at most 366 days
        st, body = d.get(base + "?granularity=day&from=%s&to=%s" % (first, last), tok)
        c.check(st == 200, "%s: usage by day 200: %s %s" % (tag, st, body))
        got = body.get("usage", [])
        c.check(len(got) == len(days), "%s: one row per day with readings (%d vs %d)"
                % (tag, len(got), len(days)))
        bad = [g for g, w in zip(got, days)
               if g["period"] != w["day"] or centi(g["kwh_peak"]) != centi(w["kwh_peak"])
               or centi(g["kwh_valley"]) != centi(w["kwh_valley"])
               or centi(g["kwh"]) != centi(w["kwh_peak"]) + centi(w["kwh_valley"])]
        c.check(not bad, "%s: every day matches the readings: %s" % (tag, bad[:2]))
        c.check(body.get("unit") == "kWh" and body.get("granularity") == "day"
                and body.get("from") == first and body.get("to") == last,
                "%s: usage echoes unit, granularity and range" % tag)

        # per month
        months = {}
        for w in days:
            m = months.setdefault(w["day"][:7], [0, 0])
            m[0] += centi(w["kwh_peak"])
            m[1] += centi(w["kwh_valley"])
        st, body = d.get(base + "?granularity=month&from=%s&to=%s" % (first[:7], last[:7]), tok)
        c.check(st == 200, "%s: usage by month 200: %s" % (tag, st))
        got = body.get("usage", [])
        c.check([g["period"] for g in got] == sorted(months), "%s: one row per month" % tag)
        bad = [g for g in got if [centi(g["kwh_peak"]), centi(g["kwh_valley"])]
               != months.get(g["period"])]
        c.check(not bad, "%s: monthly sums match the readings: %s" % (tag, bad[:2]))
        # bills' whole kWh are the month's readings rounded: they agree within rounding
        for b in bills:
            m = months.get(b["period"])
            if m:
                c.check(abs(b["kwh"] * 100 - (m[0] + m[1])) <= 100,
                        "%s: bill %s kWh agrees with usage" % (tag, b["period"]))
                break
        # prepared data is what is read: a changed summary shows, a new prepare restores it
        first_month = sorted(months)[0]
        bump = "UPDATE gg_usage_monthly SET kwh_peak = kwh_peak + 1000 WHERE account_no = '%s' " \
               "AND period = '%s'" % (acct, first_month)
        if pg:
            pgutil.psql(pg, bump)
        else:
            con = sqlite3.connect(d.db_path)
            con.execute(bump)
            con.commit()
            con.close()
        st, body = d.get(base + "?granularity=month&from=%s&to=%s" % (first_month, first_month), tok)
        got = body.get("usage", [{}])[0] if st == 200 and body.get("usage") else {}
        c.check(centi(got.get("kwh_peak", 0)) == months[first_month][0] + 100000,
                "%s: monthly usage reads the prepared summaries: %s" % (tag, got))
        subprocess.run([d.gridgate, "prepare", "-c", os.path.join(d.dir, "utility.conf")],
                       capture_output=True, timeout=120)
        st, body = d.get(base + "?granularity=month&from=%s&to=%s" % (first_month, last[:7]), tok)
        got = body.get("usage", [{}])[0] if st == 200 and body.get("usage") else {}
        c.check(centi(got.get("kwh_peak", 0)) == months[first_month][0],
                "%s: a new prepare restores the summaries: %s" % (tag, got))

        st, body = d.get(base, tok)
        c.check(st == 200 and body.get("granularity") == "month",
                "%s: default granularity is month: %s" % (tag, st))
        st, body = d.get(base + "?granularity=day&from=1999-01-01&to=1999-01-31", tok)
        c.check(st == 200 and body.get("usage") == [], "%s: a range with no readings is empty"
                % tag)

        # bills on this backend match the database too
        st, body = d.get("/api/v1/accounts/%s/bills?from=%s&to=%s"
                         % (acct, bills[0]["period"], bills[-1]["period"]), tok)
        # (statuses may move on: the overdue sweep runs against the wall clock)
        c.check(st == 200 and [(b["bill_id"], b["amount_fen"]) for b in body.get("bills", [])]
                == [(b["bill_id"], b["amount_fen"]) for b in bills],
                "%s: bills match the database" % tag)

        # errors
        cases = [
            (base + "?granularity=day", {}, 401, "missing_token"),
            (base + "?granularity=day", {"X-Binding-Token": "abc.def"}, 401, "invalid_token"),
            ("/api/v1/accounts/%s/usage" % other, tok, 403, "not_bound"),
            (base + "?granularity=week", tok, 400, "invalid_parameter"),
            (base + "?granularity=day&from=2026-02-30&to=2026-03-01", tok, 400, "invalid_parameter"),
            (base + "?granularity=day&from=2026-03&to=2026-03-01", tok, 400, "invalid_parameter"),
            (base + "?granularity=day&from=2024-01-01&to=2025-01-01", tok, 400, "invalid_parameter"),
            (base + "?granularity=day&from=2025-03-02&to=2025-03-01", tok, 400, "invalid_parameter"),
            (base + "?granularity=month&from=2010-01&to=2020-01", tok, 400, "invalid_parameter"),
            (base + "?granularity=month&from=2020-13", tok, 400, "invalid_parameter"),
        ]
        for path, hdr, want_st, want_code in cases:
            st, body = d.get(path, hdr)
            c.check(st == want_st and error_code(body) == want_code,
                    "%s: %s -> %d %s (got %s %s)" % (tag, path.split("?")[-1], want_st,
                                                     want_code, st, error_code(body)))
        st, body = d.get(base + "?granularity=day&from=2024-01-01&to=2024-12-31", tok)
        c.check(st == 200, "%s: a leap year of days (366) is allowed: %s" % (tag, st))

        if pg:
            # kill the utility's connections: the next request reconnects
            pgutil.psql(pg, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = current_database() AND pid <> pg_backend_pid()")
            ok = 0
            for i in range(8):  # distinct ranges: not answered from the cache
                st, body = d.get(base + "?granularity=month&from=2019-%02d" % (i + 1), tok)
                ok += st == 200
            c.check(ok == 8, "pg: requests after the connections were killed all succeed (%d/8)"
                    % ok)
            c.check("reconnected to PostgreSQL" in d.read_log("utility"),
                    "pg: the utility logged its reconnect")
            # a real server restart, where we may (root, Debian's cluster tools)
            if os.geteuid() == 0 and shutil.which("pg_ctlcluster") and shutil.which("pg_lsclusters"):
                line = subprocess.run(["pg_lsclusters", "-h"], capture_output=True,
                                      text=True).stdout.split()
                r = subprocess.run(["pg_ctlcluster", line[0], line[1], "restart"],
                                   capture_output=True, text=True, timeout=120)
                c.check(r.returncode == 0, "pg: cluster restarted: %s" % r.stderr[-200:])
                ok = 0
                for i in range(8):
                    st, body = d.get(base + "?granularity=month&from=2018-%02d" % (i + 1), tok)
                    ok += st == 200
                c.check(ok == 8, "pg: requests after a server restart all succeed (%d/8)" % ok)
        rcs = d.stop_all()
        c.check(rcs.get("utility") == 0 and rcs.get("portal") == 0,
                "%s: both roles stop cleanly: %s" % (tag, rcs))
    finally:
        d.cleanup(keep=args.keep)


def main():
    args = parse_args()
    c = Checker()
    pgutil.on_both("usage", lambda pg: check_backend(c, args, pg=pg))
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
