"""A stand-in for Discord's execute-webhook endpoint, on loopback, for tests.

DiscordStandin(tap, limit=5, window=2.0) listens on 127.0.0.1 (a port the
kernel picks) and serves one webhook at .url; add_webhook makes more on the
same server, each with its own rate-limit bucket.  It answers the way
Discord documents:

- Every reply carries X-RateLimit-Limit, -Remaining, -Reset (epoch
  seconds), -Reset-After (seconds, fractional) and -Bucket.  A bucket
  allows `limit` requests per `window` seconds, the window starting with
  the first request after the last one ended.  A request that finds
  nothing remaining gets 429, {"message": "You are being rate limited.",
  "retry_after": <seconds>, "global": false}, Retry-After in whole seconds
  (rounded up) and X-RateLimit-Scope, and is recorded as a violation.
- A body outside the documented limits gets 400 with Discord's error JSON
  (code 50035 "Invalid Form Body" and an "errors" tree naming the field,
  50109 for JSON that does not parse, 50006 for an empty message).
  Checked: Content-Type application/json, ?wait=true (which this
  stand-in requires: ctrd always asks for the message back), content at
  most 2000, at most 10 embeds, title 256, description 4096, 25 fields
  with names 1 to 256 and values 1 to 1024, footer 2048, author 256, the
  6000 total over all embeds, username 1 to 80, colour and timestamp
  well-formed.  Lengths count UTF-16 code units, as Discord does.
- Otherwise 200 with the created message, as wait=true returns it.

Every request is recorded, in arrival order, as a Request (see below).
Rate limiting comes first, as at Discord: a request refused for its body
still used its slot.

`grace` (seconds) forgives a request that arrives just before its
bucket's reset: clients measure time in whole milliseconds and Discord
itself is not that exact.  force(status, ...) makes the next requests get
those statuses (after the rate limit), for testing retries.

Run this file to test the stand-in itself (TAP).
"""

import hashlib
import itertools
import json
import math
import re
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

CONTENT_MAX = 2000
EMBEDS_MAX = 10
TITLE_MAX = 256
DESCRIPTION_MAX = 4096
FIELDS_MAX = 25
FIELD_NAME_MAX = 256
FIELD_VALUE_MAX = 1024
FOOTER_MAX = 2048
AUTHOR_MAX = 256
TOTAL_MAX = 6000
USERNAME_MAX = 80

PATH_RE = re.compile(r"^/api(?:/v\d+)?/webhooks/([0-9]+)/([^/]+)$")
_snowflakes = itertools.count(1300000000000000000)


def units(s):
    """Length as Discord counts it: UTF-16 code units."""
    return len(s.encode("utf-16-le", "surrogatepass")) // 2


class Request:
    """One request as it arrived, and what the stand-in answered.

    time, mono: when it arrived (wall clock, monotonic); webhook: the id in
    its path; query: parsed query; headers: lower-cased names; body: the
    raw bytes; json: the parsed body or None; status: the answer; error:
    why it was refused (None when 200); violated: sent while the bucket
    had nothing remaining, before its reset; remaining, reset_after: the
    bucket as the reply said; reply: the JSON answered."""

    def __init__(self, **kw):
        self.__dict__.update(kw)

    def __repr__(self):
        return "<Request %s %d %s%s>" % (self.webhook, self.status,
                                         self.error or "ok",
                                         " VIOLATED" if self.violated
                                         else "")


class _Bucket:
    def __init__(self, webhook_id):
        self.remaining = 0
        self.reset_at = None        # monotonic; None: no window open
        self.name = hashlib.sha1(("webhook" + webhook_id).encode()
                                 ).hexdigest()[:32]


class _Invalid(Exception):
    """A body Discord would refuse: status and the error JSON."""

    def __init__(self, status, reply, why):
        super().__init__(why)
        self.status = status
        self.reply = reply
        self.why = why


def _form_error(path, code, message):
    """Discord's 50035 shape: {"errors": {"embeds": {"0": {"title":
    {"_errors": [...]}}}}} for path ("embeds", 0, "title")."""
    tree = {"_errors": [{"code": code, "message": message}]}
    for part in reversed(path):
        tree = {str(part): tree}
    return _Invalid(400, {"code": 50035, "message": "Invalid Form Body",
                          "errors": tree},
                    "%s: %s" % (".".join(str(p) for p in path), message))


def _check_text(value, path, limit, required=False):
    """A string of at most limit units (and at least 1 if required)."""
    if value is None and not required:
        return 0
    if not isinstance(value, str):
        raise _form_error(path, "STRING_TYPE_CONVERT",
                          "Could not interpret \"%r\" as string." % value)
    n = units(value)
    if required and not value.strip():
        raise _form_error(path, "BASE_TYPE_REQUIRED",
                          "This field is required")
    if n > limit:
        raise _form_error(path, "BASE_TYPE_MAX_LENGTH",
                          "Must be %d or fewer in length." % limit)
    return n


def _check_embed(e, i):
    """One embed; returns the units it counts toward the total."""
    p = ("embeds", i)
    if not isinstance(e, dict):
        raise _form_error(p, "DICT_TYPE_CONVERT", "Only dictionaries may "
                          "be used in a DictType")
    total = _check_text(e.get("title"), p + ("title",), TITLE_MAX)
    total += _check_text(e.get("description"), p + ("description",),
                         DESCRIPTION_MAX)
    for key, sub, limit in (("author", "name", AUTHOR_MAX),
                            ("footer", "text", FOOTER_MAX)):
        if key in e:
            if not isinstance(e[key], dict):
                raise _form_error(p + (key,), "DICT_TYPE_CONVERT",
                                  "Only dictionaries may be used in a "
                                  "DictType")
            total += _check_text(e[key].get(sub), p + (key, sub), limit,
                                 required=True)
    fields = e.get("fields", [])
    if not isinstance(fields, list):
        raise _form_error(p + ("fields",), "LIST_TYPE_CONVERT",
                          "Only iterables may be used in a ListType")
    if len(fields) > FIELDS_MAX:
        raise _form_error(p + ("fields",), "BASE_TYPE_MAX_LENGTH",
                          "Must be %d or fewer in length." % FIELDS_MAX)
    for j, f in enumerate(fields):
        fp = p + ("fields", j)
        if not isinstance(f, dict):
            raise _form_error(fp, "DICT_TYPE_CONVERT", "Only dictionaries "
                              "may be used in a DictType")
        total += _check_text(f.get("name"), fp + ("name",),
                             FIELD_NAME_MAX, required=True)
        total += _check_text(f.get("value"), fp + ("value",),
                             FIELD_VALUE_MAX, required=True)
        if "inline" in f and not isinstance(f["inline"], bool):
            raise _form_error(fp + ("inline",), "BASE_TYPE_BAD_BOOLEAN",
                              "Must be either true or false.")
    if "color" in e:
        c = e["color"]
        if isinstance(c, bool) or not isinstance(c, int) or \
                not 0 <= c <= 0xFFFFFF:
            raise _form_error(p + ("color",), "NUMBER_TYPE_MAX",
                              "int value should be <= 16777215 and >= 0.")
    if "timestamp" in e:
        ts = e["timestamp"]
        try:
            if not isinstance(ts, str):
                raise ValueError
            datetime.fromisoformat(ts.replace("Z", "+00:00"))
        except ValueError:
            raise _form_error(p + ("timestamp",), "DATE_TIME_TYPE_PARSE",
                              "Could not parse %s. Should be ISO8601."
                              % ts)
    return total


def check_body(headers, raw):
    """Check a request body the way Discord would; returns the parsed
    body or raises _Invalid."""
    ctype = headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise _Invalid(400, {"code": 50006, "message":
                             "Cannot send an empty message"},
                       "Content-Type %r, not application/json" % ctype)
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _Invalid(400, {"code": 50109, "message": "The request body "
                             "contains invalid JSON."}, "invalid JSON")
    if not isinstance(body, dict):
        raise _Invalid(400, {"code": 50109, "message": "The request body "
                             "contains invalid JSON."}, "not an object")
    _check_text(body.get("content"), ("content",), CONTENT_MAX)
    if "username" in body:
        _check_text(body["username"], ("username",), USERNAME_MAX,
                    required=True)
    embeds = body.get("embeds", [])
    if not isinstance(embeds, list):
        raise _form_error(("embeds",), "LIST_TYPE_CONVERT",
                          "Only iterables may be used in a ListType")
    if len(embeds) > EMBEDS_MAX:
        raise _form_error(("embeds",), "BASE_TYPE_MAX_LENGTH",
                          "Must be %d or fewer in length." % EMBEDS_MAX)
    total = sum(_check_embed(e, i) for i, e in enumerate(embeds))
    if total > TOTAL_MAX:
        raise _form_error(("embeds",), "MAX_EMBED_SIZE_EXCEEDED",
                          "Embed size exceeds maximum size of %d"
                          % TOTAL_MAX)
    am = body.get("allowed_mentions")
    if am is not None and (not isinstance(am, dict) or
                           not isinstance(am.get("parse", []), list) or
                           not set(am.get("parse", [])) <=
                           {"users", "roles", "everyone"}):
        raise _form_error(("allowed_mentions",), "MESSAGE_ALLOWED_MENTIONS"
                          "_PARSE_EXCLUSIVE", "allowed_mentions malformed")
    if not (body.get("content") or "").strip() and not embeds:
        raise _Invalid(400, {"code": 50006, "message":
                             "Cannot send an empty message"},
                       "empty message")
    return body


def _ceil_ms(seconds):
    """Seconds rounded up to the millisecond, so a client that waits
    exactly as long as it is told is never early."""
    return math.ceil(round(seconds * 1000, 6)) / 1000


class DiscordStandin:
    def __init__(self, tap, limit=5, window=2.0, webhook_id="123",
                 token="tok-secret", grace=0.002):
        self.limit = limit
        self.window = window
        self.grace = grace
        self.requests = []
        self.cond = threading.Condition()
        self.webhooks = {}          # id -> token
        self.buckets = {}           # id -> _Bucket
        self.forced = []
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _body(self):
                if "chunked" in self.headers.get("Transfer-Encoding",
                                                 "").lower():
                    out = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0],
                                   16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n",
                                                                b"\n", b""):
                                pass
                            return out
                        out += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get(
                    "Content-Length", "0")))

            def _answer(self, status, reply, headers=()):
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                raw = self._body()
                status, reply, headers = standin._handle(
                    self.path, {k.lower(): v for k, v in
                                self.headers.items()}, raw)
                self._answer(status, reply, headers)

            def do_GET(self):
                self._body()
                self._answer(405, {"message": "405: Method Not Allowed",
                                   "code": 0})

            do_PUT = do_DELETE = do_PATCH = do_GET

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = self.add_webhook(webhook_id, token)
        # A short poll so that stop() returns quickly.
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       args=(0.05,), daemon=True)
        self.thread.start()
        tap.cleanups.append(self.stop)

    def add_webhook(self, webhook_id, token):
        """Another webhook on this server, with its own bucket; returns
        its URL."""
        with self.cond:
            self.webhooks[str(webhook_id)] = token
            self.buckets[str(webhook_id)] = _Bucket(str(webhook_id))
        return "http://127.0.0.1:%d/api/webhooks/%s/%s" % (
            self.port, webhook_id, token)

    def force(self, *statuses):
        """Answer the next requests (that pass the rate limit) with these
        statuses instead, e.g. force(500, 503)."""
        with self.cond:
            self.forced.extend(statuses)

    def _take(self, webhook_id, now):
        """Spend one request from the bucket; returns (allowed,
        remaining, reset_after, bucket name)."""
        b = self.buckets[webhook_id]
        if b.reset_at is None or now + self.grace >= b.reset_at:
            b.remaining = self.limit
            b.reset_at = now + self.window
        if b.remaining == 0:
            return False, 0, b.reset_at - now, b.name
        b.remaining -= 1
        return True, b.remaining, b.reset_at - now, b.name

    def _handle(self, path, headers, raw):
        url = urlsplit(path)
        query = {k: v[-1] for k, v in parse_qs(url.query,
                                               keep_blank_values=True)
                 .items()}
        m = PATH_RE.match(url.path)
        with self.cond:
            now = time.monotonic()
            rec = Request(time=time.time(), mono=now, path=url.path,
                          query=query, headers=headers, body=raw,
                          json=None, webhook=m.group(1) if m else None,
                          status=0, error=None, violated=False,
                          remaining=None, reset_after=None, reply=None)
            status, reply, hdrs = self._answer_for(rec, m, query, headers,
                                                   raw, now)
            rec.status, rec.reply = status, reply
            self.requests.append(rec)
            self.cond.notify_all()
        return status, reply, hdrs

    def _answer_for(self, rec, m, query, headers, raw, now):
        if m is None:
            rec.error = "no such path"
            return 404, {"message": "404: Not Found", "code": 0}, []
        wid, token = m.groups()
        if wid not in self.webhooks:
            rec.error = "unknown webhook"
            return 404, {"message": "Unknown Webhook", "code": 10015}, []
        if token != self.webhooks[wid]:
            rec.error = "invalid token"
            return 401, {"message": "Invalid Webhook Token",
                         "code": 50027}, []

        allowed, remaining, reset_after, bucket = self._take(wid, now)
        rec.remaining, rec.reset_after = remaining, reset_after
        hdrs = [("X-RateLimit-Limit", str(self.limit)),
                ("X-RateLimit-Remaining", str(remaining)),
                ("X-RateLimit-Reset", "%.3f" % (time.time() +
                                                 _ceil_ms(reset_after))),
                ("X-RateLimit-Reset-After", "%.3f" % _ceil_ms(reset_after)),
                ("X-RateLimit-Bucket", bucket)]
        if not allowed:
            rec.violated = True
            rec.error = "rate limited"
            retry = _ceil_ms(reset_after)
            hdrs += [("Retry-After", str(math.ceil(retry))),
                     ("X-RateLimit-Scope", "user")]
            return 429, {"message": "You are being rate limited.",
                         "retry_after": retry, "global": False}, hdrs

        if self.forced:
            status = self.forced.pop(0)
            rec.error = "forced %d" % status
            return status, {"message": "forced by the test", "code": 0}, \
                hdrs
        try:
            if query.get("wait") != "true":
                raise _Invalid(400, {"code": 50035, "message":
                                     "Invalid Form Body", "errors": {}},
                               "no ?wait=true")
            if "thread_id" in query and not query["thread_id"].isdigit():
                raise _form_error(("thread_id",), "NUMBER_TYPE_COERCE",
                                  "Value \"%s\" is not snowflake."
                                  % query["thread_id"])
            body = check_body(headers, raw)
        except _Invalid as e:
            rec.error = e.why
            return e.status, e.reply, hdrs
        rec.json = body
        return 200, self._message(wid, query, body), hdrs

    def _message(self, wid, query, body):
        """The message Discord returns for wait=true."""
        return {"id": str(next(_snowflakes)), "type": 0,
                "content": body.get("content", ""),
                "channel_id": query.get("thread_id", "1200000000000000001"),
                "author": {"bot": True, "id": wid,
                           "username": body.get("username", "Captain Hook"),
                           "avatar": None, "discriminator": "0000"},
                "attachments": [], "embeds": body.get("embeds", []),
                "mentions": [], "mention_roles": [], "pinned": False,
                "mention_everyone": False, "tts": False,
                "timestamp": datetime.now(timezone.utc).isoformat(),
                "edited_timestamp": None, "flags": 0, "components": [],
                "webhook_id": wid}

    # What arrived, for assertions.

    def wait(self, n, timeout=5.0, accepted=False):
        """Wait until n requests (n accepted ones, if accepted) arrived;
        returns those so far."""
        end = time.time() + timeout
        with self.cond:
            while True:
                got = self.accepted_requests() if accepted else \
                    list(self.requests)
                if len(got) >= n or time.time() >= end:
                    return got
                self.cond.wait(max(0.0, end - time.time()))

    def accepted_requests(self):
        with self.cond:
            return [r for r in self.requests if r.status == 200]

    def messages(self):
        """The bodies of the accepted messages, in order."""
        return [r.json for r in self.accepted_requests()]

    def embeds(self):
        """Every embed of every accepted message, in order."""
        return [e for m in self.messages() for e in m.get("embeds", [])]

    def violations(self):
        """Requests sent while the bucket had nothing remaining."""
        with self.cond:
            return [r for r in self.requests if r.violated]

    def refused(self):
        """Requests answered 400 for their body, with the reason."""
        with self.cond:
            return [r for r in self.requests if r.status == 400]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------------
# Self-test


def _selftest():
    import http.client
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from ctrtest import Tap

    tap = Tap()

    def post(url, body, ctype="application/json", query="?wait=true"):
        u = urlsplit(url + query)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
        data = body if isinstance(body, bytes) else \
            json.dumps(body).encode()
        conn.request("POST", u.path + "?" + u.query, body=data,
                     headers={"Content-Type": ctype})
        resp = conn.getresponse()
        raw = resp.read()
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
        conn.close()
        return resp.status, hdrs, json.loads(raw) if raw else None

    def embed(**kw):
        e = {"title": "Split: BoB", "color": 0x2ECC71,
             "footer": {"text": "Catch The Run"},
             "timestamp": "2026-12-03T21:48:17.123Z"}
        e.update(kw)
        return e

    good = {"embeds": [embed()], "allowed_mentions": {"parse": []}}

    # Rate limit: 3 per 0.4 s.
    s = DiscordStandin(tap, limit=3, window=0.4)
    tap.ok(re.match(r"^http://127\.0\.0\.1:\d+/api/webhooks/123/"
                    r"tok-secret$", s.url), "url names the webhook")
    st, h, body = post(s.url, good)
    tap.eq(st, 200, "a good message is accepted")
    tap.eq(body["embeds"], good["embeds"], "the message is echoed back")
    tap.eq((h.get("x-ratelimit-limit"), h.get("x-ratelimit-remaining")),
           ("3", "2"), "limit and remaining on the reply")
    tap.ok(0 < float(h["x-ratelimit-reset-after"]) <= 0.4 and
           "x-ratelimit-reset" in h and "x-ratelimit-bucket" in h,
           "reset, reset-after and bucket on the reply")
    post(s.url, good)
    st, h, _ = post(s.url, good)
    tap.eq((st, h["x-ratelimit-remaining"]), (200, "0"),
           "the last request of the window says 0 remaining")
    st, h, body = post(s.url, good)
    tap.eq(st, 429, "a request with 0 remaining gets 429")
    tap.ok(body["message"] == "You are being rate limited." and
           body["global"] is False and
           0 < body["retry_after"] <= 0.4, "429 body as Discord's",
           body)
    tap.eq(h.get("retry-after"), "1", "Retry-After in whole seconds")
    tap.eq([r.violated for r in s.requests], [False] * 3 + [True],
           "only the request over the limit is a violation")
    time.sleep(body["retry_after"])
    st, h, _ = post(s.url, good)
    tap.eq(st, 200, "after retry_after the bucket is full again")
    tap.eq(h["x-ratelimit-remaining"], "2", "a new window, one spent")
    tap.eq(len(s.violations()), 1, "waiting as told is no violation")

    other = s.add_webhook("456", "other-tok")
    for _ in range(3):
        st, _, _ = post(other, good)
    tap.eq(st, 200, "another webhook has its own bucket")
    st, _, body = post(s.url.replace("tok-secret", "nope"), good)
    tap.eq((st, body["code"]), (401, 50027), "wrong token: 401")
    st, _, body = post(s.url.replace("/123/", "/999/"), good)
    tap.eq((st, body["code"]), (404, 10015), "unknown webhook: 404")

    s.force(503)
    time.sleep(0.45)
    st, _, _ = post(s.url, good)
    tap.eq(st, 503, "force: the next request gets the forced status")
    st, _, _ = post(s.url, good)
    tap.eq(st, 200, "force is used up")

    # Limits, with a bucket too large to matter.
    v = DiscordStandin(tap, limit=1000, window=60)

    def refused(body, name, where=None, **kw):
        st, _, reply = post(v.url, body, **kw)
        ok = st == 400
        if ok and where is not None:
            node = reply.get("errors", {})
            for part in where:
                node = node.get(str(part), {}) if isinstance(node, dict) \
                    else {}
            ok = "_errors" in node
        tap.ok(ok, "refused: " + name, (st, reply))

    def accepted(body, name):
        st, _, reply = post(v.url, body)
        tap.ok(st == 200, "accepted: " + name, (st, reply))

    grin = "\U0001F600"
    accepted({"content": "x" * 2000}, "content of 2000")
    refused({"content": "x" * 2001}, "content of 2001", ["content"])
    accepted({"embeds": [embed()] * 10}, "10 embeds")
    refused({"embeds": [embed()] * 11}, "11 embeds", ["embeds"])
    accepted({"embeds": [embed(title=grin * 128)]},
             "title of 128 emoji (256 units)")
    refused({"embeds": [embed(title="a" + grin * 128)]},
            "title of 257 units, emoji counting two",
            ["embeds", 0, "title"])
    refused({"embeds": [embed(description="d" * 4097)]},
            "description of 4097", ["embeds", 0, "description"])
    f = {"name": "n", "value": "v", "inline": True}
    accepted({"embeds": [embed(fields=[f] * 25)]}, "25 fields")
    refused({"embeds": [embed(fields=[f] * 26)]}, "26 fields",
            ["embeds", 0, "fields"])
    refused({"embeds": [embed(fields=[{"name": "n", "value": ""}])]},
            "empty field value", ["embeds", 0, "fields", 0, "value"])
    refused({"embeds": [embed(fields=[{"name": "n", "value": "v" * 1025}])]},
            "field value of 1025", ["embeds", 0, "fields", 0, "value"])
    refused({"embeds": [embed(fields=[{"name": "n" * 257, "value": "v"}])]},
            "field name of 257", ["embeds", 0, "fields", 0, "name"])
    refused({"embeds": [embed(footer={"text": "f" * 2049})]},
            "footer of 2049", ["embeds", 0, "footer", "text"])
    refused({"embeds": [embed(author={"name": "a" * 257})]},
            "author of 257", ["embeds", 0, "author", "name"])
    big = embed(title="t" * 100, description="d" * 500)   # 600 + 13 units
    accepted({"embeds": [embed(title="t" * 256, description="d" * 3731)]
              + [embed(title="t", description="d" * 1986)]},
             "embeds totalling exactly 6000")
    refused({"embeds": [big] * 10}, "ten embeds totalling 6130",
            ["embeds"])
    refused({"embeds": [embed(color=0x1000000)]}, "colour too large",
            ["embeds", 0, "color"])
    refused({"embeds": [embed(timestamp="yesterday")]}, "bad timestamp",
            ["embeds", 0, "timestamp"])
    refused({"username": "u" * 81, "content": "x"}, "username of 81",
            ["username"])
    refused({"embeds": []}, "empty message")
    refused(b"{\"embeds\": [", "invalid JSON")
    refused(good, "text/plain body", ctype="text/plain")
    refused(good, "no ?wait=true", query="")
    accepted(good, "good message after refusals")
    tap.ok(all(r.error for r in v.refused()) and not v.violations(),
           "refusals recorded with their reason, none a violation")
    tap.eq(len(v.messages()), 6, "messages() holds the accepted bodies")
    tap.eq(len(v.embeds()), 10 + 1 + 1 + 2 + 1,
           "embeds() flattens them in order")
    tap.finish()


if __name__ == "__main__":
    _selftest()
