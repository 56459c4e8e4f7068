"""test_channel_reload - SIGHUP reloads certificates and keys, losing nothing.

With numbered messages flowing both ways between the two roles, the
utility's certificate and key files are replaced by a new pair from the
same CA and the utility gets SIGHUP: the link comes back with the new
certificate (seen by a probe), the reload is counted, and no message is
lost or duplicated. A SIGHUP with a broken key on the portal side is
refused and counted, and the portal keeps its link with the old material.
"""
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time

import pkitool
from chanlib import ChannelSites, exactly_once
from harness import Checker, parse_args


def served_cert(port, pki):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(os.path.join(pki, "ca.crt"))
    ctx.load_cert_chain(os.path.join(pki, "portal.crt"), os.path.join(pki, "portal.key"))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="utility") as s:
            return s.getpeercert(binary_form=True)


def der(path):
    with open(path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def wait_for(fn, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if fn():
            return True
        time.sleep(0.1)
    return False


def main():
    args = parse_args()
    c = Checker()
    s = ChannelSites(args.gridgate)
    pki = os.path.join(s.dir, "pki")
    n = 3000
    try:
        s.start_both()
        puts = [s.put("portal", "p2u", 0, n, 2000), s.put("utility", "u2p", 0, n, 2000)]
        time.sleep(1.5)
        new_crt, new_key = pkitool.issue(pki, os.path.join(s.dir, "new"), "utility", "utility")
        shutil.copy(new_key, os.path.join(pki, "utility.key"))
        shutil.copy(new_crt, os.path.join(pki, "utility.crt"))
        s.procs["utility"].send_signal(signal.SIGHUP)
        c.check(wait_for(lambda: s.metric("utility", 'gridgate_channel_reloads_total{result="ok"}') == 1),
                "utility counts one successful reload")
        c.check(wait_for(lambda: s.metric("portal", "gridgate_channel_reconnects_total", 0) >= 1),
                "the link is re-established after the reload")
        c.check(served_cert(s.chan_port, pki) == der(new_crt), "the utility now serves the new certificate")

        # The probe authenticated as the portal and so replaced the real link
        # for a moment: let the portal settle again first.
        time.sleep(1.0)
        c.check(wait_for(lambda: s.metric("portal", 'gridgate_channel_state{state="running"}') == 1),
                "portal link running again after the probe")
        portal_key = os.path.join(pki, "portal.key")
        saved = open(portal_key, "rb").read()
        with open(portal_key, "wb") as f:
            f.write(b"-----BEGIN PRIVATE KEY-----\nbroken\n-----END PRIVATE KEY-----\n")
        recon = s.metric("portal", "gridgate_channel_reconnects_total")
        s.procs["portal"].send_signal(signal.SIGHUP)
        c.check(wait_for(lambda: s.metric("portal", 'gridgate_channel_reloads_total{result="failed"}') == 1),
                "portal counts a failed reload of a broken key")
        time.sleep(0.5)
        c.check(s.alive("portal") and s.metric("portal", 'gridgate_channel_state{state="running"}') == 1,
                "after a failed reload the portal keeps running its link")
        c.check(s.metric("portal", "gridgate_channel_reconnects_total") == recon,
                "a failed reload does not touch the link")
        with open(portal_key, "wb") as f:
            f.write(saved)
        s.procs["portal"].send_signal(signal.SIGHUP)
        c.check(wait_for(lambda: s.metric("portal", 'gridgate_channel_reloads_total{result="ok"}') == 1),
                "portal reload with the key restored succeeds")

        for p in puts:
            out, err = p.communicate(timeout=300)
            c.check(p.returncode == 0, "probe put succeeded: %s" % err.strip())
        c.check(s.wait_drained(120), "both transmission queues drain")
        keys = {}
        for role in ("portal", "utility"):
            keys[role] = sorted(k for k in s.metrics(role) if k.startswith("gridgate_channel_"))
            out = subprocess.run([s.gridgate, "admin", "channel", "-c", s.conf(role)],
                                 capture_output=True, text=True, timeout=30)
            print(out.stdout, flush=True)
            c.check(out.returncode == 0 and "running" in out.stdout and "seq out" in out.stdout
                    and "in flight" in out.stdout and "reconnects" in out.stdout,
                    "admin channel -c %s.conf reports the running channel: %s %s" % (
                        role, out.returncode, out.stderr))
        c.check(keys["portal"] == keys["utility"] and len(keys["portal"]) >= 20,
                "both roles serve the same channel series (%d)" % len(keys["portal"]))
        rcs = s.stop_all()
        c.check(all(v == 0 for v in rcs.values()), "both roles stop cleanly: %s" % rcs)
        for tag, role in (("p2u", "utility"), ("u2p", "portal")):
            lost, dup, disorder = exactly_once(s.dump(role), tag, n)
            c.check((lost, dup, disorder) == (0, 0, 0),
                    "%s across reloads: lost=%d duplicated=%d out_of_order=%d" % (tag, lost, dup, disorder))
    finally:
        if c.failed:
            print("--- portal log tail ---\n" + s.read_log("portal")[-3000:])
            print("--- utility log tail ---\n" + s.read_log("utility")[-3000:])
        s.cleanup(keep=args.keep or bool(c.failed))
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
