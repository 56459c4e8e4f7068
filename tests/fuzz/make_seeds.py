#!/usr/bin/env python3
"""make_seeds.py - write the seed corpus of every fuzz harness.

Run from the source tree: python3 tests/fuzz/make_seeds.py. Seeds are small,
valid inputs (and a few near misses) for each parser, so the fuzzers start
from the real formats (docs/protocol.md, docs/config.md, docs/api.md).
Sealed envelopes that open under the vector keys come from tests/vectors/.
"""
import base64
import hashlib
import hmac
import os
import shutil
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(harness, name, data):
    d = os.path.join(ROOT, harness)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def str16(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack(">H", len(b)) + b


def frame(t, body):
    return struct.pack(">IB", len(body) + 1, t) + body


def frames():
    put("frame", "hello", frame(1, struct.pack(">H", 1) + str16("portal") + struct.pack(">Q", 300)))
    item = struct.pack(">Q", 42) + str16("requests") + struct.pack(">QI", 0x18c00000000, 2) + b"hi"
    put("frame", "batch1", frame(2, struct.pack(">I", 1) + item))
    items = b"".join(struct.pack(">Q", s) + str16("replies") + struct.pack(">QI", 0, 3) + b"abc"
                     for s in (5, 6, 9))
    put("frame", "batch3", frame(2, struct.pack(">I", 3) + items))
    put("frame", "ack", frame(3, struct.pack(">Q", 9)))
    put("frame", "pingpong", frame(4, struct.pack(">Q", 7)) + frame(5, struct.pack(">Q", 7)))
    put("frame", "stream", frame(1, struct.pack(">H", 1) + str16("utility") + struct.pack(">Q", 0))
        + frame(2, struct.pack(">I", 1) + item) + frame(3, struct.pack(">Q", 42)))


def envelopes():
    # version 3: header, nonce, ct||tag, then tree_size leaf_index path_len path sig
    hdr = (b"GGE" + bytes([3, 1, 1, 0]) + bytes(range(16)) + bytes(range(16))
           + str16("bills.query") + str16("portal") + str16("utility")
           + struct.pack(">qqI", 1700000000000, 1700000030000, 0x01020304) + bytes(32))
    body = bytes([12]) + bytes(12) + struct.pack(">I", 16 + 5) + b"hello" + bytes(16)
    sig = struct.pack(">H", 64) + bytes(64)
    put("envelope", "structural_intl", hdr + body + struct.pack(">HHB", 1, 0, 0) + sig)
    put("envelope", "structural_tree5_leaf4",
        hdr + body + struct.pack(">HHB", 5, 4, 1) + bytes(32) + sig)
    put("envelope", "structural_tree5_leaf1",
        hdr + body + struct.pack(">HHB", 5, 1, 3) + bytes(96) + sig)
    vec = os.path.join(os.path.dirname(ROOT), "..", "vectors")
    for suite in sorted(os.listdir(vec)) if os.path.isdir(vec) else []:
        sdir = os.path.join(vec, suite)
        for name in sorted(os.listdir(sdir)) if os.path.isdir(sdir) else []:
            if name.endswith(".env"):
                shutil.copy(os.path.join(sdir, name),
                            os.path.join(ROOT, "envelope", suite + "_" + name))


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def tokens():
    claims = (bytes([1]) + bytes(range(16)) + bytes([6]) + b"user-1" + bytes([8]) + b"10000001"
              + struct.pack(">IQQ", 1, 1700000000000, 1800000000000))
    text = "gg1." + b64(claims)
    mac = hmac.new(b"\x09" * 32, text.encode(), hashlib.sha256).digest()
    put("token", "wrong_key", text + "." + b64(mac))
    put("token", "short", "gg1.AAAA.BBBB")


def configs():
    put("config", "portal", "[site]\nrole = portal\nname = portal\npeer = utility\n\n"
        "[http]\nlisten = 127.0.0.1:8080\nrequest_timeout_ms = 5000\n\n"
        "[channel]\nmode = connect\naddress = 127.0.0.1:7000\npeer_name = utility\n"
        "allow = 127.0.0.1/32, ::1/128\n\n"
        "[security]\nsuite = intl\nsign_key = pki/portal.sign.key\n\n[store]\npath = store.db\n")
    put("config", "utility", "# utility\n[site]\nrole = utility\n[utility]\nworkers = 4\n"
        "[store]\nmax_depth = 100\nlease_ms = 100\n[channel]\ntls12 = yes\n")
    put("config", "bad", "[site\nrole = ???\n[nosuch]\nx = 1\n")


def http():
    put("http", "bind", b"\x02/api/v1/bindings\x00\x00\x00"
        b'{"portal_user_id":"u-1","account_no":"10000001","holder_name":"Li Lei","phone_last4":"1234"}')
    put("http", "bills", b"\x00/api/v1/accounts/10000001/bills\x00from=2024-01&to=2024-12\x00"
        b"gg1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB\x00"
        b'{"status":200,"body":{"bills":[]}}')
    put("http", "static", b"\x00/index.html\x00\x00\x00")
    put("http", "dotdot", b"\x00/%2e%2e/etc/passwd\x00a=%00\x00\x01\x00{")
    put("http", "delete", b"\x03/api/v1/bindings\x00\x00gg1.x.y\x00")
    # Replies in the utility's compact form, which the fast path takes.
    put("http", "reply_usage", b"\x00/\x00\x00\x00"
        b'{"status":200,"body":{"account_no":"10000001","granularity":"month","usage":'
        b'[{"period":"2024-01","kwh":312.5,"peak_kwh":180.25,"valley_kwh":132.25}]}}')
    put("http", "reply_error", b"\x00/\x00\x00\x00"
        b'{"status":404,"body":{"error":{"code":"not_found","message":"no such account"}}}')
    put("http", "reply_nested", b"\x00/\x00\x00\x00"
        b'{"status":200,"body":{"a":[1,-2,3.5e-07,true,false,null,"\\u00e9\\n",{"b":[]}]}}')


if __name__ == "__main__":
    frames()
    envelopes()
    tokens()
    configs()
    http()
