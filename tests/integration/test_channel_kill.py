"""test_channel_kill - once and only once across kill -9 of either role.

Numbered messages flow both ways between the portal role and the utility
role (real processes) while the test kills one of them, chosen at random,
with SIGKILL at a random moment and restarts it at once, again and again.
Afterwards every message must have arrived exactly once and in order on
the other side, and a bill query must still work. Size: GG_CHANNEL_KILL_N
messages each way (default 10,000; 4,000 under ASan) and GG_CHANNEL_KILLS
kills (default 12; 8 under ASan).
"""
import os
import random
import signal
import sys
import time

from chanlib import ChannelSites, exactly_once, under_asan
from harness import Checker, parse_args
from test_channel_faults import bill_query_works


def main():
    args = parse_args()
    asan = under_asan()
    n = int(os.environ.get("GG_CHANNEL_KILL_N", 4000 if asan else 10000))
    kills = int(os.environ.get("GG_CHANNEL_KILLS", 8 if asan else 12))
    seed = int(os.environ.get("GG_CHANNEL_KILL_SEED", time.time()))
    rng = random.Random(seed)
    print("seed=%d messages_each_way=%d kills=%d" % (seed, n, kills), flush=True)
    c = Checker()
    s = ChannelSites(args.gridgate)
    t0 = time.time()
    done = {"portal": 0, "utility": 0}
    try:
        s.start_both()
        # Spread the puts over roughly the time the kills take.
        pause_us = int(kills * 1.2 * 1e6 / n)
        puts = [s.put("portal", "p2u", 0, n, pause_us), s.put("utility", "u2p", 0, n, pause_us)]
        for i in range(kills):
            time.sleep(rng.uniform(0.2, 1.5))
            role = rng.choice(["portal", "utility"])
            s.kill(role, signal.SIGKILL)
            done[role] += 1
            time.sleep(rng.uniform(0.0, 0.3))
            s.start(role)
        for p in puts:
            out, err = p.communicate(timeout=900)
            c.check(p.returncode == 0, "probe put succeeded: %s" % err.strip())
        c.check(s.wait_drained(300), "both transmission queues drain after the kills")
        m = {r: s.metrics(r) for r in ("portal", "utility")}
        bill_query_works(s, c)
        rcs = s.stop_all()
        c.check(all(v == 0 for v in rcs.values()), "both roles stop cleanly: %s" % rcs)
        print("kills: portal=%d utility=%d" % (done["portal"], done["utility"]), flush=True)
        for r in ("portal", "utility"):
            print("%s (since its last start): reconnects=%d seq_out=%d seq_in=%d" % (
                r, m[r].get("gridgate_channel_reconnects_total", -1),
                m[r].get('gridgate_channel_seq{direction="out"}', -1),
                m[r].get('gridgate_channel_seq{direction="in"}', -1)), flush=True)
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
        if c.failed:
            print("--- portal log tail ---\n" + s.read_log("portal")[-3000:])
            print("--- utility log tail ---\n" + s.read_log("utility")[-3000:])
        s.cleanup(keep=args.keep or bool(c.failed))
        if c.failed:
            print("kept", s.dir)
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
