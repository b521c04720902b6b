#!/usr/bin/env python3
"""The ingest API from the outside: replies, input shapes, limits, errors.

One ctrd serves most checks, with one webhook receiver and no pattern, so
that every accepted event reaches it; a second ctrd with queue_max: 1 and a
hanging consumer shows the 503.  Every error reply is checked for its exact
status, its JSON body {"error": {"code", "message"}}, its Content-Type and
the header its status calls for.
"""

import http.client
import json
import os
import re
import socket
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctrtest import Ctrd, Receiver, Tap, new_key, new_whsec  # noqa: E402

ID_RE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")	# Crockford base32

tap = Tap()

accepted = {"runner": 0}		# what /metrics must count


def post(d, body, producer="runner", **kw):
    st, h, b = d.post(body, producer=producer, **kw)
    if producer in accepted and st == 202 and isinstance(b, dict):
        accepted[producer] += b.get("accepted", 0)
    return st, h, b


def legacy(d, body, producer="runner", key=None):
    st, h, b = d.post(body, producer=None, path="/api/event",
                      headers={"x-producer-key":
                               key or d.keys[producer]})
    if producer in accepted and st == 202 and isinstance(b, dict):
        accepted[producer] += b.get("accepted", 0)
    return st, h, b


def is_error_body(b, code):
    """{"error": {"code": code, "message": "..."}}, a field allowed."""
    if not isinstance(b, dict) or set(b) != {"error"}:
        return False
    e = b["error"]
    return (isinstance(e, dict) and e.get("code") == code and
            isinstance(e.get("message"), str) and e["message"] != "" and
            set(e) <= {"code", "message", "field"})


def expect_error(resp, status, code, name, header=None, field=None):
    """One check: status, JSON error body with code, Content-Type, and
    optionally a header (name, value or None for any) and error.field."""
    st, h, b = resp
    good = (st == status and is_error_body(b, code) and
            h.get("content-type") == "application/json")
    if header is not None:
        hn, hv = header
        good = good and hn in h and (hv is None or h[hn] == hv)
    if field is not None:
        good = good and b["error"].get("field") == field
    return tap.ok(good, name, "status %r\nheaders %r\nbody %r\nwant %d %s%s%s"
                  % (st, h, b, status, code,
                     " header %r" % (header,) if header else "",
                     " field %s" % field if field else ""))



def raw_request(port, head, body_chunks=(), timeout=5.0):
    """Send bytes as they are; return (status, headers, body as JSON)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    data = b""
    try:
        s.sendall(head)
        for c in body_chunks:
            s.sendall(c)
    except OSError:
        pass		# the server may answer and close before all is sent
    try:
        while b"\r\n\r\n" not in data:
            got = s.recv(65536)
            if not got:
                break
            data += got
        head_part, _, rest = data.partition(b"\r\n\r\n")
        lines = head_part.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1]) if lines and lines[0] else None
        hdrs = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        n = int(hdrs.get("content-length", "0"))
        while len(rest) < n:
            got = s.recv(65536)
            if not got:
                break
            rest += got
    except OSError:
        return None, {}, None
    finally:
        s.close()
    try:
        parsed = json.loads(rest) if rest else None
    except ValueError:
        parsed = rest
    return status, hdrs, parsed


def post_head(d, extra, producer="runner"):
    return ("POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Authorization: Bearer %s\r\n"
            "Content-Type: application/json\r\n%s\r\n"
            % (d.keys[producer], extra)).encode()


SPLIT = {"type": "speedrun.split", "source": "livesplit",
         "detail": {"game": "Celeste", "category": "Any%", "split": "1A",
                    "pace": "-0:00:05.000"}}

whsec = new_whsec()
rcv = Receiver(tap)
d = Ctrd(tap,
         producers=[{"name": "runner"}, {"name": "relay"},
                    {"name": "narrow", "sources": ["livesplit"],
                     "types": ["speedrun.*"]}],
         consumers=[{"name": "all", "url": rcv.url, "secret": whsec}])
if not tap.ok(d.start(), "ctrd starts and reports its port",
              d.read_log()):
    tap.finish()

# --- a valid event ---------------------------------------------------------

st, h, b = post(d, SPLIT)
tap.ok(st == 202 and isinstance(b, dict) and
       set(b) == {"accepted", "failed", "entries"} and
       b["accepted"] == 1 and b["failed"] == 0 and
       len(b["entries"]) == 1 and set(b["entries"][0]) == {"id"} and
       ID_RE.match(b["entries"][0]["id"]) is not None and
       h.get("content-type") == "application/json",
       "a valid native event gets 202 {accepted:1, failed:0, "
       "entries:[{id}]} with a 26-character Crockford base32 id",
       "%r %r %r" % (st, h, b))
first_id = b["entries"][0]["id"] if st == 202 else None

ids = [first_id]
for i in range(5):
    st, h, b = post(d, {"type": "speedrun.start",
                        "detail": {"game": "Celeste", "attempt": i}})
    ids.append(b["entries"][0]["id"] if st == 202 else None)
tap.ok(None not in ids and all(a < b_ for a, b_ in zip(ids, ids[1:])),
       "ids of successive events strictly increase as text", ids)

env = rcv.wait_for_id(first_id) if first_id else None
tap.eq(env and {k: env.get(k) for k in ("type", "source", "producer",
                                         "detail")},
       {"type": "speedrun.split", "source": "livesplit",
        "producer": "runner",
        "detail": {"game": "Celeste", "category": "Any%", "split": "1A",
                   "pace": "-0:00:05.000", "pace_ms": -5000}},
       "the consumer gets the native event with pace_ms next to pace")
tap.ok(env is not None and env.get("id") == first_id and
       isinstance(env.get("seq"), int) and
       re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$",
                env.get("time", "")) is not None and
       "origin_time" not in env,
       "the envelope carries the id from the reply, a seq and a "
       "receive time in RFC 3339 UTC with milliseconds", env)

# --- each input shape, and what the consumer receives ----------------------

shapes = [
    ("native",
     lambda: post(d, {"type": "speedrun.finish", "source": "livesplit",
                      "time": "2024-11-14T17:47:44.250Z",
                      "detail": {"game": "Celeste", "pace": "-0:01:02.5",
                                 "note": "clean run"}}),
     {"type": "speedrun.finish", "source": "livesplit",
      "producer": "runner", "origin_time": "2024-11-14T17:47:44.250Z",
      "detail": {"game": "Celeste", "pace": "-0:01:02.500",
                 "pace_ms": -62500, "note": "clean run"}}),
    ("EventBridge detail-type",
     lambda: post(d, {"detail-type": "speedrun.gold",
                      "source": "livesplit",
                      "time": "2024-11-14T17:47:44Z",
                      "detail": {"game": "Celeste", "split": "Summit",
                                 "segment_time": "0:02:03.456"}}),
     {"type": "speedrun.gold", "source": "livesplit",
      "producer": "runner", "origin_time": "2024-11-14T17:47:44.000Z",
      "detail": {"game": "Celeste", "split": "Summit",
                 "segment_time": "0:02:03.456",
                 "segment_time_ms": 123456}}),
    ("PutEvents entry with Detail as a JSON string",
     lambda: post(d, {"DetailType": "speedrun.reset",
                      "Source": "obs.plugin",
                      "Time": "2024-11-14T18:47:44+01:00",
                      "Detail": json.dumps({"game": "Celeste",
                                            "attempt": 17})}),
     {"type": "speedrun.reset", "source": "obs.plugin",
      "producer": "runner", "origin_time": "2024-11-14T17:47:44.000Z",
      "detail": {"game": "Celeste", "attempt": 17}}),
    ("SNS Subject/Message/MessageAttributes, producer from the key",
     lambda: post(d, {"Subject": "chat.message", "Message": "gg",
                      "MessageAttributes": {
                          "room": {"Type": "String", "Value": "celeste"},
                          "viewers": {"Type": "Number", "Value": "42"},
                          "tags": {"Type": "String.Array",
                                   "Value": "[\"wr\",\"any%\"]"}}},
                  producer="relay"),
     {"type": "chat.message", "source": "sns", "producer": "relay",
      "detail": {"message": "gg", "room": "celeste", "viewers": 42,
                 "tags": ["wr", "any%"]}}),
    ("legacy LiveSplit PascalCase body on /api/event with x-producer-key",
     lambda: legacy(d, {"EventType": "speedrun.split",
                        "EventSource": "livesplit", "Producer": "runner",
                        "Game": "Celeste", "Category": "Any%",
                        "SplitName": "Forsaken City",
                        "Pace": "-00:00:05.1230000 | -00:00:04.9000000",
                        "Message": "ahead",
                        "Timestamp": "2024-11-14T18:47:44.1234567+01:00"}),
     {"type": "speedrun.split", "source": "livesplit",
      "producer": "runner", "origin_time": "2024-11-14T17:47:44.123Z",
      "detail": {"game": "Celeste", "category": "Any%",
                 "split": "Forsaken City", "message": "ahead",
                 "pace": "-0:00:05.123", "pace_ms": -5123,
                 "pace_game_ms": -4900,
                 "pace_raw": "-00:00:05.1230000 | -00:00:04.9000000",
                 "timestamp_raw": "2024-11-14T18:47:44.1234567+01:00"}}),
]
for name, send, want in shapes:
    st, h, b = send()
    ok = (st == 202 and b.get("accepted") == 1 and
          ID_RE.match(b["entries"][0].get("id", "")) is not None)
    tap.ok(ok, "%s: accepted with 202 and an id" % name, "%r %r" % (st, b))
    env = rcv.wait_for_id(b["entries"][0]["id"]) if ok else None
    keys = ("type", "source", "producer", "origin_time", "detail")
    tap.eq(env and {k: env[k] for k in keys if k in env}, want,
           "%s: the consumer gets the normalized envelope" % name)

# --- batches ---------------------------------------------------------------

batch = [{"type": "speedrun.start", "detail": {"game": "Celeste"}},
         {"type": "speedrun.split",
          "detail": {"game": "Celeste", "split": "1A"}},
         {"type": "speedrun.finish", "detail": {"game": "Celeste"}}]
st, h, b = post(d, batch)
tap.ok(st == 202 and b.get("accepted") == 3 and b.get("failed") == 0 and
       len(b.get("entries", [])) == 3 and
       all(set(e) == {"id"} and ID_RE.match(e["id"])
           for e in b["entries"]) and
       b["entries"][0]["id"] < b["entries"][1]["id"] < b["entries"][2]["id"],
       "a batch of 3 gets 202 with 3 increasing ids", "%r %r" % (st, b))
got = [rcv.wait_for_id(e["id"]) for e in b.get("entries", [])]
tap.eq([g and g["type"] for g in got],
       ["speedrun.start", "speedrun.split", "speedrun.finish"],
       "each event of the batch reaches the consumer")

st, h, b = post(d, [batch[0], {"type": "Speedrun.Split"}, batch[2]])
ents = b.get("entries", []) if isinstance(b, dict) else []
tap.ok(st == 202 and b.get("accepted") == 2 and b.get("failed") == 1 and
       len(ents) == 3 and set(ents[0]) == {"id"} and
       set(ents[2]) == {"id"} and is_error_body(ents[1], "invalid_type"),
       "a batch with one bad entry gets 202, accepted 2, failed 1, the "
       "error at index 1", "%r %r" % (st, b))

expect_error(post(d, [batch[0]] * 11), 400, "batch_too_large",
             "a batch of 11 gets 400 batch_too_large")
expect_error(post(d, []), 400, "empty_batch",
             "an empty array gets 400 empty_batch")

st, h, b = post(d, [{"type": "a.b", "producer": "someone-else"},
                    {"type": "c.d", "producer": "someone-else"}])
tap.ok(st == 403 and b.get("accepted") == 0 and b.get("failed") == 2 and
       len(b.get("entries", [])) == 2 and
       all(is_error_body(e, "producer_mismatch") for e in b["entries"]),
       "a batch where every entry fails gets that entries' status (403) "
       "and every error", "%r %r" % (st, b))
st, h, b = post(d, [{"type": "Bad.Type"}, {"type": "speedrun.split"}])
tap.ok(st == 400 and b.get("accepted") == 0 and b.get("failed") == 2 and
       [e.get("error", {}).get("code") for e in b.get("entries", [])] ==
       ["invalid_type", "invalid_field"],
       "a batch where every entry fails with 400 gets 400", "%r %r" % (st, b))

# --- authentication --------------------------------------------------------

expect_error(post(d, SPLIT, producer=None), 401, "missing_key",
             "no Authorization gets 401 missing_key with WWW-Authenticate",
             header=("www-authenticate", None))
unknown = new_key()
expect_error(post(d, SPLIT, producer=None,
                  headers={"Authorization": "Bearer " + unknown}),
             401, "unknown_key",
             "a well-formed key nobody has gets 401 unknown_key",
             header=("www-authenticate", None))
expect_error(post(d, SPLIT, producer=None,
                  headers={"Authorization": "Bearer ctr_not-a-key"}),
             401, "unknown_key", "a malformed key gets 401 unknown_key")
expect_error(post(d, SPLIT, producer=None,
                  headers={"Authorization": "Basic cnVubmVyOnNlY3JldA=="}),
             401, "missing_key",
             "Authorization: Basic gets 401 missing_key")
expect_error(legacy(d, {"EventType": "speedrun.start", "Game": "x"},
                    key=unknown),
             401, "unknown_key",
             "the legacy route with an unknown x-producer-key gets 401")
expect_error(post(d, SPLIT, producer=None, path="/api/event"), 401,
             "missing_key", "the legacy route without a key gets 401 "
             "missing_key")
# RFC 9110 5.5: whitespace around a field value is not part of it.
st, h, b = raw_request(d.port, (
    "POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    "Authorization: Bearer %s \r\nContent-Type: application/json\r\n"
    "Content-Length: %d\r\n\r\n" % (d.keys["runner"], len(json.dumps(SPLIT)))
).encode() + json.dumps(SPLIT).encode())
if st == 202:
    accepted["runner"] += 1
tap.ok(st == 202, "a valid key followed by trailing whitespace in the "
       "Authorization field is accepted", "%r %r" % (st, b))

# --- authorization ---------------------------------------------------------

expect_error(post(d, {"type": "speedrun.start", "producer": "relay",
                      "detail": {"game": "Celeste"}}),
             403, "producer_mismatch",
             "a native body naming another producer gets 403 "
             "producer_mismatch", field="producer")
expect_error(legacy(d, {"EventType": "speedrun.start", "Producer": "relay",
                        "Game": "Celeste"}),
             403, "producer_mismatch",
             "a legacy body with another Producer gets 403 "
             "producer_mismatch", field="Producer")
expect_error(post(d, {"type": "speedrun.start", "source": "obs",
                      "detail": {"game": "Celeste"}}, producer="narrow"),
             403, "source_not_allowed",
             "a source outside the producer's globs gets 403 "
             "source_not_allowed")
expect_error(post(d, {"type": "chat.message", "source": "livesplit"},
                  producer="narrow"),
             403, "type_not_allowed",
             "a type outside the producer's globs gets 403 "
             "type_not_allowed")
st, h, b = post(d, {"type": "speedrun.start", "source": "livesplit",
                    "detail": {"game": "Celeste"}}, producer="narrow")
tap.ok(st == 202 and b.get("accepted") == 1,
       "a source and type inside the producer's globs are accepted",
       "%r %r" % (st, b))

# --- routes and methods ----------------------------------------------------

expect_error(d.request("GET", "/nope"), 404, "not_found",
             "GET of an unknown path gets 404 not_found")
expect_error(post(d, SPLIT, path="/v1/event"), 404, "not_found",
             "POST to an unknown path gets 404 not_found")
expect_error(d.request("GET", "/v1/events"), 405, "method_not_allowed",
             "GET /v1/events gets 405 with Allow: POST",
             header=("allow", "POST"))
expect_error(d.request("POST", "/healthz", b"{}",
                       {"Content-Type": "application/json"}),
             405, "method_not_allowed",
             "POST /healthz gets 405 with Allow: GET, HEAD",
             header=("allow", "GET, HEAD"))

# --- lengths and sizes -----------------------------------------------------

expect_error(raw_request(d.port, post_head(d, "")), 411, "length_required",
             "a POST without Content-Length and not chunked gets 411")
expect_error(raw_request(d.port, post_head(d, "Content-Length: 262145\r\n")),
             413, "body_too_large",
             "Content-Length over 256 KiB gets 413 body_too_large")
chunk = b" " * 65536
chunks = [b"%x\r\n" % len(chunk) + chunk + b"\r\n" for _ in range(4)]
chunks += [b"3\r\n{}\n\r\n", b"0\r\n\r\n"]
expect_error(raw_request(d.port, post_head(d, "Transfer-Encoding: "
                                           "chunked\r\n"), chunks),
             413, "body_too_large",
             "a chunked body over 256 KiB gets 413 body_too_large")
small = json.dumps(SPLIT).encode()
st, h, b = raw_request(d.port, post_head(d, "Transfer-Encoding: chunked\r\n"),
                       [b"%x\r\n" % len(small) + small + b"\r\n",
                        b"0\r\n\r\n"])
if st == 202:
    accepted["runner"] += 1
tap.ok(st == 202 and b.get("accepted") == 1,
       "a small chunked body is accepted", "%r %r" % (st, b))


def sized_event(n):
    """A native event of exactly n bytes of JSON."""
    base = {"type": "note.added", "detail": {"text": ""}}
    pad = n - len(json.dumps(base, separators=(",", ":")))
    base["detail"]["text"] = "y" * pad
    out = json.dumps(base, separators=(",", ":"))
    assert len(out) == n
    return out


st, h, b = post(d, sized_event(65536))
tap.ok(st == 202 and b.get("accepted") == 1,
       "an entry of exactly 64 KiB is accepted", "%r %r" % (st, b))
expect_error(post(d, sized_event(65537)), 413, "entry_too_large",
             "one entry over 64 KiB gets 413 entry_too_large")
expect_error(post(d, "[" + json.dumps(SPLIT) + "," + sized_event(70000) +
                  "]"), 413, "entry_too_large",
             "a batch with one entry over 64 KiB gets 413 entry_too_large")
five = [sized_event(50000) for _ in range(5)]
inner = ",".join(five)
body = "[" + inner + " " * (262144 - len(inner) - 2) + "]"
st, h, b = post(d, body)
tap.ok(len(body) == 262144 and st == 202 and b.get("accepted") == 5,
       "a body of exactly 256 KiB is accepted", "%r %r" % (st, b))

# --- media type ------------------------------------------------------------

expect_error(post(d, json.dumps(SPLIT),
                  headers={"Content-Type": "text/plain"}),
             415, "unsupported_media_type",
             "Content-Type: text/plain gets 415")
expect_error(d.request("POST", "/v1/events", json.dumps(SPLIT),
                       {"Authorization": "Bearer " + d.keys["runner"]}),
             415, "unsupported_media_type",
             "a POST without Content-Type gets 415")
st, h, b = post(d, SPLIT,
                headers={"Content-Type": "application/json; charset=utf-8"})
tap.ok(st == 202, "Content-Type: application/json; charset=utf-8 is "
       "accepted", "%r %r" % (st, b))

# --- malformed JSON --------------------------------------------------------

bad_json = [
    ("invalid UTF-8",
     b'{"type":"note.added","detail":{"text":"caf\xc3"}}'),
    ("a duplicate key", b'{"type":"note.added","type":"note.removed"}'),
    ("nesting 100 deep", b'{"type":"note.added","detail":' +
     b'{"a":' * 99 + b'1' + b'}' * 99 + b'}'),
    ("trailing garbage", b'{"type":"note.added"} {"type":"x.y"}'),
    ("truncated JSON", b'{"type":"note.added","detail":{"text":"ab'),
]
for name, raw in bad_json:
    expect_error(post(d, raw), 400, "invalid_json",
                 "%s gets 400 invalid_json" % name)

# --- invalid fields --------------------------------------------------------

expect_error(post(d, {"type": "speedrun.split",
                      "detail": {"game": "Celeste", "split": "1A",
                                 "pace": "five seconds ahead"}}),
             400, "invalid_field", "a bad pace gets 400 invalid_field "
             "naming detail.pace", field="detail.pace")
expect_error(legacy(d, {"EventType": "speedrun.split", "Game": "Celeste",
                        "SplitName": "1A", "Pace": "-00:00:05.123 | |"}),
             400, "invalid_field", "a bad legacy Pace gets 400 "
             "invalid_field naming Pace", field="Pace")
expect_error(legacy(d, {"EventType": "speedrun.split", "Game": "Celeste",
                        "SplitName": "1A",
                        "Timestamp": "14/11/2024 18:47:44"}),
             400, "invalid_field", "a bad legacy Timestamp gets 400 "
             "invalid_field naming Timestamp", field="Timestamp")
expect_error(post(d, {"type": "Speedrun.Split",
                      "detail": {"game": "Celeste", "split": "1A"}}),
             400, "invalid_type", "type \"Speedrun.Split\" gets 400 "
             "invalid_type", field="type")

# --- keep-alive ------------------------------------------------------------

conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=5)
hdrs = {"Content-Type": "application/json",
        "Authorization": "Bearer " + d.keys["runner"]}
results, socks = [], []
try:
    for i in range(2):
        conn.request("POST", "/v1/events", json.dumps(SPLIT), hdrs)
        resp = conn.getresponse()
        resp.read()
        results.append(resp.status)
        socks.append(conn.sock.getsockname() if conn.sock else None)
except (OSError, http.client.HTTPException) as e:
    results.append(repr(e))
conn.close()
accepted["runner"] += results.count(202)
tap.ok(results == [202, 202] and socks[0] is not None and
       socks[0] == socks[1],
       "two POSTs on one keep-alive connection both succeed on the same "
       "socket", "%r %r" % (results, socks))

# GET replies used to be queued before the request was complete, which
# made libmicrohttpd close the connection after each one.
conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=5)
results, socks = [], []
try:
    for path in ("/healthz", "/metrics"):
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        results.append((resp.status, resp.getheader("Connection")))
        socks.append(conn.sock.getsockname() if conn.sock else None)
except (OSError, http.client.HTTPException) as e:
    results.append(repr(e))
conn.close()
tap.ok([r[0] for r in results] == [200, 200] and socks[0] is not None and
       socks[0] == socks[1] and all(r[1] != "close" for r in results),
       "GET /healthz then GET /metrics on one keep-alive connection",
       "%r %r" % (results, socks))

# A chunked body far over the limit has no announced end: ctrd stops
# reading it and closes the connection rather than swallow it forever.
s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
sent = 0
try:
    s.sendall(post_head(d, "Transfer-Encoding: chunked\r\n"))
    while sent < 8 * 1024 * 1024:
        s.sendall(b"10000\r\n" + b" " * 0x10000 + b"\r\n")
        sent += 0x10000
except OSError:
    pass
s.close()
tap.ok(sent < 8 * 1024 * 1024,
       "an endless chunked body is cut off well before 8 MiB",
       "sent %d bytes" % sent)

# --- still serving ---------------------------------------------------------

st, h, b = d.request("GET", "/healthz")
tap.ok(st == 200 and b == {"status": "ok"} and
       h.get("content-type") == "application/json",
       "GET /healthz is 200 {\"status\":\"ok\"} after all of the above",
       "%r %r %r" % (st, h, b))
st, h, b = post(d, {"type": "speedrun.start", "detail": {"game": "Last"}})
env = rcv.wait_for_id(b["entries"][0]["id"]) if st == 202 else None
tap.ok(env is not None and env["detail"] == {"game": "Last"},
       "a valid event still reaches the consumer after all of the above",
       "%r %r" % (st, b))
tap.ok(d.proc.poll() is None, "ctrd is still running")

# Numbers reach consumers exactly as sent (cJSON's printer used to round
# them to 15 digits, and 1.7976931348623157e308 up to an infinity).
raw = (b'{"type":"lab.numbers","source":"lab","detail":{'
       b'"a":9007199254740991,"b":9999999999999998,'
       b'"c":0.30000000000000004,"e":1.7976931348623157e308}}')
st, h, b = post(d, raw)
if tap.eq(st, 202, "an event with edge-case numbers is accepted"):
    rcv.wait_for_id(b["entries"][0]["id"])
    body = [g["body"] for g in rcv.got
            if b["entries"][0]["id"].encode() in g["body"]]
    tap.ok(body and b'"a":9007199254740991' in body[0] and
           b'"b":9999999999999998' in body[0] and
           b'"c":0.30000000000000004' in body[0] and
           b'"e":1.7976931348623157e+308' in body[0],
           "the consumer receives every number unchanged",
           body[0] if body else "not delivered")

# Framing two parsers could read two ways is refused (request smuggling
# behind a proxy), as are two keys and a NUL inside a value.
def framing(extra, body=b"{}"):
    return raw_request(d.port, post_head(d, extra), [body])


expect_error(framing("Content-Length: 2\r\nContent-Length: 3\r\n"), 400,
             "duplicate_header", "two Content-Length headers get 400")
expect_error(framing("Content-Length: 2\r\n"
                     "Transfer-Encoding: chunked\r\n", b"2\r\n{}\r\n0\r\n\r\n"),
             400, "conflicting_framing",
             "Content-Length with Transfer-Encoding gets 400")
expect_error(framing("Transfer-Encoding: gzip, chunked\r\n",
                     b"2\r\n{}\r\n0\r\n\r\n"), 501,
             "unsupported_transfer_encoding",
             "a transfer coding other than chunked gets 501")
expect_error(framing("Authorization: Bearer %s\r\nContent-Length: 2\r\n"
                     % d.keys["runner"]), 400, "duplicate_header",
             "two Authorization headers get 400")
nul_head = ("POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Authorization: Bearer %s\x00junk\r\n"
            "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n"
            % d.keys["runner"]).encode()
st, _, b = raw_request(d.port, nul_head, [b"{}"])
tap.ok(st in (400, None) and st != 202,
       "a key followed by a NUL byte does not authenticate", "%r %r" % (st, b))

# A producer's member name cannot forge a field of the log line.
post(d, {"type": "speedrun.start", "x client=6.6.6.6": 1,
         "detail": {"game": "G"}})
# The log is written once per loop turn, after the reply: wait for it.
d.wait_log(r"field=x\\x20client")
log = d.read_log()
tap.ok("field=x client=6.6.6.6" not in log and
       "field=x\\x20client\\x3d6.6.6.6" in log,
       "a member name with spaces and '=' is escaped in the log",
       [l for l in log.splitlines() if "6.6.6.6" in l])

# --- metrics ---------------------------------------------------------------

# Let every delivery settle (nothing queued or in flight), so that the
# counters hold still while the log is counted.
end = time.time() + 5
while time.time() < end:
    _, _, t = d.request("GET", "/metrics")
    t = t if isinstance(t, str) else ""
    if re.search(r'^ctrd_in_flight\{consumer="all"\} 0$', t, re.M) and \
       re.search(r'^ctrd_queue_depth\{consumer="all"\} 0$', t, re.M):
        break
    time.sleep(0.05)
delivered = len(re.findall(r"delivered event=\S+ consumer=all ",
                           d.read_log()))
st, h, text = d.request("GET", "/metrics")
text = text if isinstance(text, str) else json.dumps(text)
tap.ok(st == 200 and h.get("content-type", "").startswith("text/plain"),
       "GET /metrics is 200 text/plain", "%r %r" % (st, h))


def metric(name_labels):
    m = re.search(r"^%s (\S+)$" % re.escape(name_labels), text, re.M)
    return float(m.group(1)) if m else None


tap.eq(metric('ctrd_events_total{producer="runner",result="accepted"}'),
       float(accepted["runner"]),
       "ctrd_events_total counts runner's accepted events exactly")
tap.eq(metric('ctrd_deliveries_total{consumer="all",outcome="delivered"}'),
       float(delivered),
       "ctrd_deliveries_total counts the deliveries to the consumer")
tap.eq(metric('ctrd_delivery_latency_seconds_bucket{consumer="all",'
              'le="+Inf"}'), float(delivered),
       "ctrd_delivery_latency_seconds_bucket has every delivery in +Inf")
tap.eq(metric('ctrd_queue_depth{consumer="all"}'), 0.0,
       "ctrd_queue_depth is 0 for the idle consumer")
secrets_ = list(d.keys.values()) + [unknown, whsec, whsec[6:],
                                    d.secret.hex()]
tap.ok(not any(s in text for s in secrets_),
       "/metrics holds no key or secret material")

log = d.read_log()
tap.ok(not any(k in log for k in list(d.keys.values()) + [unknown]),
       "no API key appears in ctrd's log")
tap.ok(whsec not in log and whsec[6:] not in log and
       d.secret.hex() not in log and "cnVubmVyOnNlY3JldA" not in log,
       "no consumer secret, server secret or Basic credential appears in "
       "ctrd's log")

# --- queue full ------------------------------------------------------------

hung = Receiver(tap, hang=True)
q = Ctrd(tap, consumers=[{"name": "hung", "url": hung.url,
                          "budget_ms": 2000}],
         extra="queue_max: 1")
if tap.ok(q.start(), "a second ctrd with queue_max 1 starts", q.read_log()):
    st1, _, b1 = q.post(SPLIT)
    r2 = q.post(SPLIT)
    tap.ok(st1 == 202 and b1.get("accepted") == 1,
           "with queue_max 1 the first event queues", "%r %r" % (st1, b1))
    expect_error(r2, 503, "queue_full",
                 "with the queue full the next event gets 503 queue_full "
                 "with Retry-After", header=("retry-after", None))
    # once the hung delivery misses its budget, the queue has room again
    end = time.time() + 8
    while time.time() < end and not q.dead_letters():
        time.sleep(0.05)
    st3, _, b3 = q.post(SPLIT)
    tap.ok(st3 == 202, "after the hung delivery is dead-lettered, events "
           "are accepted again", "%r %r %r" % (q.dead_letters(), st3, b3))
    st, h, b = q.request("GET", "/healthz")
    tap.eq((st, b), (200, {"status": "ok"}),
           "the daemon with the full queue still answers /healthz")

# A body that trickles in (a byte every 0.4 s) is cut off once the
# connection timeout has passed since its headers, though it never idles.
slow = Ctrd(tap, extra="connection_timeout_s: 2")
if tap.ok(slow.start(), "a ctrd with connection_timeout_s 2 starts"):
    sk = socket.create_connection(("127.0.0.1", slow.port), timeout=10)
    sk.sendall(post_head(slow, "Content-Length: 100\r\n"))
    t0, cut = time.time(), None
    try:
        while time.time() - t0 < 6:
            sk.sendall(b" ")
            time.sleep(0.4)
    except OSError:
        cut = time.time() - t0
    if cut is None:
        try:
            sk.settimeout(1)
            cut = time.time() - t0 if sk.recv(100) == b"" else None
        except OSError:
            cut = time.time() - t0
    sk.close()
    tap.ok(cut is not None and cut < 5.5,
           "a trickling body is cut off after the timeout (%s s)" % cut)
    tap.ok(slow.wait_log(r"code=body_too_slow") is not None,
           "the log says the body was too slow")

tap.finish()
