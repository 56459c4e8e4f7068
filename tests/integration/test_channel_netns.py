"""test_channel_netns - one port between two hosts, and only that port.

Builds two network namespaces (the portal's host and the utility's host)
joined by a veth pair with 10.231.x.y addresses, and an nftables firewall
in each that lets nothing between them but TCP to the utility's channel
port (plus loopback and replies). The utility role runs in its namespace
listening on its veth address with allow = the portal's address; the portal
role runs in the other. A bill query through the portal's API (called from
inside the portal's namespace) must work end to end, while a second port
opened on the utility's host stays unreachable from the portal's. Needs
root (CI runs as root); without root it reports a skip (exit 77). The
namespaces are deleted whatever happens.
"""
import json
import os
import shutil
import subprocess
import sys
import time

from chanlib import ChannelSites, set_keys
from harness import Checker, parse_args

CLIENT = r"""
import http.client, json, sys
port, acct, name, last4 = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
def call(method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=30)
    h = dict(headers or {})
    data = None
    if body is not None:
        data = json.dumps(body).encode(); h["Content-Type"] = "application/json"
    c.request(method, path, body=data, headers=h)
    r = c.getresponse()
    return r.status, json.loads(r.read() or b"{}")
st, b = call("POST", "/api/v1/bindings", {"portal_user_id": "ns-user", "account_no": acct,
             "holder_name": name, "phone_last4": last4})
out = {"bind": st}
if st == 201:
    st, b = call("GET", "/api/v1/accounts/%s/bills" % acct, headers={"X-Binding-Token": b["binding_token"]})
    out["bills"] = st
    out["count"] = len(b.get("bills", []))
print(json.dumps(out))
"""


def sh(*cmd, check=True, timeout=30, input=None):
    out = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, input=input)
    if check and out.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(cmd), out.stderr.strip()))
    return out


def main():
    args = parse_args()
    if os.geteuid() != 0:
        print("needs root to create network namespaces: skipped")
        return 77
    for tool in ("ip", "nft"):
        if not shutil.which(tool):
            print("missing %s (scripts/install-deps.sh installs iproute2 and nftables)" % tool)
            return 1
    c = Checker()
    tag = "%d" % (os.getpid() % 100000)
    nsp, nsu = "ggp" + tag, "ggu" + tag
    vp, vu = "ggvp" + tag, "ggvu" + tag
    net = 1 + os.getpid() % 250
    ip_p, ip_u = "10.231.%d.1" % net, "10.231.%d.2" % net
    s = ChannelSites(args.gridgate)
    procs = []
    try:
        sh("ip", "netns", "add", nsp)
        sh("ip", "netns", "add", nsu)
        sh("ip", "link", "add", vp, "type", "veth", "peer", "name", vu)
        sh("ip", "link", "set", vp, "netns", nsp)
        sh("ip", "link", "set", vu, "netns", nsu)
        for ns, dev, addr in ((nsp, vp, ip_p), (nsu, vu, ip_u)):
            sh("ip", "-n", ns, "addr", "add", addr + "/30", "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        port = s.chan_port
        other = port + 10
        # utility host: accept only the channel port from the portal host.
        sh("ip", "netns", "exec", nsu, "nft", "-f", "-", input="""
table inet gg {
  chain input { type filter hook input priority 0; policy drop;
    iif lo accept
    ct state established,related accept
    ip saddr %s tcp dport %d accept
  }
  chain output { type filter hook output priority 0; policy drop;
    oif lo accept
    ct state established,related accept
  }
}
""" % (ip_p, port))
        # portal host: may open only the channel port toward the utility host.
        sh("ip", "netns", "exec", nsp, "nft", "-f", "-", input="""
table inet gg {
  chain input { type filter hook input priority 0; policy drop;
    iif lo accept
    ct state established,related accept
  }
  chain output { type filter hook output priority 0; policy drop;
    oif lo accept
    ct state established,related accept
    ip daddr %s tcp dport %d accept
  }
}
""" % (ip_u, port))
        set_keys(s.conf("utility"), "channel", {"address": "%s:%d" % (ip_u, port), "allow": ip_p + "/32"})
        set_keys(s.conf("portal"), "channel", {"address": "%s:%d" % (ip_u, port)})
        for ns, role in ((nsu, "utility"), (nsp, "portal")):
            log = open(os.path.join(s.dir, role + ".log"), "ab")
            procs.append(subprocess.Popen(["ip", "netns", "exec", ns, s.gridgate, "run", "-c", s.conf(role)],
                                          stdout=log, stderr=log))
        # a second listener on the utility host must stay out of reach
        procs.append(subprocess.Popen(["ip", "netns", "exec", nsu, sys.executable, "-c",
                                       "import socket,time;s=socket.socket();s.bind(('%s',%d));"
                                       "s.listen();time.sleep(120)" % (ip_u, other)]))
        ok = False
        deadline = time.time() + 30
        while time.time() < deadline and not ok:
            time.sleep(0.3)
            out = sh("ip", "netns", "exec", nsp, "python3", "-c",
                     "import urllib.request;print(urllib.request.urlopen("
                     "'http://127.0.0.1:%d/healthz',timeout=2).read().decode())" % s.admin_port["portal"],
                     check=False)
            ok = '"running"' in out.stdout
        c.check(ok, "the channel runs between the namespaces through the firewall")
        with s.db() as con:
            a = con.execute("SELECT a.account_no, holder_name, phone FROM accounts a WHERE status='active' "
                            "AND EXISTS (SELECT 1 FROM bills b WHERE b.account_no=a.account_no) "
                            "ORDER BY account_no LIMIT 1").fetchone()
        out = sh("ip", "netns", "exec", nsp, "python3", "-c", CLIENT, str(s.port), a["account_no"],
                 a["holder_name"], a["phone"][-4:], check=False, timeout=60)
        res = json.loads(out.stdout or "{}")
        c.check(res.get("bind") == 201, "bind from inside the portal's namespace: %s %s" % (res, out.stderr[-300:]))
        c.check(res.get("bills") == 200 and res.get("count", 0) > 0,
                "bill query end to end across the namespaces: %s" % res)
        blocked = sh("ip", "netns", "exec", nsp, "python3", "-c",
                     "import socket;s=socket.socket();s.settimeout(2)\n"
                     "try:\n s.connect(('%s',%d));print('open')\nexcept OSError as e:\n print('blocked')" % (ip_u, other),
                     check=False)
        c.check(blocked.stdout.strip() == "blocked", "another port on the utility host is blocked: %s" % blocked.stdout)
        direct = sh("ip", "netns", "exec", nsu, "python3", "-c",
                    "import socket;s=socket.socket();s.settimeout(2)\n"
                    "try:\n s.connect(('%s',%d));print('open')\nexcept OSError as e:\n print('blocked')" % (ip_p, s.port),
                    check=False)
        c.check(direct.stdout.strip() == "blocked", "the portal host opens nothing toward the utility: %s" % direct.stdout)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
        for ns in (nsp, nsu):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "link", "del", vp], capture_output=True)
        if c.failed:
            print("--- portal log tail ---\n" + s.read_log("portal")[-3000:])
            print("--- utility log tail ---\n" + s.read_log("utility")[-3000:])
        s.cleanup(keep=args.keep or bool(c.failed))
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
