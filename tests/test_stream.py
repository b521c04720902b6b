#!/usr/bin/env python3
"""The live stream, GET /v1/stream, from the outside.

Subscribers here are raw sockets that speak HTTP/1.1 themselves and undo
the chunked encoding, so that the bytes ctrd writes are checked exactly:
the headers, the retry hint, each message's id, event and data lines,
keep-alive comments, and ctr.gap notices.  Five daemons, each configured
for what it shows: the main one (framing, filters, resume, ring overflow,
keep-alive, CORS, query errors, metrics, SIGTERM), one with small caps,
one with a small backlog and a reader that never reads, one with a
thousand subscribers served from one selector loop here, and one whose
stream needs a token.
"""

import json
import os
import re
import resource
import selectors
import signal
import socket
import sys
import threading
import time
import traceback
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctrtest import Ctrd, Receiver, Tap, new_key  # noqa: E402

tap = Tap()


ID_RE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
KEEPALIVE = b": keep-alive\n\n"


class Sse:
    """One subscriber on a raw socket: sends the request, then parses
    the status, the headers, the chunked body and the SSE messages in it,
    as bytes arrive."""

    def __init__(self, port, query="", headers=None, src=None,
                 rcvbuf=None, method="GET", path="/v1/stream"):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF,
                                 rcvbuf)
        if src is not None:
            self.sock.bind((src, 0))
        self.sock.settimeout(5)
        self.sock.connect(("127.0.0.1", port))
        head = "%s %s%s HTTP/1.1\r\nHost: 127.0.0.1\r\n" % (
            method, path, "?" + query if query else "")
        for k, v in (headers or {}).items():
            head += "%s: %s\r\n" % (k, v)
        self.sock.sendall((head + "\r\n").encode())
        self.raw = bytearray()
        self.status = None
        self.headers = {}
        self.body = bytearray()
        self.chunked = False
        self.length = None
        self.ended = False	# the final chunk came
        self.eof = False	# the server closed

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _parse(self):
        if self.status is None:
            if b"\r\n\r\n" not in self.raw:
                return
            head, _, rest = bytes(self.raw).partition(b"\r\n\r\n")
            self.raw = bytearray(rest)
            lines = head.decode("latin-1").split("\r\n")
            self.status = int(lines[0].split()[1])
            for ln in lines[1:]:
                k, _, v = ln.partition(":")
                self.headers[k.strip().lower()] = v.strip()
            self.chunked = (self.headers.get("transfer-encoding", "")
                            .lower() == "chunked")
            if "content-length" in self.headers:
                self.length = int(self.headers["content-length"])
        if not self.chunked:
            self.body += self.raw
            del self.raw[:]
            return
        at = 0		# cut what is used once, not chunk by chunk
        while not self.ended:
            eol = self.raw.find(b"\r\n", at)
            if eol == -1:
                break
            size = int(bytes(self.raw[at:eol]).split(b";")[0], 16)
            if size == 0:
                self.ended = True
                break
            if len(self.raw) < eol + 2 + size + 2:
                break
            self.body += self.raw[eol + 2:eol + 2 + size]
            at = eol + 2 + size + 2
        del self.raw[:at]

    def pump(self, timeout):
        """Read what arrives within timeout; False once nothing more
        can come."""
        if self.eof:
            return False
        self.sock.settimeout(max(0.001, timeout))
        try:
            got = self.sock.recv(262144)
        except socket.timeout:
            return True
        except OSError:
            got = b""
        if not got:
            self.eof = True
            return False
        self.raw += got
        self._parse()
        return True

    def wait(self, pred, timeout=5.0):
        end = time.time() + timeout
        while not pred(self):
            left = end - time.time()
            if left <= 0 or not self.pump(min(left, 0.2)):
                return pred(self)
        return True

    def head(self, timeout=5.0):
        self.wait(lambda s: s.status is not None, timeout)
        return self.status

    def json(self, timeout=5.0):
        """The body of a reply with Content-Length, as JSON."""
        self.wait(lambda s: s.status is not None and s.length is not None
                  and len(s.body) >= s.length, timeout)
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def blocks(self):
        """Complete SSE blocks so far, as bytes, each without its blank
        line."""
        return bytes(self.body).split(b"\n\n")[:-1]

    def messages(self):
        """Each complete block as a dict of its fields (comments under
        ":"), keep-alives left out."""
        out = []
        for b in self.blocks():
            m = {}
            for ln in b.decode("utf-8").split("\n"):
                k, _, v = ln.partition(":")
                m[k] = v[1:] if v.startswith(" ") else v
            if set(m) == {""}:
                continue
            out.append(m)
        return out

    def events(self):
        """The event messages: (id, type, envelope)."""
        return [(m.get("id"), m.get("event"), json.loads(m["data"]))
                for m in self.messages() if "id" in m]

    def ids(self):
        return [e[0] for e in self.events()]

    def wait_ids(self, n, timeout=5.0):
        self.wait(lambda s: len(s.ids()) >= n, timeout)
        return self.ids()


def ev(type_="speedrun.split", game="Celeste", category="Any%",
       split="1A", **detail):
    d = {"game": game, "category": category, "split": split}
    d.update(detail)
    return {"type": type_, "source": "livesplit", "detail": d}


def post_ids(d, body, producer="runner"):
    st, _, b = d.post(body, producer=producer)
    if st != 202:
        return None
    return [e.get("id") for e in b["entries"]]


def post_one(d, body, producer="runner"):
    got = post_ids(d, body, producer)
    return got[0] if got else None


def is_error(sse, status, code, field=None):
    b = sse.json()
    return (sse.status == status and
            sse.headers.get("content-type") == "application/json" and
            isinstance(b, dict) and b.get("error", {}).get("code") == code
            and (field is None or b["error"].get("field") == field))


def stops_clean(d, name):
    """SIGTERM; ctrd exits 0 with no sanitizer or libmicrohttpd panic
    in its log."""
    rc = d.stop()
    log = d.read_log()
    bad = [ln for ln in log.splitlines()
           if re.search(r"Sanitizer|runtime error:|suspended connections|"
                        r"left at exit", ln)]
    return tap.ok(rc == 0 and not bad, name, "exit %r\n%s" %
                  (rc, "\n".join(bad[:20])))


def metric(d, name):
    st, _, text = d.request("GET", "/metrics")
    m = re.search(r"^%s (\d+)$" % re.escape(name), text or "", re.M)
    return int(m.group(1)) if m else None


# --- the main daemon ------------------------------------------------------

rcv = Receiver(tap)
main = Ctrd(tap, producers=[{"name": "runner"}, {"name": "relay"}],
            consumers=[{"name": "all", "url": rcv.url}],
            extra="stream:\n  keepalive_s: 1\n  retry_ms: 1500\n"
                  "  ring_events: 6\n"
                  "  cors_origins: [\"https://a.example\"]")
if not tap.ok(main.start(), "the main ctrd starts", main.read_log()):
    tap.finish()
P = main.port

# framing
s = Sse(P)
tap.ok(s.head() == 200 and
       s.headers.get("content-type") == "text/event-stream" and
       s.headers.get("cache-control") == "no-cache" and
       s.headers.get("x-accel-buffering") == "no" and
       s.chunked and "content-length" not in s.headers,
       "GET /v1/stream is 200 text/event-stream, chunked, with "
       "Cache-Control: no-cache and X-Accel-Buffering: no", s.headers)
s.wait(lambda x: len(x.blocks()) >= 1, 2)
tap.eq(s.body, b"retry: 1500\n\n",
       "the stream opens with exactly the retry hint from retry_ms")
tap.ok("access-control-allow-origin" not in s.headers,
       "without an Origin header no CORS header is sent", s.headers)

eid = post_one(main, ev(split="Forsaken City", pace="-0:00:01.500"))
s.wait(lambda x: len(x.blocks()) >= 2, 3)
blk = s.blocks()[1] if len(s.blocks()) > 1 else b""
want_head = ("id: %s\nevent: speedrun.split\ndata: " % eid).encode()
tap.ok(blk.startswith(want_head) and blk.count(b"\n") == 2 and
       s.body.endswith(b"\n\n"),
       "an event is exactly id:, event: and one data: line, then a blank "
       "line", blk)
data = blk[len(want_head):]
env = json.loads(data) if data.startswith(b"{") else None
rcv.wait(1, 3)
hook = rcv.events()[0] if rcv.got else None
tap.ok(env is not None and env == hook and env["id"] == eid and
       env["producer"] == "runner" and
       env["detail"]["pace_ms"] == -1500,
       "data is the whole envelope, the same the webhook consumer got",
       "%r\n%r" % (env, hook))

# keep-alive: nothing for keepalive_s, then a comment
t0 = time.time()
n0 = len(s.blocks())
s.wait(lambda x: x.body.endswith(KEEPALIVE) and len(x.blocks()) > n0, 3)
dt = time.time() - t0
tap.ok(s.body.endswith(KEEPALIVE) and 0.5 <= dt <= 2.0,
       "after keepalive_s of silence a ': keep-alive' comment arrives",
       "%.2f s, %r" % (dt, s.body[-40:]))
t0 = time.time()
s.wait(lambda x: x.body.count(KEEPALIVE) >= 2, 3)
dt = time.time() - t0
tap.ok(s.body.count(KEEPALIVE) >= 2 and 0.7 <= dt <= 1.6,
       "keep-alives repeat every keepalive_s, not faster",
       "%.2f s" % dt)
s.close()

# filters
subs = {
    "all": Sse(P),
    "producer=relay": Sse(P, "producer=relay"),
    "type=speedrun.finish&type=speedrun.reset":
        Sse(P, "type=speedrun.finish&type=speedrun.reset"),
    "game": Sse(P, "game=" + urllib.parse.quote("Super Mario 64")),
    "category": Sse(P, "category=" + urllib.parse.quote("Any%")),
    "producer AND type": Sse(P, "producer=runner&type=speedrun.finish"),
    "pattern": Sse(P, "pattern=" + urllib.parse.quote(json.dumps(
        {"detail": {"split": [{"prefix": "Bob"}],
                    "pace_ms": [{"numeric": ["<", 0]}]}}))),
    "pattern AND producer": Sse(P, "producer=relay&pattern=" +
                                urllib.parse.quote('{"type":'
                                                   '["speedrun.split"]}')),
}
for name, x in subs.items():
    x.head()
plan = [  # (producer, event, labels that want it)
    ("runner", ev(), {"all", "category"}),
    ("relay", ev(game="Super Mario 64", category="16 Star",
                 split="Bob-omb", pace="-0:00:02"),
     {"all", "producer=relay", "game", "pattern", "pattern AND producer"}),
    ("runner", ev("speedrun.finish", game="Super Mario 64"),
     {"all", "type=speedrun.finish&type=speedrun.reset", "game",
      "category", "producer AND type"}),
    ("relay", ev("speedrun.reset", category="Any%", split="Bob-omb",
                 pace="0:00:03"),
     {"all", "producer=relay", "type=speedrun.finish&type=speedrun.reset",
      "category"}),
    ("relay", ev("speedrun.finish"),
     {"all", "producer=relay", "type=speedrun.finish&type=speedrun.reset",
      "category"}),
    ("runner", ev(game="Super Mario 64", category="120 Star",
                  split="Bob-omb 2", pace="-0:00:00.100"),
     {"all", "game", "pattern"}),
]
want = {name: [] for name in subs}
for prod, body, labels in plan:
    i = post_one(main, body, prod)
    for name in labels:
        want[name].append(i)
subs["all"].wait_ids(len(plan))
time.sleep(0.2)		# what the others should get is on its way too
for name, x in subs.items():
    x.pump(0.05)
    tap.eq(x.ids(), want[name],
           "filter %s: exactly the matching events, in order" % name)
    x.close()

# resume
a = Sse(P)
a.head()
first = [post_one(main, ev(split="r%d" % i)) for i in range(3)]
a.wait_ids(3)
a.close()
missed = [post_one(main, ev(split="m%d" % i)) for i in range(2)]
b = Sse(P, headers={"Last-Event-ID": first[-1]})
b.head()
b.wait_ids(2)
tap.ok(b.ids() == missed and
       not any(m.get("event") == "ctr.gap" for m in b.messages()),
       "Last-Event-ID replays exactly the events missed, with no gap "
       "notice", "%r\n%r" % (b.messages(), missed))
live = post_one(main, ev(split="live"))
b.wait_ids(3)
tap.eq(b.ids(), missed + [live], "after the replay, live events follow")
b.close()
c = Sse(P, "last_event_id=" + first[0])
c.head()
c.wait_ids(5)
tap.eq(c.ids(), first[1:] + missed + [live],
       "the last_event_id query parameter resumes the same way")
c.close()
c = Sse(P, "producer=relay&last_event_id=" + first[0])
c.head()
relay_missed = post_one(main, ev(split="relay"), "relay")
c.wait_ids(1)
tap.eq(c.ids(), [relay_missed],
       "a replay passes through the subscriber's filters")
c.close()
c = Sse(P, headers={"Last-Event-ID": relay_missed})
c.head()
c.wait(lambda x: len(x.blocks()) >= 1)
time.sleep(0.2)
c.pump(0.05)
tap.eq(c.body, b"retry: 1500\n\n",
       "resuming from the newest event replays nothing and notes no gap")
c.close()

# ring overflow: ring_events is 6
old = post_one(main, ev(split="old"))
newer = [post_one(main, ev(split="n%d" % i)) for i in range(8)]
g = Sse(P, headers={"Last-Event-ID": old})
g.head()
g.wait_ids(6)
msgs = g.messages()
gap = msgs[1] if len(msgs) > 1 else {}
gdata = json.loads(gap.get("data", "null"))
tap.ok(msgs[0].get("retry") == "1500" and gap.get("event") == "ctr.gap" and
       "id" not in gap,
       "when the ring no longer reaches back to Last-Event-ID, the first "
       "message is event: ctr.gap, with no id:", msgs[:2])
tap.eq(gdata, {"reason": "expired", "last_event_id": old,
               "oldest_id": newer[2], "replayed": 6},
       "ctr.gap says why, from which id, the oldest id kept and how many "
       "events are replayed")
tap.eq(g.ids(), newer[2:], "after the notice, the ring's events follow")
g.close()
g = Sse(P, headers={"Last-Event-ID": "7ZZZZZZZZZZZZZZZZZZZZZZZZZ"})
g.head()
g.wait(lambda x: len(x.messages()) >= 2, 3)
m = g.messages()
tap.eq(json.loads(m[1]["data"]) if len(m) > 1 else None,
       {"reason": "unknown", "last_event_id": "7ZZZZZZZZZZZZZZZZZZZZZZZZZ",
        "oldest_id": newer[2], "replayed": 0},
       "an id this server never issued gets ctr.gap reason unknown and "
       "no replay")
g.close()
g = Sse(P, "last_event_id=nonsense")
g.head()
g.wait(lambda x: len(x.messages()) >= 2, 3)
m = g.messages()
tap.eq(json.loads(m[1]["data"]) if len(m) > 1 else None,
       {"reason": "unknown", "last_event_id": None,
        "oldest_id": newer[2], "replayed": 0},
       "a malformed id gets ctr.gap reason unknown with last_event_id null")
g.close()

# CORS
x = Sse(P, headers={"Origin": "https://a.example"})
x.head()
tap.ok(x.headers.get("access-control-allow-origin") == "https://a.example"
       and x.headers.get("vary") == "Origin",
       "an allowed Origin is echoed in Access-Control-Allow-Origin, with "
       "Vary: Origin", x.headers)
x.close()
x = Sse(P, headers={"Origin": "https://evil.example"})
x.head()
tap.ok(x.status == 200 and "access-control-allow-origin" not in x.headers,
       "another Origin gets no Access-Control-Allow-Origin", x.headers)
x.close()
x = Sse(P, method="OPTIONS", headers={
    "Origin": "https://a.example",
    "Access-Control-Request-Method": "GET",
    "Access-Control-Request-Headers": "last-event-id"})
x.head()
tap.ok(x.status == 204 and
       x.headers.get("access-control-allow-origin") == "https://a.example"
       and "Last-Event-ID" in x.headers.get("access-control-allow-headers",
                                            "") and
       x.headers.get("access-control-allow-methods") == "GET",
       "OPTIONS /v1/stream answers the CORS preflight with 204",
       "%r %r" % (x.status, x.headers))
x.close()

# bad requests
for q, code, field, name in [
        ("produser=runner", "invalid_query", None,
         "an unknown query parameter"),
        ("producer=", "invalid_query", "producer", "an empty value"),
        ("pattern=%7B", "invalid_pattern", "pattern",
         "a pattern that is not JSON"),
        ("pattern=" + urllib.parse.quote('{"type":"speedrun.split"}'),
         "invalid_pattern", "pattern", "a pattern that does not compile"),
        ("pattern=%5B%5D", "invalid_pattern", "pattern",
         "a pattern that is not an object"),
        ("pattern=%7B%7D&pattern=%7B%7D", "invalid_query", "pattern",
         "pattern given twice"),
        ("game=%FF", "invalid_query", "game", "a value that is not UTF-8"),
        # was accepted, and then never matched anything
        ("type=BAD", "invalid_query", "type",
         "a type no event can have")]:
    x = Sse(P, q)
    tap.ok(is_error(x, 400, code, field),
           "%s gets 400 %s%s" % (name, code,
                                 " naming " + field if field else ""),
           "%r %r %r" % (x.status, x.headers, x.body))
    x.close()
x = Sse(P, method="POST", headers={"Content-Length": "0"})
tap.ok(is_error(x, 405, "method_not_allowed") and
       x.headers.get("allow") == "GET, OPTIONS",
       "POST /v1/stream gets 405 with Allow: GET, OPTIONS",
       "%r %r" % (x.status, x.headers))
x.close()

# metrics
o1, o2 = Sse(P), Sse(P)
o1.head()
o2.head()
tap.eq(metric(main, "ctrd_stream_subscribers"), 2,
       "ctrd_stream_subscribers counts the open streams")
sent0 = metric(main, "ctrd_stream_messages_total")
post_one(main, ev(split="count"))
o1.wait_ids(1)
o2.wait_ids(1)
tap.eq(metric(main, "ctrd_stream_messages_total") - (sent0 or 0), 2,
       "ctrd_stream_messages_total counts one event written to two "
       "subscribers as 2")
o1.close()
o2.close()
end = time.time() + 3
while time.time() < end and metric(main, "ctrd_stream_subscribers") != 0:
    time.sleep(0.05)
tap.eq(metric(main, "ctrd_stream_subscribers"), 0,
       "subscribers that hang up leave the gauge at once (not at the "
       "next write)")

# --- caps -----------------------------------------------------------------

capd = Ctrd(tap, extra="stream:\n  max_subscribers: 3\n"
                       "  max_subscribers_per_ip: 2\n  retry_ms: 2500")
if tap.ok(capd.start(), "a ctrd with max_subscribers 3, 2 per address "
          "starts", capd.read_log()):
    C = capd.port
    k1, k2 = Sse(C), Sse(C)
    tap.ok(k1.head() == 200 and k2.head() == 200,
           "two streams from 127.0.0.1 open")
    k3 = Sse(C)
    tap.ok(is_error(k3, 429, "too_many_subscribers") and
           k3.headers.get("retry-after") == "3",
           "a third from the same address gets 429 too_many_subscribers "
           "with Retry-After", "%r %r %r" % (k3.status, k3.headers,
                                             k3.body))
    k3.close()
    k4 = Sse(C, src="127.0.0.2")
    tap.ok(k4.head() == 200, "one from 127.0.0.2 still opens", k4.status)
    k5 = Sse(C, src="127.0.0.3")
    tap.ok(is_error(k5, 503, "too_many_subscribers") and
           k5.headers.get("retry-after") == "3",
           "past max_subscribers the next gets 503 too_many_subscribers "
           "with Retry-After, as JSON",
           "%r %r %r" % (k5.status, k5.headers, k5.body))
    k5.close()
    k1.close()
    ok = False
    end = time.time() + 3
    while time.time() < end and not ok:
        k6 = Sse(C, src="127.0.0.3")
        ok = k6.head() == 200
        if not ok:
            k6.close()
            time.sleep(0.05)
    tap.ok(ok, "a place freed by a client that hung up is taken again")
    for k in (k2, k4, k6):
        k.close()

# --- a stalled reader -----------------------------------------------------

slow = Ctrd(tap, extra="stream:\n  backlog_max: 65536\n"
                       "  ring_events: 0")
if tap.ok(slow.start(), "a ctrd with backlog_max 64 KiB starts",
          slow.read_log()):
    S = slow.port
    stalled = Sse(S, rcvbuf=4096)
    good = Sse(S)
    stalled.head()
    good.head()
    done = threading.Event()
    N = 160

    def reader():
        # only reads: parsing 6 MB after every recv would make this
        # reader slow enough to be dropped too
        while not done.is_set() and good.pump(0.1):
            pass

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    big = "x" * 40000
    posted, statuses = [], []
    t0 = time.time()
    for i in range(N // 4):
        st, _, b_ = slow.post([ev(split="s%d" % (4 * i + j), blob=big)
                               for j in range(4)])
        statuses.append(st)
        if st == 202:
            posted += [e["id"] for e in b_["entries"]]
    post_s = time.time() - t0
    last = ("id: %s\n" % posted[-1]).encode() if posted else b"-"
    end = time.time() + 20
    while time.time() < end and last not in good.body:
        time.sleep(0.1)
    done.set()
    th.join()
    tap.ok(statuses == [202] * (N // 4) and post_s < 10,
           "ingest goes on at speed while a subscriber stalls",
           "%r in %.1f s" % (set(statuses), post_s))
    tap.ok(good.ids() == posted and len(posted) == N,
           "a subscriber that reads gets all %d large events, in order" % N,
           "%d of %d" % (len(good.ids()), len(posted)))
    tap.eq(metric(slow, "ctrd_stream_dropped_total"), 1,
           "the stalled subscriber is dropped once its backlog passes "
           "backlog_max, and counted")
    tap.ok(slow.wait_log(r"stream drop client=127\.0\.0\.1 token=- "
                         r"backlog=\d+: reading too slowly") is not None,
           "the drop is logged with the client and its backlog")
    stalled.wait(lambda x: x.eof, 10)
    tap.ok(stalled.eof and len(stalled.ids()) < N,
           "the stalled subscriber's connection is closed, short of the "
           "end", "%d events, eof %r" % (len(stalled.ids()), stalled.eof))
    tap.eq(metric(slow, "ctrd_stream_subscribers"), 1,
           "the subscriber that reads is still connected")
    stops_clean(slow, "the backlog ctrd stops cleanly")
    stalled.close()
    good.close()

# --- a thousand subscribers -----------------------------------------------

MANY = 1000
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
need = 2 * MANY + 200		# ours and ctrd's, which inherits the limit
if hard != resource.RLIM_INFINITY and hard < need:
    tap.ok(False, "RLIMIT_NOFILE can be raised to %d for %d subscribers"
           % (need, MANY), "hard limit %d" % hard)
else:
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, need), hard))
    many = Ctrd(tap, extra="max_connections: 1500\n"
                           "max_connections_per_ip: 0\n"
                           "stream:\n  max_subscribers: 1200\n"
                           "  max_subscribers_per_ip: 0")
    if tap.ok(many.start(), "a ctrd for %d subscribers starts" % MANY,
              many.read_log()):
        sel = selectors.DefaultSelector()
        conns = []
        req = b"GET /v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        for i in range(MANY):
            sk = socket.socket()
            sk.setblocking(False)
            sk.connect_ex(("127.0.0.1", many.port))
            st = {"sock": sk, "buf": b"", "sent": False}
            conns.append(st)
            sel.register(sk, selectors.EVENT_WRITE, st)

        def run_until(pred, timeout):
            end = time.time() + timeout
            while not pred() and time.time() < end:
                for key, events in sel.select(0.2):
                    st = key.data
                    if events & selectors.EVENT_WRITE and not st["sent"]:
                        try:
                            st["sock"].send(req)
                        except OSError:
                            pass
                        st["sent"] = True
                        sel.modify(st["sock"], selectors.EVENT_READ, st)
                    elif events & selectors.EVENT_READ:
                        try:
                            got = st["sock"].recv(65536)
                        except (BlockingIOError, InterruptedError):
                            continue
                        except OSError:
                            got = b""
                        if not got:
                            sel.unregister(st["sock"])
                            st["closed"] = True
                        st["buf"] += got
            return pred()

        t0 = time.time()
        opened = run_until(lambda: all(b"retry: 3000" in c["buf"]
                                       for c in conns), 20)
        t_open = time.time() - t0
        tap.ok(opened, "%d subscribers get their stream opened (%.1f s)" %
               (MANY, t_open),
               "%d of %d" % (sum(b"retry: 3000" in c["buf"] for c in conns),
                             MANY))
        tap.eq(metric(many, "ctrd_stream_subscribers"), MANY,
               "ctrd counts %d subscribers" % MANY)
        one = post_one(many, ev(split="for everyone"))
        tag = ("id: %s\n" % one).encode()
        t0 = time.time()
        got = run_until(lambda: all(tag in c["buf"] for c in conns), 20)
        tap.ok(got and one is not None,
               "all %d subscribers receive the one event (%.2f s)" %
               (MANY, time.time() - t0),
               "%d of %d" % (sum(tag in c["buf"] for c in conns), MANY))
        stops_clean(many, "ctrd stops cleanly on SIGTERM with %d "
                    "subscribers connected" % MANY)
        for c in conns:
            sel.unregister(c["sock"]) if not c.get("closed") else None
            c["sock"].close()
        sel.close()

# --- tokens ---------------------------------------------------------------

tok, tok2 = new_key(), new_key()
tokd = Ctrd(tap, producers=[{"name": "runner"}, {"name": "relay"}])


def token_conf(tokens):
    lines = ["stream:", "  access: token", "  keepalive_s: 1",
             "  cors_origins: [\"*\"]", "  tokens:"]
    for name, t, prods in tokens:
        lines.append("    - name: %s" % name)
        lines.append("      token_hash: %s" % __import__("ctrtest")
                     .key_hash(tokd.secret, t))
        if prods:
            lines.append("      producers: %s" % json.dumps(prods))
    return "\n".join(lines)


prods = [{"name": "runner"}, {"name": "relay"}]
tokd.write_config(prods, [], token_conf([("overlay", tok, ["runner"]),
                                         ("app", tok2, None)]))
if tap.ok(tokd.start(), "a ctrd whose stream needs a token starts",
          tokd.read_log()):
    T = tokd.port
    x = Sse(T)
    tap.ok(is_error(x, 401, "missing_token") and
           x.headers.get("www-authenticate") == "Bearer",
           "without a token the stream is 401 missing_token with "
           "WWW-Authenticate", "%r %r %r" % (x.status, x.headers, x.body))
    x.close()
    x = Sse(T, headers={"Authorization": "Bearer " + new_key()})
    tap.ok(is_error(x, 401, "unknown_token"),
           "an unknown token is 401 unknown_token", x.body)
    x.close()
    x = Sse(T, "produser=x")
    tap.ok(is_error(x, 401, "missing_token"),
           "without a token even a bad query learns only 401", x.body)
    x.close()
    x = Sse(T, "producer=relay", headers={"Authorization": "Bearer " + tok})
    tap.ok(is_error(x, 403, "token_not_allowed", "producer"),
           "a token limited to runner asking for relay is 403 "
           "token_not_allowed", x.body)
    x.close()
    hdr = Sse(T, headers={"Authorization": "Bearer " + tok})
    qry = Sse(T, "token=" + tok)
    app = Sse(T, "token=" + tok2)
    tap.ok(hdr.head() == 200 and qry.head() == 200 and app.head() == 200,
           "with a token, by Authorization: Bearer or token=, the stream "
           "is 200", "%r %r" % (hdr.status, qry.status))
    tap.eq(hdr.headers.get("access-control-allow-origin"), "*",
           "cors_origins [\"*\"] sends Access-Control-Allow-Origin: *")
    r_id = post_one(tokd, ev(), "runner")
    l_id = post_one(tokd, ev(), "relay")
    app.wait_ids(2)
    qry.wait_ids(1)
    time.sleep(0.1)
    qry.pump(0.05)
    tap.eq((qry.ids(), app.ids()), ([r_id], [r_id, l_id]),
           "a token's producers limit what its streams see")
    log = tokd.read_log()
    tap.ok(tok not in log and tok2 not in log and "token=overlay" in log,
           "the log names the token, never shows it")
    # a reload that drops a token ends its streams
    tokd.write_config(prods, [], token_conf([("app", tok2, None)]))
    tokd.signal(signal.SIGHUP)
    tokd.wait_log(r"reloaded", 5)
    for x in (hdr, qry):
        x.wait(lambda y: y.eof or y.ended, 4)
    tap.ok(hdr.eof and qry.eof, "a reload that removes a token ends the "
           "streams opened with it", "%r %r" % (hdr.eof, qry.eof))
    app.pump(0.05)
    tap.ok(not app.eof, "streams of the tokens kept go on")
    x = Sse(T, "token=" + tok)
    tap.ok(is_error(x, 401, "unknown_token"),
           "the removed token is refused from then on", x.body)
    x.close()
    stops_clean(tokd, "the token ctrd stops cleanly with a stream open")
    hdr.close()
    qry.close()
    app.close()

# --- SIGTERM ends the streams ---------------------------------------------

z = Sse(P)
z.head()
z.wait(lambda x: len(x.blocks()) >= 1)
stops_clean(main, "ctrd exits 0 on SIGTERM with a subscriber connected, "
            "its log clean")
z.wait(lambda x: x.ended or x.eof, 5)
tap.ok(z.ended, "on SIGTERM an open stream is ended with the final chunk",
       "ended %r eof %r" % (z.ended, z.eof))
z.close()

tap.finish()
