"""test_channel_security - the channel port refuses what it must.

Against a running utility role (channel listening on 127.0.0.1, allow-list
127.0.0.1/32), a Python ssl client probes the port: without a client
certificate, with a certificate from another CA, with an expired
certificate, with a certificate of the right CA naming another site,
offering TLS 1.2 only while 1.3 is required, and from 127.0.0.9. Each must
be refused: the TLS ones in the handshake (counted under
gridgate_channel_refused_total{stage="handshake"}), the last before any TLS
byte is read (stage="allow", the handshake count and the bytes read
unchanged, nothing sent back). A positive control with the portal's own
certificate is accepted (the utility's HELLO arrives), so the probes can
fail; finally the real portal connects and a bill query works.
"""
import os
import socket
import ssl
import subprocess
import sys
import time

import pkitool
from chanlib import ChannelSites
from harness import Checker, parse_args
from test_channel_faults import bill_query_works


def probe(port, ca, cert=None, key=None, tls12_only=False, src="127.0.0.1"):
    """Connect and handshake as a portal would; return ('accepted', n_bytes) when
    application data (the utility's HELLO) arrives, else ('refused', why)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(ca)
    ctx.check_hostname = True
    if tls12_only:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if cert:
        ctx.load_cert_chain(cert, key)
    raw = socket.socket()
    raw.settimeout(5)
    raw.bind((src, 0))
    raw.connect(("127.0.0.1", port))
    try:
        s = ctx.wrap_socket(raw, server_hostname="utility")
    except (ssl.SSLError, OSError) as e:
        raw.close()
        return "refused", "handshake: %s" % e
    try:
        data = s.recv(4096)
        return ("accepted", len(data)) if data else ("refused", "closed after handshake")
    except (ssl.SSLError, OSError) as e:
        return "refused", "after handshake: %s" % e
    finally:
        s.close()


def raw_from(port, src):
    """Connect from src, send a TLS-looking ClientHello start, return bytes read back."""
    s = socket.socket()
    s.settimeout(5)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    got = b""
    try:
        s.sendall(b"\x16\x03\x01\x00\x05hello")
        while True:
            d = s.recv(4096)
            if not d:
                break
            got += d
    except OSError:
        pass
    finally:
        s.close()
    return got


def main():
    args = parse_args()
    c = Checker()
    s = ChannelSites(args.gridgate)
    pki = os.path.join(s.dir, "pki")
    bad = os.path.join(s.dir, "bad")
    try:
        # Material: another CA, an expired certificate and a wrong name from the right CA.
        os.makedirs(bad, exist_ok=True)
        out = subprocess.run([s.gridgate, "pki", "init", os.path.join(bad, "other")],
                             capture_output=True, text=True, timeout=120)
        c.check(out.returncode == 0, "pki init of another CA: %s" % out.stderr)
        other_crt, other_key = (os.path.join(bad, "other", "portal.crt"),
                                os.path.join(bad, "other", "portal.key"))
        exp_crt, exp_key = pkitool.issue(pki, bad, "expired", "portal", start="20200101000000Z",
                                         end="20210101000000Z")
        name_crt, name_key = pkitool.issue(pki, bad, "intruder", "intruder")
        ca = os.path.join(pki, "ca.crt")
        good = (os.path.join(pki, "portal.crt"), os.path.join(pki, "portal.key"))

        s.start("utility")
        deadline = time.time() + 20
        while time.time() < deadline and s.metric("utility", "gridgate_channel_seq_sent") is None:
            time.sleep(0.1)
        port = s.chan_port

        def refused(stage):
            return s.metric("utility", 'gridgate_channel_refused_total{stage="%s"}' % stage, -1)

        cases = [
            ("no client certificate", {}),
            ("certificate from another CA", {"cert": other_crt, "key": other_key}),
            ("expired certificate", {"cert": exp_crt, "key": exp_key}),
            ("certificate naming another site", {"cert": name_crt, "key": name_key}),
            ("TLS 1.2 only", {"cert": good[0], "key": good[1], "tls12_only": True}),
        ]
        for what, kw in cases:
            before = refused("handshake")
            verdict, why = probe(port, ca, **kw)
            time.sleep(0.3)
            c.check(verdict == "refused", "%s: refused (%s)" % (what, why))
            c.check(refused("handshake") == before + 1,
                    "%s: counted as a handshake refusal (%s -> %s)" % (what, before, refused("handshake")))
            print("%s: %s" % (what, why), flush=True)

        before_hs, before_allow = refused("handshake"), refused("allow")
        before_in = s.metric("utility", 'gridgate_channel_bytes_total{direction="in"}')
        got = raw_from(port, "127.0.0.9")
        verdict, why = probe(port, ca, cert=good[0], key=good[1], src="127.0.0.9")
        time.sleep(0.3)
        c.check(got == b"", "127.0.0.9: nothing sent back (%d bytes)" % len(got))
        c.check(verdict == "refused", "127.0.0.9 with a valid certificate: refused (%s)" % why)
        c.check(refused("allow") == before_allow + 2,
                "127.0.0.9: counted as allow-list refusals (%s -> %s)" % (before_allow, refused("allow")))
        c.check(refused("handshake") == before_hs, "127.0.0.9: no handshake was attempted")
        c.check(s.metric("utility", 'gridgate_channel_bytes_total{direction="in"}') == before_in,
                "127.0.0.9: no byte read by the channel")
        log = s.read_log("utility")
        c.check("stage=allow addr=127.0.0.9" in log, "127.0.0.9: the refusal is logged with stage=allow")

        verdict, n = probe(port, ca, cert=good[0], key=good[1])
        c.check(verdict == "accepted", "positive control: the portal's certificate is accepted (%s)" % n)

        c.check(s.alive("utility"), "the utility survives the probes")
        s.start("portal")
        s.wait_running()
        bill_query_works(s, c)
        rcs = s.stop_all()
        c.check(all(v == 0 for v in rcs.values()), "both roles stop cleanly: %s" % rcs)
    finally:
        if c.failed:
            print("--- utility log tail ---\n" + s.read_log("utility")[-4000:])
        s.cleanup(keep=args.keep or bool(c.failed))
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
