"""webhook.py - a webhook receiver for integration tests (standard library only).

Receiver runs an HTTP server on 127.0.0.1 in a thread and records every POST:
its event id, type, body and whether X-Gridgate-Signature verifies under the
receiver's secret. `mode` decides the answer: "ok" (200), "fail" (500),
"slow" (sleep `slow_s` then 200: the sender's timeout fires first) or "drop"
(close the connection without an answer). This is also the reference receiver
of docs/webhooks.md: verify the signature over the raw body, then drop
repeats by event_id.
"""
import hashlib
import hmac
import http.server
import json
import socket
import threading
import time


def sign(secret, body):
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class Receiver:
    def __init__(self, secret, mode="ok"):
        self.secret = secret
        self.mode = mode
        self.slow_s = 2.0
        self.lock = threading.RLock()
        self.posts = []          # every POST: dict(event_id, type, sig_ok, status)
        self.events = {}         # event_id -> parsed body (first delivery)
        self.bad_signatures = 0
        recv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                sig = self.headers.get("X-Gridgate-Signature", "")
                ok = hmac.compare_digest(sign(recv.secret, body), sig)
                mode = recv.mode
                try:
                    ev = json.loads(body)
                except ValueError:
                    ev = {}
                with recv.lock:
                    recv.posts.append({"event_id": ev.get("event_id"), "type": ev.get("type"),
                                       "sig_ok": ok, "mode": mode, "sig": sig, "raw": body,
                                       "header_id": self.headers.get("X-Gridgate-Event-Id")})
                if mode == "drop":
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                if mode == "slow":
                    time.sleep(recv.slow_s)
                status = 500 if mode == "fail" else 200
                if mode == "slow":
                    status = 503                    # too late: the sender gave up already
                if status == 200 and not ok:
                    status = 401                    # a receiver refuses a bad signature
                if status == 200:
                    with recv.lock:
                        if ev.get("event_id") not in recv.events:
                            recv.events[ev.get("event_id")] = ev
                elif not ok:
                    with recv.lock:
                        recv.bad_signatures += 1
                out = b'{"ok":true}' if status == 200 else b'{"ok":false}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                try:
                    self.wfile.write(out)
                except OSError:
                    pass

        class Server(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass                                # senders that hang up are expected

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return "http://127.0.0.1:%d/gridgate/events" % self.port

    def of_type(self, t):
        with self.lock:
            return [e for e in self.events.values() if e.get("type") == t]

    def wait_for(self, pred, timeout=30.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                if pred(self):
                    return True
            time.sleep(0.05)
        with self.lock:
            return pred(self)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def push_config(url, secret_file, max_attempts=10, backoff_ms=50, backoff_max_ms=400,
                timeout_ms=1000, concurrency=4):
    return ("\n[push]\nwebhook_url = %s\nsecret_file = %s\nmax_attempts = %d\nbackoff_ms = %d\n"
            "backoff_max_ms = %d\ntimeout_ms = %d\nconcurrency = %d\n"
            % (url, secret_file, max_attempts, backoff_ms, backoff_max_ms, timeout_ms, concurrency))
