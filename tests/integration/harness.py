"""harness.py - start gridgate sites as real processes for integration tests.

A Demo is a `gridgate demo init` directory on free loopback ports, with
helpers to start and kill each role, call the portal's HTTP API and read the
marketing database directly. Only the Python standard library is used.
"""
import argparse
import http.client
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time


def parse_args():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gridgate", required=True)
    ap.add_argument("--source", required=True)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--suite", default="intl", choices=["intl", "gm"],
                    help="message security suite of the demo sites")
    return ap.parse_args()


def ports_free(base, n):
    for p in range(base, base + n):
        s = socket.socket()
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", p))
        except OSError:
            return False
        finally:
            s.close()
    return True


def ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
        return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def free_port_base(n=4):
    """n free consecutive ports below the kernel's ephemeral range: a port in
    that range can be taken, while a role is down between a kill and its
    restart, by the local end of any outgoing connection, and the restart
    then fails to listen."""
    lo, hi = ephemeral_range()
    candidates = [(10000, lo - n - 1)] if lo - n - 1 > 10000 else [(hi + 1, 65535 - n)]
    rnd = random.Random()
    for _ in range(500):
        a, b = candidates[0]
        base = rnd.randrange(a, b)
        if ports_free(base, n):
            return base
    raise RuntimeError("no free port range")


class Demo:
    def __init__(self, gridgate, accounts=300, months=6, suite="intl", workdir=None, pg=None):
        """pg: a PostgreSQL conninfo; the utility then reads that database
        (seeded with the same rows as marketing.db, which stays for checks)."""
        self.gridgate = os.path.abspath(gridgate)
        self.dir = workdir or tempfile.mkdtemp(prefix="gg-integ-")
        self.port = free_port_base()
        self.procs = {}
        self.logs = {}
        extra = ["--pg", pg] if pg else []
        out = subprocess.run([self.gridgate, "demo", "init", self.dir, "--port-base", str(self.port),
                              "--accounts", str(accounts), "--months", str(months), "--suite", suite]
                             + extra, capture_output=True, text=True, timeout=300)
        if out.returncode != 0:
            raise RuntimeError("demo init failed: %s %s" % (out.stdout, out.stderr))
        self.db_path = os.path.join(self.dir, "marketing.db")

    # processes -----------------------------------------------------------
    def start(self, role):
        log = open(os.path.join(self.dir, role + ".log"), "ab")
        self.logs[role] = log
        self.procs[role] = subprocess.Popen(
            [self.gridgate, "run", "-c", os.path.join(self.dir, role + ".conf")],
            stdout=log, stderr=log)

    def start_both(self, wait=True):
        self.start("utility")
        self.start("portal")
        if wait:
            self.wait_running()

    def alive(self, role):
        p = self.procs.get(role)
        return p is not None and p.poll() is None

    def kill(self, role, sig=signal.SIGKILL):
        p = self.procs.get(role)
        if p and p.poll() is None:
            p.send_signal(sig)
            p.wait(timeout=30)
        return p.returncode if p else None

    def stop_all(self):
        rcs = {}
        for role in list(self.procs):
            rcs[role] = self.kill(role, signal.SIGTERM)
        for log in self.logs.values():
            log.close()
        return rcs

    def wait_running(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for role in self.procs:
                if not self.alive(role):
                    raise RuntimeError("%s exited: %s" % (role, self.read_log(role)[-2000:]))
            try:
                st, body = self.get("/healthz")
                if st == 200 and body.get("channel") == "running":
                    return
            except (OSError, http.client.HTTPException, ValueError):
                pass
            time.sleep(0.1)
        raise RuntimeError("channel not running after %ss" % timeout)

    def read_log(self, role):
        try:
            with open(os.path.join(self.dir, role + ".log"), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def cleanup(self, keep=False):
        self.stop_all()
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    # http ------------------------------------------------------------------
    def request(self, method, path, body=None, headers=None, raw=None, timeout=30):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        h = dict(headers or {})
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        payload = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        c.close()
        return r.status, payload, hdrs

    def get(self, path, headers=None):
        st, payload, _ = self.request("GET", path, headers=headers)
        return st, json.loads(payload)

    def post(self, path, body, headers=None):
        st, payload, _ = self.request("POST", path, body=body, headers=headers)
        return st, json.loads(payload)

    # marketing database ----------------------------------------------------
    def db(self):
        con = sqlite3.connect("file:%s?mode=ro" % self.db_path, uri=True)
        con.row_factory = sqlite3.Row
        return con

    def bind(self, account_no, user="citizen-1"):
        with self.db() as con:
            a = con.execute("SELECT holder_name, phone FROM accounts WHERE account_no=?",
                            (account_no,)).fetchone()
        return self.post("/api/v1/bindings", {"portal_user_id": user, "account_no": account_no,
                                              "holder_name": a["holder_name"],
                                              "phone_last4": a["phone"][-4:]})


class Checker:
    """Counts checks; a failed check is recorded with its message, not raised."""

    def __init__(self):
        self.passed = 0
        self.failed = []

    def check(self, cond, what):
        if cond:
            self.passed += 1
        else:
            self.failed.append(what)
            print("FAIL:", what, flush=True)
        return cond

    def finish(self):
        print("%d passed, %d failed" % (self.passed, len(self.failed)), flush=True)
        return 0 if not self.failed else 1
