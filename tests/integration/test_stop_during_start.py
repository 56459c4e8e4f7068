"""test_stop_during_start - SIGTERM while a role is still starting stops it cleanly.

A service manager may stop a unit it has only just (re)started. Each role
is started and sent SIGTERM after a short, varied delay that falls inside
its start-up (opening stores, loading keys, binding ports); it must then
exit 0 like any other clean stop, never die of the signal. The delay is
counted from the moment the process has reached gridgate's own code (it
blocks or catches SIGTERM: /proc/PID/status), since before that the
dynamic loader (and, under ASan, the sanitizer's set-up) runs, where no
program can take a signal over. Then both roles
are started normally and a bill query must still work, proving the stores
were left sound.
"""
import signal
import sys
import time

from harness import Checker, Demo, parse_args

DELAYS_S = (0.0, 0.005, 0.01, 0.02, 0.04, 0.08, 0.2)
SIGTERM_BIT = 1 << (signal.SIGTERM - 1)


def takes_sigterm(pid, timeout=5.0):
    """Wait until pid blocks or catches SIGTERM; False on timeout."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with open("/proc/%d/status" % pid) as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
            if (int(fields["SigBlk"], 16) | int(fields["SigCgt"], 16)) & SIGTERM_BIT:
                return True
        except (OSError, KeyError, ValueError):
            return False
        time.sleep(0.0005)
    return False


def main():
    args = parse_args()
    c = Checker()
    d = Demo(args.gridgate, accounts=50, months=3)
    try:
        for role in ("utility", "portal"):
            for delay in DELAYS_S:
                d.start(role)
                c.check(takes_sigterm(d.procs[role].pid), "%s reaches its signal handling"
                        % role)
                time.sleep(delay)
                rc = d.kill(role, signal.SIGTERM)
                c.check(rc == 0, "%s stopped %.3fs after start exits 0, got %s; log: %s"
                        % (role, delay, rc, d.read_log(role)[-400:].replace("\n", " | ")))
        d.start_both()
        with d.db() as con:
            row = con.execute("SELECT account_no, period FROM bills ORDER BY bill_id "
                              "LIMIT 1").fetchone()
        acct = row["account_no"]
        st, body = d.bind(acct)
        c.check(st == 201, "bind after the early stops: %s %s" % (st, body))
        tok = {"X-Binding-Token": body.get("binding_token", "")}
        st, body = d.get("/api/v1/accounts/%s/bills?from=%s&to=%s"
                         % (acct, row["period"], row["period"]), tok)
        c.check(st == 200 and len(body.get("bills", [])) == 1,
                "bill query after the early stops: %s %s" % (st, body))
        rcs = d.stop_all()
        c.check(rcs == {"utility": 0, "portal": 0}, "both stop cleanly: %s" % rcs)
    finally:
        d.stop_all()
        d.cleanup(keep=args.keep)
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
