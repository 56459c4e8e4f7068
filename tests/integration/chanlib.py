"""chanlib.py - shared pieces of the channel integration tests.

ChannelSites: a `gridgate demo init` directory whose two roles (real
`gridgate run` processes) are tuned for fast recovery (short heartbeat,
dead time and backoff) and can be pointed through a proxy. Traffic is
driven with the gg_chanprobe tool: it puts numbered messages on each role's
transmission queue (the role's channel sends them) and dumps what arrived
on the other side, so exactly-once and order are counted message by
message. FaultProxy sits between the two roles, forwards bytes and cuts,
delays, duplicates and replays them.
"""
import os
import random
import re
import select
import socket
import subprocess
import threading
import time
import urllib.request

from harness import Demo

PROBE_QUEUE = "probe"


def under_asan():
    return "ASAN_OPTIONS" in os.environ


def set_keys(path, section, keys):
    """Set key = value lines in [section] of an INI config (replace or add)."""
    out, cur, done = [], None, set()
    with open(path) as f:
        lines = f.read().splitlines()
    for line in lines:
        m = re.match(r"\s*\[(\w+)\]", line)
        if m:
            if cur == section:
                out.extend("%s = %s" % (k, v) for k, v in keys.items() if k not in done)
                done.update(keys)
            cur = m.group(1)
        km = re.match(r"\s*(\w+)\s*=", line)
        if cur == section and km and km.group(1) in keys:
            out.append("%s = %s" % (km.group(1), keys[km.group(1)]))
            done.add(km.group(1))
            continue
        out.append(line)
    if cur == section:
        out.extend("%s = %s" % (k, v) for k, v in keys.items() if k not in done)
    elif section not in [re.match(r"\s*\[(\w+)\]", l).group(1) for l in lines if re.match(r"\s*\[(\w+)\]", l)]:
        out.append("[%s]" % section)
        out.extend("%s = %s" % (k, v) for k, v in keys.items())
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


class ChannelSites(Demo):
    """Two roles with fast channel timers; probe traffic both ways."""

    FAST = {"heartbeat_ms": "200", "dead_ms": "2000", "backoff_max_ms": "300"}

    def __init__(self, gridgate, channel_keys=None, **kw):
        super().__init__(gridgate, accounts=kw.pop("accounts", 60), months=kw.pop("months", 2), **kw)
        self.probe = os.path.join(os.path.dirname(self.gridgate), "gg_chanprobe")
        if not os.path.exists(self.probe):
            raise RuntimeError("gg_chanprobe not built next to gridgate")
        self.chan_port = self.port + 1
        self.admin_port = {"portal": self.port + 2, "utility": self.port + 3}
        keys = dict(self.FAST)
        keys.update(channel_keys or {})
        for role in ("portal", "utility"):
            set_keys(self.conf(role), "channel", keys)
            set_keys(self.conf(role), "log", {"level": "info"})

    def conf(self, role):
        return os.path.join(self.dir, role + ".conf")

    def store(self, role):
        return os.path.join(self.dir, role, "store.db")

    def connect_portal_to(self, port):
        set_keys(self.conf("portal"), "channel", {"address": "127.0.0.1:%d" % port})

    # traffic ---------------------------------------------------------------
    def put(self, role, tag, first, count, pause_us=0):
        """Start a probe putting count messages on role's xmit; returns the Popen."""
        return subprocess.Popen([self.probe, "put", self.store(role), PROBE_QUEUE, tag, str(first),
                                 str(count), str(pause_us)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def dump(self, role, queue=PROBE_QUEUE):
        out = subprocess.run([self.probe, "dump", self.store(role), queue], capture_output=True,
                             text=True, timeout=300)
        if out.returncode != 0:
            raise RuntimeError("dump failed: %s" % out.stderr)
        return [l for l in out.stdout.splitlines() if l]

    # metrics ---------------------------------------------------------------
    def metrics(self, role, timeout=5):
        url = "http://127.0.0.1:%d/metrics" % self.admin_port[role]
        with urllib.request.urlopen(url, timeout=timeout) as r:
            text = r.read().decode()
        vals = {}
        for line in text.splitlines():
            if line.startswith("#") or " " not in line:
                continue
            k, v = line.rsplit(" ", 1)
            try:
                vals[k] = float(v)
            except ValueError:
                pass
        return vals

    def metric(self, role, key, default=None):
        try:
            return self.metrics(role).get(key, default)
        except OSError:
            return default

    def xmit_depth(self, role):
        return self.metric(role, 'gridgate_queue_depth{queue="xmit"}')

    def wait_drained(self, timeout):
        """Until both roles run and both xmit queues are empty; True if so."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            ok = all(self.alive(r) for r in ("portal", "utility"))
            ok = ok and all(self.xmit_depth(r) == 0 for r in ("portal", "utility"))
            ok = ok and all(self.metric(r, 'gridgate_channel_state{state="running"}') == 1
                            for r in ("portal", "utility"))
            if ok:
                return True
            time.sleep(0.3)
        return False


def exactly_once(got, tag, n):
    """(lost, duplicated, out_of_order) of the received list against tag 0..n-1."""
    nums = []
    for line in got:
        parts = line.split(" ")
        if len(parts) == 2 and parts[0] == tag:
            nums.append(int(parts[1]))
    seen = set()
    dups = 0
    for x in nums:
        if x in seen:
            dups += 1
        seen.add(x)
    lost = len(set(range(n)) - seen)
    extra = len(seen - set(range(n)))
    disorder = sum(1 for a, b in zip(nums, nums[1:]) if b < a)
    return lost + extra, dups, disorder


class FaultProxy:
    """TCP proxy: forwards bytes between a client and target, and faults.

    Per connection it draws a cut offset in [1, max_cut] bytes (both ways
    counted) and closes both sockets there, sometimes after forwarding part
    of a chunk. While forwarding it may delay a chunk, send a chunk twice,
    or inject a chunk recorded on an earlier connection (a replay of old
    frames). Once `cuts` reaches `target` (or faults() is turned off) it
    forwards cleanly.
    """

    def __init__(self, target_port, rng, max_cut, p_delay=0.02, p_dup=0.003, p_replay=0.003,
                 target=200):
        self.target_port = target_port
        self.rng = rng
        self.max_cut = max_cut
        self.p_delay, self.p_dup, self.p_replay = p_delay, p_dup, p_replay
        self.target = target
        self.cuts = self.delays = self.dups = self.replays = self.conns = 0
        self.enabled = True
        self.old = {0: [], 1: []}   # chunks recorded per direction
        self.lock = threading.Lock()
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    def faulting(self):
        with self.lock:
            return self.enabled and self.cuts < self.target

    def stop(self):
        self.stopping = True
        try:
            self.lsock.close()
        except OSError:
            pass

    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                c.close()
                continue
            with self.lock:
                self.conns += 1
            threading.Thread(target=self._pump, args=(c, u), daemon=True).start()

    def _pump(self, c, u):
        socks = [c, u]
        with self.lock:
            cut_at = self.rng.randint(1, self.max_cut)
        moved = 0
        try:
            while not self.stopping:
                r, _, _ = select.select(socks, [], [], 0.5)
                for s in r:
                    data = s.recv(65536)
                    if not data:
                        return
                    d = 0 if s is c else 1
                    dst = u if s is c else c
                    if not self.faulting():
                        dst.sendall(data)
                        continue
                    with self.lock:
                        roll = self.rng.random()
                        delay = self.rng.uniform(0.001, 0.08)
                    if roll < self.p_delay:
                        with self.lock:
                            self.delays += 1
                        time.sleep(delay)
                    if moved + len(data) >= cut_at:
                        dst.sendall(data[: cut_at - moved])
                        with self.lock:
                            self.cuts += 1
                        return
                    moved += len(data)
                    with self.lock:
                        roll = self.rng.random()
                        old = self.rng.choice(self.old[d]) if self.old[d] else None
                        if len(self.old[d]) < 64:
                            self.old[d].append(data)
                        else:
                            self.old[d][self.rng.randrange(64)] = data
                    if roll < self.p_dup:
                        with self.lock:
                            self.dups += 1
                        dst.sendall(data + data)
                    elif roll < self.p_dup + self.p_replay and old is not None:
                        with self.lock:
                            self.replays += 1
                        dst.sendall(old + data)
                    else:
                        dst.sendall(data)
        except OSError:
            return
        finally:
            for s in socks:
                try:
                    s.close()
                except OSError:
                    pass

    def summary(self):
        return "connections=%d cuts=%d delays=%d duplicates=%d replays=%d" % (
            self.conns, self.cuts, self.delays, self.dups, self.replays)
