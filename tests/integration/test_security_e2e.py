"""test_security_e2e - message security through the real interface, under
both suites (intl, then gm).

For each suite: `gridgate demo init --suite S`, both roles as processes. Bind an
account and query its bills; the binding token cannot be moved to another
account (403 not_bound) nor forged (401 invalid_token). DELETE
/api/v1/bindings with the token revokes it (200, twice: idempotent); the token
is then refused (401 token_revoked), also after the utility restarts, while a
second binding of the same account keeps working. With the utility down, a waiting call's
request is copied (a replay) and a reply to it is forged with the utility's own key but a wrong
request hash (tests/tools/envprobe.c); once the utility is back the call still gets the genuine
reply, the forged one is refused (request_hash) and the copy too (replay). Both sites publish
gridgate_rejects_total{reason} with the replay and freshness reasons; the
replay stores exist beside the stores. After the stop both sites' audit logs
verify with `gridgate admin audit verify` and an altered record is detected.
Finally the logs hold no token text and none of the seeded personal data
unmasked.
"""
import base64
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request

from chanlib import set_keys
from harness import Checker, Demo, parse_args


def replay_tables_in_store(path):
    """True if the queue store at path holds the replay tables with rows."""
    con = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        return con.execute("SELECT count(*) FROM replay_seen").fetchone()[0] > 0
    except sqlite3.Error:
        return False
    finally:
        con.close()


def metrics(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        return r.read().decode()


def bills(d, acct, token):
    return d.get("/api/v1/accounts/%s/bills" % acct, headers={"X-Binding-Token": token})


def unbind(d, token):
    h = {"X-Binding-Token": token} if token is not None else {}
    st, payload, _ = d.request("DELETE", "/api/v1/bindings", headers=h)
    return st, json.loads(payload)


def code(body):
    return body.get("error", {}).get("code") if isinstance(body, dict) else None


def forge(token):
    """The same token with its account number changed inside the claims."""
    _, claims, mac = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    raw[-25] ^= 0x01          # a byte of the account number (before scopes and times)
    return "gg1." + base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=") + "." + mac


def check_audit(c, d, suite):
    """Both audit logs verify; an altered record is found."""
    for role in ("portal", "utility"):
        conf = os.path.join(d.dir, role + ".conf")
        out = subprocess.run([d.gridgate, "admin", "audit", "verify", "-c", conf],
                             capture_output=True, text=True, timeout=60)
        n = int(out.stdout.split("records=")[1].split()[0]) if "records=" in out.stdout else 0
        c.check(out.returncode == 0 and n >= 5,
                "%s: %s audit log verifies with records (%s)" % (suite, role, out.stdout.strip()))
        path = os.path.join(d.dir, role, "audit.log")
        with open(path, "rb") as f:
            data = bytearray(f.read())
        i = data.find(b" replied ") if role == "utility" else data.find(b" sent ")
        if i > 0:
            data[i + 1] ^= 0x20                   # "replied" -> "Replied"
            with open(path, "wb") as f:
                f.write(data)
        out = subprocess.run([d.gridgate, "admin", "audit", "verify", "-c", conf],
                             capture_output=True, text=True, timeout=60)
        c.check(i > 0 and out.returncode == 1 and "altered" in out.stdout,
                "%s: %s altered audit record detected (%s)" % (suite, role, out.stdout.strip()))


def probe(d, *args):
    tool = os.path.join(os.path.dirname(d.gridgate), "gg_envprobe")
    out = subprocess.run([tool] + list(args), capture_output=True, text=True, timeout=60)
    return out.returncode, out.stdout


def forged_reply_and_replayed_request(c, d, suite, acct, tok):
    """With the utility down, a bills call waits at the portal. A reply forged with the
    utility's own key but another request's hash, and a copy of the request, are queued;
    when the utility starts, the forged reply is refused (request_hash) and the call gets the
    genuine reply; the copied request is refused as a replay."""
    d.kill("utility", signal.SIGTERM)
    res = {}

    def call():
        res["st"], res["body"] = bills(d, acct, tok)

    t = threading.Thread(target=call)
    t.start()
    portal_store = os.path.join(d.dir, "portal", "store.db")
    utility_store = os.path.join(d.dir, "utility", "store.db")
    ids = []
    for _ in range(100):
        rc, out = probe(d, "ids", portal_store, "xmit")
        ids = [l.split()[0] for l in out.splitlines() if l.endswith(" bills.query")]
        if ids:
            break
        time.sleep(0.05)
    c.check(len(ids) == 1, "%s: the waiting request is on the portal's xmit (%s)" % (suite, ids))
    if ids:
        rc, out = probe(d, "copy", portal_store, "xmit", "requests")
        c.check(rc == 0, "%s: request copied for a replay" % suite)
        rc, _ = probe(d, "reply", utility_store, os.path.join(d.dir, "pki"), suite, ids[0], "ab" * 32,
                      '{"status":200,"body":{"forged":true}}')
        c.check(rc == 0, "%s: forged reply queued at the utility" % suite)
    d.start("utility")
    t.join(60)
    c.check(res.get("st") == 200 and "bills" in res.get("body", {}) and "forged" not in res.get("body", {}),
            "%s: the call got the genuine reply, not the forged one (%s)" % (suite, res.get("st")))
    pm, um = metrics(d.port + 2), metrics(d.port + 3)
    c.check('gridgate_rejects_total{reason="request_hash"} 1' in pm,
            "%s: the portal refused the reply with the wrong request hash" % suite)
    deadline = time.time() + 10
    while 'gridgate_rejects_total{reason="replay"} 1' not in um and time.time() < deadline:
        time.sleep(0.1)
        um = metrics(d.port + 3)
    c.check('gridgate_rejects_total{reason="replay"} 1' in um,
            "%s: the utility refused the copied request as a replay" % suite)


def run_suite(c, gridgate, suite):
    d = Demo(gridgate, accounts=40, months=3, suite=suite)
    set_keys(os.path.join(d.dir, "portal.conf"), "http", {"request_timeout_ms": "30000"})
    set_keys(os.path.join(d.dir, "portal.conf"), "channel", {"backoff_max_ms": "300"})
    tokens = []
    try:
        d.start_both()
        with d.db() as con:
            accts = [r["account_no"] for r in con.execute(
                "SELECT account_no FROM accounts WHERE status='active' ORDER BY account_no LIMIT 2")]
        a, b = accts
        st, body = d.bind(a, user="citizen-7")
        c.check(st == 201, "%s: bind 201 (got %s)" % (suite, st))
        tok = body.get("binding_token", "")
        tokens.append(tok)
        st, body = bills(d, a, tok)
        c.check(st == 200, "%s: bills with the token 200 (got %s %s)" % (suite, st, code(body)))

        st, body = bills(d, b, tok)
        c.check(st == 403 and code(body) == "not_bound",
                "%s: token moved to another account -> 403 not_bound (got %s %s)" % (suite, st, code(body)))
        st, body = bills(d, a, forge(tok))
        c.check(st == 401 and code(body) == "invalid_token",
                "%s: altered token -> 401 invalid_token (got %s %s)" % (suite, st, code(body)))

        st, body = unbind(d, None)
        c.check(st == 401 and code(body) == "missing_token",
                "%s: DELETE without token -> 401 missing_token (got %s)" % (suite, st))
        st, body = unbind(d, forge(tok))
        c.check(st == 401 and code(body) == "invalid_token",
                "%s: DELETE with an altered token -> 401 (got %s %s)" % (suite, st, code(body)))
        st, body = bills(d, a, tok)
        c.check(st == 200, "%s: a failed revocation leaves the token working (got %s)" % (suite, st))
        st, body = unbind(d, tok)
        c.check(st == 200 and body.get("revoked") is True,
                "%s: DELETE /api/v1/bindings -> 200 revoked (got %s %s)" % (suite, st, body))
        st, body = unbind(d, tok)
        c.check(st == 200, "%s: revoking twice is fine (got %s)" % (suite, st))
        st, body = bills(d, a, tok)
        c.check(st == 401 and code(body) == "token_revoked",
                "%s: revoked token -> 401 token_revoked (got %s %s)" % (suite, st, code(body)))

        st, body = d.bind(a, user="citizen-7")
        tok2 = body.get("binding_token", "")
        tokens.append(tok2)
        c.check(st == 201 and tok2 != tok, "%s: binding again gives a new token" % suite)

        d.kill("utility")
        d.start("utility")
        d.wait_running()
        st, body = bills(d, a, tok)
        c.check(st == 401 and code(body) == "token_revoked",
                "%s: still revoked after a utility restart (got %s %s)" % (suite, st, code(body)))
        st, body = bills(d, a, tok2)
        c.check(st == 200, "%s: the new token works (got %s)" % (suite, st))

        forged_reply_and_replayed_request(c, d, suite, a, tok2)

        pm, um = metrics(d.port + 2), metrics(d.port + 3)
        for side, text in (("portal", pm), ("utility", um)):
            for reason in ("crypto", "stale", "future", "replay", "replay_full"):
                c.check('gridgate_rejects_total{reason="%s"}' % reason in text,
                        "%s: %s publishes rejects_total{reason=%s}" % (suite, side, reason))
        c.check('gridgate_rejects_total{reason="request_hash"}' in pm,
                "%s: portal counts replies with a wrong request hash" % suite)
        for role in ("portal", "utility"):
            c.check(replay_tables_in_store(os.path.join(d.dir, role, "store.db")),
                    "%s: %s keeps its replay tables in its queue store" % (suite, role))
            c.check(not os.path.exists(os.path.join(d.dir, role, "replay.db")),
                    "%s: %s makes no separate replay file" % (suite, role))
        c.check(os.path.exists(os.path.join(d.dir, "utility", "revoked.db")),
                "%s: the utility keeps its revocation list beside its store" % suite)
    finally:
        rcs = d.stop_all()
        check_audit(c, d, suite)
        logs = d.read_log("portal") + d.read_log("utility")
        c.check(all(rc == 0 for rc in rcs.values()), "%s: both roles stop cleanly %s" % (suite, rcs))
        c.check(not any(t and t in logs for t in tokens), "%s: no token text in the logs" % suite)
        with d.db() as con:
            rows = con.execute("SELECT holder_name, phone, id_no FROM accounts").fetchall()
        leaks = [v for r in rows for v in (r["holder_name"], r["phone"], r["id_no"])
                 if v and len(v) >= 2 and v in logs]
        c.check(not leaks, "%s: no unmasked personal data in the logs (%d found)" % (suite, len(leaks)))
        d.cleanup()


def main():
    args = parse_args()
    c = Checker()
    for suite in ("intl", "gm"):
        run_suite(c, args.gridgate, suite)
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
