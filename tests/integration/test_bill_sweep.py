"""test_bill_sweep - the utility's bill sweeps on both marketing backends.

Both roles run as real processes (SQLite, then PostgreSQL) with a webhook
receiver and utility.bill_sweep_s = 1. Checks: bill.overdue events arrive for
the seed's unpaid bills past due; the first sweep only sets the bill_issued
mark; a bill the marketing system issues is announced by exactly one
bill.issued event and the mark moves to it; while the sweeps run, the
marketing database's write lock is free (SQLite: a writer with no busy
timeout gets it at every try; the sweep holds it only for its short writes).
`gridgate seed --indexes-only` adds the indexes the sweeps need to an older
database once (a second run builds none) and refuses bad arguments with a
message; on PostgreSQL the sweep statements can read through them.
"""
import os
import sqlite3
import subprocess
import sys
import time

import pgutil
from harness import Checker, Demo, parse_args
from webhook import Receiver, push_config

SECRET = b"test-secret-0123456789abcdef"
NEW_BILL = ("INSERT INTO bills SELECT bill_id || 'N', account_no, '2099-01', kwh, kwh_peak, "
            "kwh_valley, ytd_kwh, tariff_code, amount_fen, '2099-02-03', '2099-02-15', 'unpaid' "
            "FROM bills WHERE bill_id = '%s'")


def seed_cli(d, *args):
    return subprocess.run([d.gridgate, "seed"] + list(args), capture_output=True, text=True,
                          timeout=300)


def mark_of(d, pg):
    sql = "SELECT value FROM gg_marks WHERE name = 'bill_issued'"
    if pg:
        rows = pgutil.query(pg, sql)
        return "|".join(rows[0]) if rows else None  # the mark holds the '|' query() splits on
    con = sqlite3.connect("file:%s?mode=ro" % d.db_path, uri=True)
    try:
        row = con.execute(sql).fetchone()
    except sqlite3.OperationalError:
        row = None
    finally:
        con.close()
    return row[0] if row else None


def lock_free_while_sweeping(d, seconds):
    """Take SQLite's write lock with busy_timeout 0 every 20 ms for seconds
    (sweeps run every second); (tries, refusals)."""
    con = sqlite3.connect(d.db_path, timeout=0, isolation_level=None)
    tries = refused = 0
    end = time.time() + seconds
    try:
        while time.time() < end:
            tries += 1
            try:
                con.execute("BEGIN IMMEDIATE")
                con.execute("ROLLBACK")
            except sqlite3.OperationalError:
                refused += 1
            time.sleep(0.02)
    finally:
        con.close()
    return tries, refused


def check_indexes_cli(c, d, pg):
    tag = "pg" if pg else "sqlite"
    drop = "DROP INDEX bills_issued; DROP INDEX bills_status_due"
    if pg:
        pgutil.psql(pg, drop)
        out = seed_cli(d, "--pg", pg, "--indexes-only")
    else:
        con = sqlite3.connect(d.db_path, timeout=10, isolation_level=None)
        con.executescript(drop)
        con.close()
        out = seed_cli(d, "--db", d.db_path, "--indexes-only")
    c.check(out.returncode == 0 and ": 2 built" in out.stdout,
            "%s: seed --indexes-only builds the two missing indexes: %s %s"
            % (tag, out.stdout.strip(), out.stderr[-300:]))
    out = seed_cli(d, *(["--pg", pg] if pg else ["--db", d.db_path]), "--indexes-only")
    c.check(out.returncode == 0 and ": 0 built" in out.stdout,
            "%s: a second run builds none: %s" % (tag, out.stdout.strip()))


def check_pg_plans(c, pg):
    """With sequential scans priced out, the default sweep statements read
    bills through the seed's indexes (a usable index exists)."""
    issued = ("SELECT bill_id FROM bills WHERE (issued_on, bill_id) > ('2000-01-01', 'x') "
              "ORDER BY issued_on, bill_id LIMIT 200")
    overdue = ("SELECT bill_id FROM bills WHERE status = 'unpaid' AND due_date < '2099-01-01' "
               "ORDER BY due_date, bill_id LIMIT 200")
    for name, sql, ix in (("issued_list", issued, "bills_issued"),
                          ("overdue_list", overdue, "bills_status_due")):
        plan = pgutil.psql(pg, "SET enable_seqscan = off; SET enable_bitmapscan = off; "
                               "EXPLAIN " + sql)
        c.check(ix in plan and "Seq Scan" not in plan and "Sort" not in plan,
                "pg: %s reads through %s without a sort: %s" % (name, ix, plan.strip()))


def check_backend(c, args, pg=None):
    tag = "pg" if pg else "sqlite"
    d = Demo(args.gridgate, accounts=80, months=4, pg=pg)
    rcv = Receiver(SECRET)
    try:
        with open(os.path.join(d.dir, "push.secret"), "wb") as f:
            f.write(SECRET + b"\n")
        with open(os.path.join(d.dir, "portal.conf"), "a") as f:
            f.write(push_config(rcv.url, "push.secret"))
        with open(os.path.join(d.dir, "utility.conf"), "a") as f:
            f.write("\n[utility]\nbill_sweep_s = 1\n")
        d.start_both()
        c.check(rcv.wait_for(lambda r: len(r.of_type("bill.overdue")) > 0, 30),
                "%s: bill.overdue events arrive from the overdue sweep" % tag)
        deadline = time.time() + 20
        while mark_of(d, pg) is None and time.time() < deadline:
            time.sleep(0.1)
        first = mark_of(d, pg)
        c.check(first is not None and "|" in first, "%s: the first sweep set the mark: %r"
                % (tag, first))
        c.check(len(rcv.of_type("bill.issued")) == 0, "%s: history is not announced" % tag)
        if not pg:
            for _ in range(200):            # the publisher has drained the outbox
                con = d.db()
                left = con.execute("SELECT count(*) FROM gg_outbox").fetchone()[0]
                con.close()
                if left == 0:
                    break
                time.sleep(0.1)
            tries, refused = lock_free_while_sweeping(d, 3.0)
            c.check(tries > 50 and refused == 0,
                    "sqlite: the write lock is free while the sweeps run: %d refusals in %d tries"
                    % (refused, tries))

        with d.db() as con:
            bill = con.execute("SELECT bill_id FROM bills ORDER BY bill_id LIMIT 1").fetchone()[0]
        if pg:
            pgutil.psql(pg, NEW_BILL % bill)
        else:
            rw = sqlite3.connect(d.db_path, timeout=10)
            with rw:
                rw.execute(NEW_BILL % bill)
            rw.close()
        c.check(rcv.wait_for(lambda r: [e for e in r.of_type("bill.issued")
                                        if e["data"]["bill_id"] == bill + "N"], 20),
                "%s: a newly issued bill is announced by bill.issued" % tag)
        time.sleep(2.5)                     # two more sweeps: nothing again
        c.check(len(rcv.of_type("bill.issued")) == 1, "%s: announced once: %d bill.issued"
                % (tag, len(rcv.of_type("bill.issued"))))
        c.check(mark_of(d, pg) == "2099-02-03|" + bill + "N", "%s: the mark moved to it: %r"
                % (tag, mark_of(d, pg)))
        check_indexes_cli(c, d, pg)
        if pg:
            check_pg_plans(c, pg)
        rcs = d.stop_all()
        c.check(all(rc == 0 for rc in rcs.values()), "%s: clean stop: %s" % (tag, rcs))
    finally:
        rcv.close()
        d.cleanup()


def check_cli_errors(c, args):
    def run(*a):
        return subprocess.run([args.gridgate, "seed"] + list(a), capture_output=True, text=True,
                              timeout=60)
    out = run("--db", "/nonexistent/x.db", "--indexes-only")
    c.check(out.returncode == 1 and "no such file" in out.stderr,
            "indexes-only on a missing file: a clear error: %s" % out.stderr.strip())
    junk = "/tmp/gg-sweep-junk-%d.db" % os.getpid()
    with open(junk, "w") as f:
        f.write("not a database\n" * 100)
    try:
        out = run("--db", junk, "--indexes-only")
    finally:
        os.unlink(junk)
    c.check(out.returncode == 1 and "gridgate seed --indexes-only" in out.stderr,
            "indexes-only on a file that is not a database: an error, no crash: rc=%d %s"
            % (out.returncode, out.stderr.strip()[-200:]))
    out = run("--indexes-only")
    c.check(out.returncode == 2 and "usage" in out.stderr, "indexes-only alone: usage")
    out = run("--db", "/tmp/x.db", "--pg", "dbname=x", "--indexes-only")
    c.check(out.returncode == 2 and "usage" in out.stderr, "indexes-only with both: usage")


def main():
    args = parse_args()
    c = Checker()
    check_cli_errors(c, args)
    pgutil.on_both("sweep", lambda pg: check_backend(c, args, pg=pg))
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
