"""test_kem_rotation - the utility's kem key rotated without downtime.

Follows docs/protocol.md "Keys and rotation" with real processes: a new kem
key U' for the utility (from a second `gridgate pki init`), then
1. portal: peer_kem_pub_prev = U';
2. utility: kem_key = U', kem_key_prev = U;
3. portal: peer_kem_pub = U', peer_kem_pub_prev = U;
restarting one site at a time, with a bill query answered after each step.
First, the failure the procedure avoids: the utility switched to U' alone
leaves the portal unable to open its replies (504), and a time in the past
turns the second pair off.
"""
import os
import re
import subprocess
import sys

from harness import Checker, Demo, parse_args

FAR = "2099-01-01T00:00:00Z"


def set_security(d, role, **keys):
    """Set (or add) keys in the [security] section of role's config."""
    path = os.path.join(d.dir, role + ".conf")
    with open(path) as f:
        text = f.read()
    for k, v in keys.items():
        line = "%s = %s" % (k, v)
        if re.search(r"(?m)^%s\s*=.*$" % re.escape(k), text):
            text = re.sub(r"(?m)^%s\s*=.*$" % re.escape(k), line, text)
        else:
            text = text.replace("[security]\n", "[security]\n%s\n" % line, 1)
    with open(path, "w") as f:
        f.write(text)


def query(d, acct, tok, period):
    return d.get("/api/v1/accounts/%s/bills?from=%s&to=%s" % (acct, period, period),
                 {"X-Binding-Token": tok})


def main():
    args = parse_args()
    c = Checker()
    d = Demo(args.gridgate, accounts=50, months=3)
    try:
        new = os.path.join(d.dir, "pki-new")
        out = subprocess.run([d.gridgate, "pki", "init", new], capture_output=True, text=True)
        c.check(out.returncode == 0, "a second PKI for the new kem key: %s" % out.stderr)
        u_old_key = os.path.join(d.dir, "pki", "utility.kem.key")
        u_old_pub = os.path.join(d.dir, "pki", "utility.kem.pub")
        u_new_key = os.path.join(new, "utility.kem.key")
        u_new_pub = os.path.join(new, "utility.kem.pub")
        portal_conf = os.path.join(d.dir, "portal.conf")
        with open(portal_conf) as f:
            text = f.read().replace("request_timeout_ms = 5000", "request_timeout_ms = 2000")
        with open(portal_conf, "w") as f:
            f.write(text)

        d.start_both()
        with d.db() as con:
            row = con.execute("SELECT account_no, period FROM bills ORDER BY bill_id "
                              "LIMIT 1").fetchone()
        acct, period = row["account_no"], row["period"]
        st, body = d.bind(acct)
        c.check(st == 201, "bind: %s %s" % (st, body))
        tok = body.get("binding_token", "")
        st, _ = query(d, acct, tok, period)
        c.check(st == 200, "query before the rotation: %s" % st)

        # The failure the procedure avoids: the utility alone switches to U'.
        d.kill("utility", 15)
        set_security(d, "utility", kem_key=u_new_key, kem_key_prev=u_old_key,
                     kem_prev_until=FAR)
        d.start("utility")
        d.wait_running()
        st, body = query(d, acct, tok, period)
        c.check(st == 504, "the portal cannot open replies sealed with a kem key it does not "
                "know: %s %s" % (st, body.get("error")))
        d.kill("utility", 15)
        set_security(d, "utility", kem_key=u_old_key)
        with open(os.path.join(d.dir, "utility.conf")) as f:
            text = f.read()
        text = re.sub(r"(?m)^kem_key_prev\s*=.*\n", "", text)
        text = re.sub(r"(?m)^kem_prev_until\s*=.*\n", "", text)
        with open(os.path.join(d.dir, "utility.conf"), "w") as f:
            f.write(text)
        d.start("utility")
        d.wait_running()
        st, _ = query(d, acct, tok, period)
        c.check(st == 200, "back on the old key: %s" % st)

        # Step 1: the portal learns U' (it still seals for U).
        d.kill("portal", 15)
        set_security(d, "portal", peer_kem_pub_prev=u_new_pub, kem_prev_until=FAR)
        d.start("portal")
        d.wait_running()
        st, _ = query(d, acct, tok, period)
        c.check(st == 200, "step 1 (portal accepts U'): %s" % st)
        log = d.read_log("portal")
        c.check("previous kem key accepted" in log, "the portal logs the second kem pair")

        # Step 2: the utility switches to U', keeping U for what is in flight.
        d.kill("utility", 15)
        set_security(d, "utility", kem_key=u_new_key, kem_key_prev=u_old_key,
                     kem_prev_until=FAR)
        d.start("utility")
        d.wait_running()
        st, _ = query(d, acct, tok, period)
        c.check(st == 200, "step 2 (utility on U', portal still sealing for U): %s" % st)

        # Step 3: the portal seals for U' too.
        d.kill("portal", 15)
        set_security(d, "portal", peer_kem_pub=u_new_pub, peer_kem_pub_prev=u_old_pub)
        d.start("portal")
        d.wait_running()
        st, _ = query(d, acct, tok, period)
        c.check(st == 200, "step 3 (both on U'): %s" % st)

        # A time already past turns the second pair off: the utility on U'
        # alone still works with a portal on U'.
        d.kill("utility", 15)
        set_security(d, "utility", kem_prev_until="2000-01-01T00:00:00Z")
        d.start("utility")
        d.wait_running()
        st, _ = query(d, acct, tok, period)
        c.check(st == 200, "after the overlap, on U' only: %s" % st)

        # A bad time is a configuration error that names the key.
        d.kill("utility", 15)
        set_security(d, "utility", kem_prev_until="soon")
        out = subprocess.run([d.gridgate, "run", "-c", os.path.join(d.dir, "utility.conf")],
                             capture_output=True, text=True, timeout=30)
        c.check(out.returncode != 0 and "kem_prev_until" in out.stderr + out.stdout,
                "a malformed kem_prev_until stops the utility with its name: %s"
                % (out.stderr + out.stdout)[-300:])
        rcs = d.stop_all()
        c.check(rcs.get("portal") == 0, "the portal stops cleanly: %s" % rcs)
    finally:
        d.stop_all()
        d.cleanup(keep=args.keep)
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
