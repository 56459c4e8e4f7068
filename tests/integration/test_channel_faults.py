"""test_channel_faults - once and only once through a faulty network.

A fault proxy (chanlib.FaultProxy) sits between the portal role and the
utility role (real processes): it forwards bytes and cuts the connection at
random byte offsets, delays chunks, duplicates chunks and replays chunks
recorded on earlier connections. Numbered messages flow both ways at the
same time; afterwards every message must have arrived exactly once, in
order, on the other side, and both roles must still answer a bill query.

This file runs a scaled-down size in `make test` (GG_CHANNEL_FAULT_N
messages each way and GG_CHANNEL_FAULT_CUTS cuts; defaults 2,000 and 40,
half that under ASan); test_channel_faults_full runs the full 10,000
messages each way with 200 cuts under the `slow` label.
"""
import os
import random
import sys
import time

from chanlib import ChannelSites, FaultProxy, exactly_once, under_asan
from harness import Checker, parse_args


def bill_query_works(s, c):
    with s.db() as con:
        acct = con.execute("SELECT account_no FROM accounts a WHERE status='active' AND EXISTS "
                           "(SELECT 1 FROM bills b WHERE b.account_no=a.account_no) "
                           "ORDER BY account_no LIMIT 1").fetchone()["account_no"]
    st, body = s.bind(acct)
    c.check(st == 201, "bind after the faults returns 201: %s" % st)
    tok = body.get("binding_token", "")
    st, body = s.get("/api/v1/accounts/%s/bills" % acct,
                     headers={"X-Binding-Token": tok})
    c.check(st == 200 and isinstance(body.get("bills"), list),
            "bill query after the faults returns 200 with bills: %s" % st)


def run(n, cuts, seed=None):
    args = parse_args()
    seed = seed if seed is not None else int(os.environ.get("GG_CHANNEL_FAULT_SEED", time.time()))
    print("seed=%d messages_each_way=%d cuts=%d" % (seed, n, cuts), flush=True)
    rng = random.Random(seed)
    c = Checker()
    s = ChannelSites(args.gridgate)
    est = 2 * n * 300 + cuts * 4000
    proxy = FaultProxy(s.chan_port, rng, max_cut=max(4000, 2 * est // cuts), target=cuts,
                       p_dup=0.01, p_replay=0.01)
    s.connect_portal_to(proxy.port)
    t0 = time.time()
    try:
        s.start("utility")
        s.start("portal")
        # Spread the puts over about the time the cuts take (a reconnect is
        # ~0.1-0.3 s), so the cuts land in the middle of the traffic.
        pause_us = int(cuts * 0.2 * 1e6 / n)
        puts = [s.put("portal", "p2u", 0, n, pause_us), s.put("utility", "u2p", 0, n, pause_us)]
        deadline = time.time() + 1500
        died = []
        while time.time() < deadline and proxy.faulting():
            if all(p.poll() is not None for p in puts):
                proxy.max_cut = 3000  # traffic done: keep cutting handshakes and hellos
            for role in ("portal", "utility"):
                if not s.alive(role):
                    died.append(role)
                    s.start(role)
            time.sleep(0.2)
        c.check(not died, "both roles stay up under faults (died: %s)" % died)
        for p in puts:
            out, err = p.communicate(timeout=600)
            c.check(p.returncode == 0, "probe put succeeded: %s" % err.strip())
        c.check(proxy.cuts >= cuts, "the proxy cut the link %d times (wanted %d)" % (proxy.cuts, cuts))
        proxy.enabled = False
        c.check(s.wait_drained(300), "both transmission queues drain after the faults")
        m = {r: s.metrics(r) for r in ("portal", "utility")}
        bill_query_works(s, c)
        print("proxy: %s" % proxy.summary(), flush=True)
        for r in ("portal", "utility"):
            print("%s: reconnects=%d resends_dropped=%d batches_out=%d refused_handshake=%d" % (
                r, m[r].get("gridgate_channel_reconnects_total", -1),
                m[r].get("gridgate_channel_resends_dropped_total", -1),
                m[r].get('gridgate_channel_batches_total{direction="out"}', -1),
                m[r].get('gridgate_channel_refused_total{stage="handshake"}', -1)), flush=True)
        rcs = s.stop_all()
        c.check(all(v == 0 for v in rcs.values()), "both roles stop cleanly: %s" % rcs)
        for tag, role in (("p2u", "utility"), ("u2p", "portal")):
            got = s.dump(role)
            lost, dup, disorder = exactly_once(got, tag, n)
            print("%s: received=%d lost=%d duplicated=%d out_of_order=%d" % (
                tag, len(got), lost, dup, disorder), flush=True)
            c.check(lost == 0, "%s: 0 lost (%d)" % (tag, lost))
            c.check(dup == 0, "%s: 0 duplicated (%d)" % (tag, dup))
            c.check(disorder == 0, "%s: order kept (%d inversions)" % (tag, disorder))
        print("elapsed_s=%.1f" % (time.time() - t0), flush=True)
    finally:
        proxy.stop()
        if c.failed:
            print("--- portal log tail ---\n" + s.read_log("portal")[-3000:])
            print("--- utility log tail ---\n" + s.read_log("utility")[-3000:])
        s.cleanup(keep=args.keep or bool(c.failed))
        if c.failed:
            print("kept", s.dir)
    return c.finish()


if __name__ == "__main__":
    div = 2 if under_asan() else 1
    sys.exit(run(int(os.environ.get("GG_CHANNEL_FAULT_N", 2000 // div)),
                 int(os.environ.get("GG_CHANNEL_FAULT_CUTS", 40 // div))))
