"""Shared pieces of ctrd's black-box tests.

Each test script starts the real ctrd on a loopback port it picks (the
configuration asks for port 0 and the test reads the bound port from the
log), starts its own webhook receivers, speaks TAP on stdout, and stops
every process it started, by PID, whatever happens.  Keys and signatures
are computed here with Python's own hashlib and hmac, independently of
the daemon's C code.
"""

import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CTRD = os.environ.get("CTRD", "./ctrd")
CTRCTL = os.environ.get("CTRCTL", "./ctrctl")
DATA = os.environ.get("CTR_DATA", os.path.join(os.path.dirname(__file__),
                                               "..", "..", "shared", "data"))

# Hard limit on any one test script, so a hang cannot stall the suite.
SCRIPT_TIMEOUT = int(os.environ.get("CTR_TEST_TIMEOUT", "120"))


class Tap:
    """Minimal TAP output: one line a check, the plan at the end."""

    def __init__(self):
        self.n = 0
        self.failed = 0
        self.cleanups = []
        signal.signal(signal.SIGALRM, self._timeout)
        signal.alarm(SCRIPT_TIMEOUT)
        sys.excepthook = self._crashed

    def _crashed(self, kind, value, tb):
        """An exception in a script is a failed check, and the processes
        it started are still stopped (finish runs the cleanups)."""
        self.ok(False, "the script ran to its end without an exception",
                "".join(traceback.format_exception(kind, value, tb)))
        self.finish()

    def _timeout(self, signum, frame):
        self.ok(False, "script finished within %d s" % SCRIPT_TIMEOUT)
        self.finish()

    def ok(self, cond, name, detail=None):
        self.n += 1
        print("%sok %d - %s" % ("" if cond else "not ", self.n, name))
        if not cond:
            self.failed += 1
            if detail is not None:
                for line in str(detail).splitlines()[:40]:
                    print("#   " + line)
        sys.stdout.flush()
        return cond

    def eq(self, got, want, name):
        return self.ok(got == want, name,
                       "got:  %r\nwant: %r" % (got, want))

    def finish(self):
        for fn in reversed(self.cleanups):
            try:
                fn()
            except Exception as e:  # cleanup must go on
                print("# cleanup: %s" % e)
        self.cleanups = []
        print("1..%d" % self.n)
        sys.stdout.flush()
        os._exit(1 if self.failed else 0)


def new_key():
    raw = secrets.token_bytes(32)
    return "ctr_" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def key_hash(secret, key):
    return hashlib.blake2b(key.encode(), digest_size=32, key=secret).hexdigest()


def new_whsec():
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def verify_signature(whsec, headers, body):
    """Standard Webhooks check, written from the spec."""
    raw = base64.b64decode(whsec[len("whsec_"):])
    msg_id = headers.get("webhook-id")
    ts = headers.get("webhook-timestamp")
    sig = headers.get("webhook-signature")
    if not (msg_id and ts and sig):
        return False
    want = base64.b64encode(hmac.new(
        raw, ("%s.%s." % (msg_id, ts)).encode() + body,
        hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(s, "v1," + want) for s in sig.split(" "))


class _Server(ThreadingHTTPServer):
    # socketserver's default backlog of 5 drops connections when ctrd
    # opens ten at once, and curl then waits a second to retry them.
    request_queue_size = 128


class Receiver:
    """A webhook receiver on 127.0.0.1 with scripted answers.

    statuses: answers in order (the last one repeats); delay: seconds to
    wait before answering; hang: never answer (hold the connection)."""

    def __init__(self, tap, statuses=(200,), delay=0.0, hang=False,
                 headers=None):
        self.statuses = list(statuses)
        self.delay = delay
        self.hang = hang
        self.extra_headers = headers or {}
        self.got = []
        self.cond = threading.Condition()
        self.stopping = threading.Event()
        rcv = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                when = time.time()
                with rcv.cond:
                    idx = len(rcv.got)
                    rcv.got.append({"headers": {k.lower(): v for k, v in
                                                self.headers.items()},
                                    "body": body, "time": when,
                                    "path": self.path})
                    rcv.cond.notify_all()
                if rcv.hang:
                    rcv.stopping.wait(30)
                    return
                if rcv.delay:
                    time.sleep(rcv.delay)
                status = rcv.statuses[min(idx, len(rcv.statuses) - 1)]
                self.send_response(status)
                for k, v in rcv.extra_headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d/hook" % self.port
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)
        self.thread.start()
        tap.cleanups.append(self.stop)

    def wait(self, n, timeout=5.0):
        """Wait until n requests arrived; returns the list so far."""
        end = time.time() + timeout
        with self.cond:
            while len(self.got) < n and time.time() < end:
                self.cond.wait(max(0.0, end - time.time()))
            return list(self.got)

    def events(self):
        return [json.loads(g["body"]) for g in self.got]

    def wait_for_id(self, ev_id, timeout=5.0):
        """The envelope with this id, once it has arrived, or None."""
        end = time.time() + timeout
        while time.time() < end:
            for e in self.events():
                if e.get("id") == ev_id:
                    return e
            self.wait(len(self.got) + 1,
                      max(0.0, min(0.2, end - time.time())))
        return None

    def stop(self):
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()


class Ctrd:
    """The daemon under test, with its own directory, secret and config."""

    def __init__(self, tap, producers=None, consumers=None, extra=""):
        self.tap = tap
        self.dir = tempfile.mkdtemp(prefix="ctrd-test-")
        tap.cleanups.append(lambda: shutil.rmtree(self.dir, True))
        self.secret = secrets.token_bytes(32)
        self.secret_file = os.path.join(self.dir, "secret")
        fd = os.open(self.secret_file, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, self.secret)
        os.close(fd)
        self.conf = os.path.join(self.dir, "ctr.conf")
        self.dead_letter = os.path.join(self.dir, "dead-letter.jsonl")
        self.log = os.path.join(self.dir, "ctrd.log")
        self.keys = {}
        self.proc = None
        self.port = None
        self.write_config(producers or [{"name": "runner"}],
                          consumers or [], extra)

    def write_config(self, producers, consumers, extra=""):
        """producers: dicts with name and any other producer options;
        consumers: dicts written as YAML flow mappings."""
        out = ["listen: \"127.0.0.1:0\"",
               "secret_file: %s" % self.secret_file,
               "dead_letter_file: %s" % self.dead_letter]
        if extra:
            out.append(extra.rstrip("\n"))
        out.append("producers:")
        for p in producers:
            name = p["name"]
            if name not in self.keys:
                self.keys[name] = new_key()
            out.append("  - name: %s" % name)
            out.append("    key_hash: %s" % key_hash(self.secret,
                                                     self.keys[name]))
            for k in sorted(p):
                if k != "name":
                    out.append("    %s: %s" % (k, json.dumps(p[k])))
        out.append("consumers:" if consumers else "consumers: []")
        for c in consumers:
            out.append("  - " + json.dumps(c))
        with open(self.conf, "w") as f:
            f.write("\n".join(out) + "\n")

    def start(self, args=(), prefix=(), wait=10):
        """Start ctrd (under prefix, e.g. valgrind) and wait for it to
        listen; returns False if it did not within wait seconds."""
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen(list(prefix) +
                                     [CTRD, "-f", "-c", self.conf] +
                                     list(args), stdout=logf,
                                     stderr=subprocess.STDOUT)
        logf.close()
        self.tap.cleanups.append(self.kill)
        end = time.time() + wait
        while time.time() < end:
            m = re.search(r"listening on \S+ port (\d+)", self.read_log())
            if m:
                self.port = int(m.group(1))
                break
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        return self.port is not None

    def read_log(self):
        with open(self.log, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_log(self, pattern, timeout=5.0):
        end = time.time() + timeout
        while time.time() < end:
            m = re.search(pattern, self.read_log())
            if m:
                return m
            time.sleep(0.02)
        return None

    def signal(self, sig):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def stop(self, timeout=10.0):
        """SIGTERM and wait; returns the exit status (None if it hung)."""
        if self.proc is None:
            return None
        self.signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def dead_letters(self):
        try:
            with open(self.dead_letter) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def request(self, method, path, body=None, headers=None, timeout=5.0):
        """One HTTP request; returns (status, headers, parsed body)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                          timeout=timeout)
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        raw = resp.read()
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
        conn.close()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode("utf-8", "replace")
        return resp.status, hdrs, parsed

    def post(self, body, producer="runner", path="/v1/events",
             headers=None):
        h = {"Content-Type": "application/json"}
        if producer is not None:
            h["Authorization"] = "Bearer " + self.keys[producer]
        h.update(headers or {})
        return self.request("POST", path, body, h)


def free_port():
    """A loopback port nobody listens on right now."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
